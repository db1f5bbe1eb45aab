// Internal: reads one YAML mapping into C++ fields with errors that name the
// key's full path and the offending value, e.g.
//   "namespaces.entity.ttl: expected a duration like 300, 300s, 5m or 1h, got '5 minutes'".
//
// Usage: make a MapReader over a mapping node, call one getter per allowed key
// (an absent key leaves the field untouched), then finish(), which also
// rejects keys that no getter asked for. The first error wins.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache::config {

// Parses "300" (seconds), "300s", "250ms", "5m", "1h", "2d", "1.5s". Rejects
// negatives, empty text, unknown units.
Result<Duration> parse_duration(std::string_view text);

// Parses "1000", "64KB"/"64KiB", "10MB"/"10MiB", "1GB"/"1GiB" (binary units).
Result<std::uint64_t> parse_bytes(std::string_view text);

// Loads a YAML file; a missing or malformed file names the path and the line.
Result<YAML::Node> load_file(const std::string& path);
Result<YAML::Node> load_string(const std::string& text);

class MapReader {
 public:
  // `node` must be a map (or null, read as empty); `path` is its dotted path
  // ("" at the root).
  MapReader(const YAML::Node& node, std::string path);

  bool has(std::string_view key) const;
  // Full path of a child key, for messages.
  std::string path_of(std::string_view key) const;

  void duration(std::string_view key, Duration& out, bool allow_zero = true);
  void bytes(std::string_view key, std::uint64_t& out, bool allow_zero = true);
  void count(std::string_view key, std::uint64_t& out, bool allow_zero = true);
  void integer(std::string_view key, std::int64_t& out);
  void number(std::string_view key, double& out, double min, double max);
  void boolean(std::string_view key, bool& out);
  void string(std::string_view key, std::string& out, bool allow_empty = false);
  void string_list(std::string_view key, std::vector<std::string>& out);

  // Maps a string to one of `choices`.
  template <class E>
  void choice(std::string_view key, E& out,
              std::initializer_list<std::pair<std::string_view, E>> choices) {
    std::string s;
    if (!has(key)) return;
    string(key, s);
    if (!error_.ok()) return;
    for (const auto& [name, value] : choices) {
      if (name == s) {
        out = value;
        return;
      }
    }
    std::string names;
    for (const auto& c : choices) names += (names.empty() ? "" : ", ") + std::string(c.first);
    fail(key, "expected one of " + names + ", got '" + s + "'");
  }

  // The child node (a map, a list or a scalar) and marks the key as known.
  // Returns a null node when absent.
  YAML::Node child(std::string_view key);
  // A reader over a child mapping (absent = empty map). A child that is not a
  // map records an error.
  MapReader map(std::string_view key);
  // Keys of this mapping in file order (all are marked known).
  std::vector<std::string> keys();

  // Records an error at `key` unless one is recorded already.
  void fail(std::string_view key, std::string why);
  // Adopts the outcome of a nested reader or parser.
  void merge(const Status& nested);

  // Rejects keys nobody asked for and returns the first error, if any.
  Status finish();
  const Status& error() const { return error_; }

 private:
  const YAML::Node* scalar(std::string_view key);

  YAML::Node node_;
  std::string path_;
  std::set<std::string, std::less<>> known_;
  Status error_;
  YAML::Node scratch_;
};

}  // namespace callcache::config
