#include "tools/sim/byte_source.h"

#include <lzma.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace callcache::sim {
namespace {

constexpr unsigned char kXzMagic[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};
constexpr unsigned char kZstdMagic[4] = {0x28, 0xB5, 0x2F, 0xFD};
constexpr std::size_t kInChunk = 1 << 16;

// Owns a FILE*, closed on destruction.
class File {
 public:
  explicit File(std::FILE* f) : f_(f) {}
  ~File() {
    if (f_) std::fclose(f_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  std::FILE* get() const { return f_; }

 private:
  std::FILE* f_;
};

// Reads up to n raw bytes from the file.
Result<std::size_t> read_raw(std::FILE* f, const std::string& path, char* buf, std::size_t n) {
  std::size_t got = std::fread(buf, 1, n, f);
  if (got < n && std::ferror(f)) {
    return Status::io_error("cannot read '" + path + "': " + std::strerror(errno));
  }
  return got;
}

class PlainSource final : public ByteSource {
 public:
  PlainSource(std::string path, std::FILE* f)
      : ByteSource(std::move(path), Compression::kNone), f_(f) {}
  Result<std::size_t> read(char* buf, std::size_t n) override {
    return read_raw(f_.get(), path(), buf, n);
  }

 private:
  File f_;
};

class XzSource final : public ByteSource {
 public:
  XzSource(std::string path, std::FILE* f)
      : ByteSource(std::move(path), Compression::kXz), f_(f), in_(kInChunk) {}
  ~XzSource() override { lzma_end(&strm_); }

  Status init() {
    lzma_ret r = lzma_stream_decoder(&strm_, UINT64_MAX, LZMA_CONCATENATED);
    if (r != LZMA_OK) return Status::internal("cannot start the xz decoder for '" + path() + "'");
    return Status();
  }

  Result<std::size_t> read(char* buf, std::size_t n) override {
    if (done_) return std::size_t{0};
    strm_.next_out = reinterpret_cast<std::uint8_t*>(buf);
    strm_.avail_out = n;
    while (strm_.avail_out == n) {
      lzma_action action = LZMA_RUN;
      if (strm_.avail_in == 0 && !eof_) {
        auto got = read_raw(f_.get(), path(), in_.data(), in_.size());
        if (!got.ok()) return got.status();
        strm_.next_in = reinterpret_cast<const std::uint8_t*>(in_.data());
        strm_.avail_in = *got;
        if (*got == 0) eof_ = true;
      }
      if (eof_) action = LZMA_FINISH;
      lzma_ret r = lzma_code(&strm_, action);
      if (r == LZMA_STREAM_END) {
        done_ = true;
        break;
      }
      if (r != LZMA_OK) return error(r);
    }
    return n - strm_.avail_out;
  }

 private:
  Status error(lzma_ret r) const {
    std::string what;
    switch (r) {
      case LZMA_FORMAT_ERROR:
        what = "not an xz stream";
        break;
      case LZMA_DATA_ERROR:
        what = "xz data is corrupt";
        break;
      case LZMA_BUF_ERROR:
        what = "xz stream is truncated";
        break;
      case LZMA_MEM_ERROR:
        what = "out of memory while decompressing";
        break;
      case LZMA_OPTIONS_ERROR:
        what = "unsupported xz options";
        break;
      default:
        what = "xz decoder error " + std::to_string(static_cast<int>(r));
        break;
    }
    return Status::corruption("'" + path() + "': " + what + " (at compressed byte offset " +
                              std::to_string(strm_.total_in) + ")");
  }

  File f_;
  std::vector<char> in_;
  lzma_stream strm_ = LZMA_STREAM_INIT;
  bool eof_ = false;
  bool done_ = false;
};

class ZstdSource final : public ByteSource {
 public:
  ZstdSource(std::string path, std::FILE* f)
      : ByteSource(std::move(path), Compression::kZstd),
        f_(f),
        in_(ZSTD_DStreamInSize()),
        dctx_(ZSTD_createDCtx()) {}
  ~ZstdSource() override { ZSTD_freeDCtx(dctx_); }

  Result<std::size_t> read(char* buf, std::size_t n) override {
    ZSTD_outBuffer out{buf, n, 0};
    while (out.pos == 0) {
      if (in_pos_ == in_len_) {
        if (eof_) break;
        auto got = read_raw(f_.get(), path(), in_.data(), in_.size());
        if (!got.ok()) return got.status();
        in_pos_ = 0;
        in_len_ = *got;
        if (*got == 0) {
          eof_ = true;
          break;
        }
      }
      ZSTD_inBuffer in{in_.data(), in_len_, in_pos_};
      std::size_t r = ZSTD_decompressStream(dctx_, &out, &in);
      consumed_ += in.pos - in_pos_;
      in_pos_ = in.pos;
      if (ZSTD_isError(r)) {
        return Status::corruption("'" + path() +
                                  "': zstd data is corrupt: " + ZSTD_getErrorName(r) +
                                  " (at compressed byte offset " + std::to_string(consumed_) + ")");
      }
      frame_open_ = r != 0;
    }
    if (out.pos == 0 && frame_open_) {
      return Status::corruption("'" + path() +
                                "': zstd stream is truncated (at compressed byte offset " +
                                std::to_string(consumed_) + ")");
    }
    return out.pos;
  }

 private:
  File f_;
  std::vector<char> in_;
  std::size_t in_pos_ = 0;
  std::size_t in_len_ = 0;
  std::uint64_t consumed_ = 0;
  bool eof_ = false;
  bool frame_open_ = false;
  ZSTD_DCtx* dctx_;
};

}  // namespace

std::string_view compression_name(Compression c) noexcept {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kXz:
      return "xz";
    case Compression::kZstd:
      return "zstd";
  }
  return "?";
}

Result<std::unique_ptr<ByteSource>> open_byte_source(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::io_error("cannot open '" + path + "': " + std::strerror(errno));
  return open_byte_source(f, path);
}

Result<std::unique_ptr<ByteSource>> open_byte_source(std::FILE* f, std::string path) {
  unsigned char magic[6] = {};
  std::size_t got = std::fread(magic, 1, sizeof magic, f);
  if (std::ferror(f)) {
    int err = errno;
    std::fclose(f);
    return Status::io_error("cannot read '" + path + "': " + std::strerror(err));
  }
  std::rewind(f);
  bool is_xz = got >= 6 && std::memcmp(magic, kXzMagic, 6) == 0;
  bool is_zstd = got >= 4 && std::memcmp(magic, kZstdMagic, 4) == 0;
  if (path.ends_with(".xz") && !is_xz) {
    std::fclose(f);
    return Status::corruption("'" + path + "': named .xz but is not an xz file (bad magic bytes)");
  }
  if (path.ends_with(".zst") && !is_zstd) {
    std::fclose(f);
    return Status::corruption("'" + path +
                              "': named .zst but is not a zstd file (bad magic bytes)");
  }
  if (is_xz) {
    auto src = std::make_unique<XzSource>(std::move(path), f);
    if (Status s = src->init(); !s.ok()) return s;
    return std::unique_ptr<ByteSource>(std::move(src));
  }
  if (is_zstd) {
    return std::unique_ptr<ByteSource>(std::make_unique<ZstdSource>(std::move(path), f));
  }
  return std::unique_ptr<ByteSource>(std::make_unique<PlainSource>(std::move(path), f));
}

Result<std::size_t> read_full(ByteSource& src, char* buf, std::size_t n) {
  std::size_t total = 0;
  while (total < n) {
    auto got = src.read(buf + total, n - total);
    if (!got.ok()) return got.status();
    if (*got == 0) break;
    total += *got;
  }
  return total;
}

}  // namespace callcache::sim
