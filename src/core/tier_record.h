// Internal: the record a TieredCache value is stored in L2 as (the format is
// described at the top of tiers.cpp): magic and version, the wall-clock µs
// at which the load began, the tags, then the codec's bytes. Records come
// back from files and servers other processes write too, so parsing takes
// any bytes: anything that is not a whole record is a plain value of
// unknown load time. Fuzzed in fuzz/stored_value.cpp.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callcache::internal {

inline constexpr std::string_view kTierRecordMagic =
    "\xff"
    "cc"
    "\x01";  // never the start of JSON or UTF-8 text
inline constexpr std::int64_t kUnknownLoadTime = std::numeric_limits<std::int64_t>::min();

struct TierRecord {
  std::int64_t loaded_at = kUnknownLoadTime;
  std::vector<std::string> tags;
  std::string_view payload;  // points into the parsed bytes
};

// The record of `bytes`, or (no magic, or a malformed header) `bytes` as a
// plain value of unknown load time.
inline TierRecord parse_tier_record(std::string_view bytes) {
  auto le = [&bytes](std::size_t at, int n) {
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i)
      v = (v << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(i)]);
    return v;
  };
  TierRecord plain;
  plain.payload = bytes;
  if (!bytes.starts_with(kTierRecordMagic) || bytes.size() < kTierRecordMagic.size() + 10)
    return plain;
  std::size_t at = kTierRecordMagic.size();
  TierRecord r;
  r.loaded_at = static_cast<std::int64_t>(le(at, 8));
  at += 8;
  const std::size_t n = le(at, 2);
  at += 2;
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes.size() - at < 2) return plain;
    const std::size_t len = le(at, 2);
    at += 2;
    if (bytes.size() - at < len) return plain;
    r.tags.emplace_back(bytes.substr(at, len));
    at += len;
  }
  r.payload = bytes.substr(at);
  return r;
}

// The record of a value, or nullopt when the tags do not fit the format
// (more than 65,535 tags, or one longer than 65,535 bytes).
inline std::optional<std::string> encode_tier_record(std::int64_t loaded_at_us,
                                                     const std::vector<std::string>& tags,
                                                     std::string_view bytes) {
  constexpr std::size_t kMax16 = 0xffff;
  std::size_t header = kTierRecordMagic.size() + 10;
  if (tags.size() > kMax16) return std::nullopt;
  for (const std::string& t : tags) {
    if (t.size() > kMax16) return std::nullopt;
    header += 2 + t.size();
  }
  auto put_u16 = [](std::string& out, std::size_t v) {
    out += static_cast<char>(v & 0xff);
    out += static_cast<char>((v >> 8) & 0xff);
  };
  std::string record;
  record.reserve(header + bytes.size());
  record += kTierRecordMagic;
  const auto at = static_cast<std::uint64_t>(loaded_at_us);
  for (int i = 0; i < 8; ++i) record += static_cast<char>((at >> (8 * i)) & 0xff);
  put_u16(record, tags.size());
  for (const std::string& t : tags) {
    put_u16(record, t.size());
    record += t;
  }
  record += bytes;
  return record;
}

}  // namespace callcache::internal
