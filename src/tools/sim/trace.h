// tools/sim/trace.h — request traces for the hit-ratio simulator, and the
// readers of the trace file formats it supports.
//
// A Trace is the sequence of keys requested, each key interned once to a
// dense id (0 .. distinct-1, in order of first appearance), so every policy
// run replays the same small integers and no run pays for key parsing.
//
// Formats (TraceFormat):
//   text     one key per line; surrounding blanks and a trailing CR are
//            dropped; empty lines are skipped.
//   csv      one request per row; the key is one column, chosen by 1-based
//            index or by header name; RFC 4180 quotes ("a,b", "say ""hi""")
//            are understood within one line; optional header row.
//   oracle   libCacheSim oracleGeneral binary: per request a packed 24-byte
//            little-endian record {uint32 timestamp, uint64 obj_id,
//            uint32 obj_size, int64 next_access_vtime}; the key is obj_id.
//   cache2k  cache2k trace: a stream of 32-bit big-endian unsigned keys
//            (the ../shared/traces/*.trace.xz files).
// Any of them may be xz- or zstd-compressed (see byte_source.h).
//
// Thread-safety: plain values and free functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "callcache/status.h"

namespace callcache::sim {

class ByteSource;  // byte_source.h

struct Trace {
  // What the trace is, for reports ("web07.trace.xz", "zipf(alpha=0.9, …)").
  std::string name;
  // Requested keys as dense ids. Invariant: every id is < distinct and
  // every id in [0, distinct) occurs at least once.
  std::vector<std::uint32_t> requests;
  std::uint32_t distinct = 0;
};

// Keys that occur exactly once in the trace (one-hit wonders), a rough
// measure of how scan-heavy a trace is.
std::uint64_t count_one_hit_keys(const Trace& trace);

enum class TraceFormat : std::uint8_t { kAuto, kText, kCsv, kOracleGeneral, kCache2k };

std::string_view trace_format_name(TraceFormat f) noexcept;
// Accepts "auto", "text", "csv", "oracle" (or "oracleGeneral"), "cache2k".
Result<TraceFormat> parse_trace_format(std::string_view name);

// The format a file's name implies, ignoring a ".xz"/".zst" suffix:
// "*.txt", "*.keys" → text; "*.csv", "*.tsv" → csv; a name containing
// "oracleGeneral", or "*.bin" → oracle; "*.trace" → cache2k. Errors
// (kInvalidArgument) name the file and say to pass a format.
Result<TraceFormat> detect_trace_format(std::string_view path);

struct ReadOptions {
  TraceFormat format = TraceFormat::kAuto;
  // CSV key column: a 1-based index ("2") or a header name ("user_id").
  std::string csv_column = "1";
  // Whether the first CSV row is a header. Unset: yes if the column is given
  // by name, no if by index. A name with csv_header = false is an error.
  std::optional<bool> csv_header;
  // CSV field separator; unset: tab for "*.tsv", comma otherwise.
  std::optional<char> csv_delimiter;
  // Stop after this many requests (0 = read the whole trace).
  std::uint64_t limit = 0;
};

// Reads a trace file. The name of the result is the file's base name.
// Errors name the file and the line (text, csv) or byte offset (binary
// formats) of the problem: kIoError (cannot open or read), kCorruption
// (malformed content, e.g. a truncated record, an unterminated quote, a
// binary file read as text), kInvalidArgument (bad options, unknown column
// name, format not detectable), and kInvalidArgument for a trace with no
// requests.
Result<Trace> read_trace(const std::string& path, const ReadOptions& options = {});

// The same from an open source (its path names the trace) in `format`
// (options.format is ignored). Errors as above; kInvalidArgument for kAuto.
Result<Trace> read_trace(ByteSource& source, TraceFormat format, const ReadOptions& options = {});

// Interns keys to dense ids in order of first appearance.
class Interner {
 public:
  std::uint32_t id_of_int(std::uint64_t key);
  std::uint32_t id_of_string(std::string_view key);
  std::uint32_t size() const noexcept { return next_; }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::uint64_t, std::uint32_t> ints_;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> strings_;
  std::uint32_t next_ = 0;
};

// Re-interns arbitrary ids so the Trace invariant holds (used by the
// generators, whose raw ids need not be dense).
Trace densify(std::string name, const std::vector<std::uint64_t>& raw_keys);

}  // namespace callcache::sim
