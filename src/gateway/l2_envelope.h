// Internal: the envelope a cached answer is stored in on the L2 tier (see
// l2_store.h) — its store time and tags in front of the body:
//
//   "cc1\n" <stored ms since the epoch> "\n" <tag> "\t" <tag> ... "\n" <body>
//
// and the value of a tag marker (a decimal ms time). Stored values come back
// from SQLite files and Redis servers that other processes (and other
// versions) write too, so decoding accepts any bytes: what is not a
// well-formed envelope is a miss, never an error or a crash.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callcache::gateway {

struct L2Envelope {
  std::int64_t stored_ms = 0;  // >= 0
  std::vector<std::string> tags;
  std::string_view body;  // into the decoded bytes
};

// The stored form of an answer, or nullopt when a tag holds a tab or a
// newline (it would split the tag list: such an answer is not stored).
std::optional<std::string> encode_l2_envelope(std::int64_t stored_ms,
                                              const std::vector<std::string>& tags,
                                              std::string_view body);

// The envelope in `bytes`, or nullopt if they are not one (another format,
// a negative or unreadable time, no tag line). An empty tag list is no tags.
std::optional<L2Envelope> decode_l2_envelope(std::string_view bytes);

// A tag marker's time, or -1 if `bytes` is not a decimal number.
std::int64_t decode_marker_ms(std::string_view bytes) noexcept;

}  // namespace callcache::gateway
