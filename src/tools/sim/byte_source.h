// tools/sim/byte_source.h — a file's bytes as a stream, decompressed if the
// file is xz- or zstd-compressed (liblzma, libzstd).
//
// Trace readers pull bytes in chunks, so a trace of any size is read with a
// fixed-size buffer. Errors name the file and, for corrupt compressed data,
// the compressed byte offset.
//
// Thread-safety: a ByteSource is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "callcache/status.h"

namespace callcache::sim {

enum class Compression : std::uint8_t { kNone, kXz, kZstd };

std::string_view compression_name(Compression c) noexcept;

class ByteSource {
 public:
  virtual ~ByteSource() = default;

  // Reads up to `n` (> 0) bytes into `buf`. Returns the number read; 0 means
  // the end of the (decompressed) data. Errors: kIoError (read failed),
  // kCorruption (compressed data is damaged or truncated), naming the file.
  virtual Result<std::size_t> read(char* buf, std::size_t n) = 0;

  // The file this source reads.
  const std::string& path() const noexcept { return path_; }
  Compression compression() const noexcept { return compression_; }

 protected:
  ByteSource(std::string path, Compression c) : path_(std::move(path)), compression_(c) {}

 private:
  std::string path_;
  Compression compression_;
};

// Opens `path`. The compression is taken from the name (".xz", ".zst") and
// checked against the file's magic bytes; a file with another name is sniffed
// by its magic bytes. Errors: kIoError (cannot open), kCorruption (a ".xz" or
// ".zst" file without the matching magic).
Result<std::unique_ptr<ByteSource>> open_byte_source(const std::string& path);

// The same over a file already open for reading from its start (e.g. an
// in-memory stream from fmemopen()); `path` names it in messages and its
// suffix is checked as above. Takes ownership of `file`: the source closes
// it, or it is closed on error. REQUIRES: file != nullptr.
Result<std::unique_ptr<ByteSource>> open_byte_source(std::FILE* file, std::string path);

// Reads up to `n` bytes, retrying short reads until `n` bytes or the end.
Result<std::size_t> read_full(ByteSource& src, char* buf, std::size_t n);

}  // namespace callcache::sim
