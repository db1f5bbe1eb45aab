// tools/sim/test_util.h — helpers for the simulator's tests: a temporary
// directory removed on destruction (also when a test fails), and file
// writers.
#pragma once

#include <gtest/gtest.h>
#include <lzma.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace callcache::sim::test_util {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "callcache_sim_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << "cannot write " << path;
}

// xz-compresses `bytes` with liblzma (the format of ../shared/traces).
inline std::string xz_compress(const std::string& bytes) {
  std::string out(lzma_stream_buffer_bound(bytes.size()), '\0');
  std::size_t pos = 0;
  lzma_ret r = lzma_easy_buffer_encode(
      6, LZMA_CHECK_CRC64, nullptr, reinterpret_cast<const std::uint8_t*>(bytes.data()),
      bytes.size(), reinterpret_cast<std::uint8_t*>(out.data()), &pos, out.size());
  if (r != LZMA_OK) throw std::runtime_error("lzma_easy_buffer_encode failed");
  out.resize(pos);
  return out;
}

// cache2k trace bytes: 32-bit big-endian keys.
inline std::string cache2k_bytes(const std::vector<std::uint32_t>& keys) {
  std::string out;
  for (std::uint32_t k : keys) {
    out.push_back(static_cast<char>(k >> 24));
    out.push_back(static_cast<char>(k >> 16));
    out.push_back(static_cast<char>(k >> 8));
    out.push_back(static_cast<char>(k));
  }
  return out;
}

}  // namespace callcache::sim::test_util
