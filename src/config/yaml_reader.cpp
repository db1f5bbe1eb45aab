#include "yaml_reader.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

namespace callcache::config {
namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// Splits "12.5ms" into 12.5 and "ms". Returns false if there is no number.
bool split_number(std::string_view text, double& number, std::string& unit) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return false;
  std::string num(text.substr(0, i));
  char* end = nullptr;
  number = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size() || !std::isfinite(number)) return false;
  unit = trim(text.substr(i));
  return true;
}

}  // namespace

Result<Duration> parse_duration(std::string_view raw) {
  std::string text = trim(raw);
  const std::string hint = "expected a duration like 300, 300s, 250ms, 5m or 1h, got '" + text + "'";
  double n = 0;
  std::string unit;
  if (text.empty() || !split_number(text, n, unit)) return Status::invalid_argument(hint);
  double scale;  // nanoseconds per unit
  if (unit.empty() || unit == "s") scale = 1e9;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "us") scale = 1e3;
  else if (unit == "m" || unit == "min") scale = 60e9;
  else if (unit == "h") scale = 3600e9;
  else if (unit == "d") scale = 86400e9;
  else return Status::invalid_argument(hint);
  double ns = n * scale;
  if (ns > 9.2e18) return Status::invalid_argument("duration '" + text + "' is too long");
  return Duration(static_cast<std::int64_t>(std::llround(ns)));
}

Result<std::uint64_t> parse_bytes(std::string_view raw) {
  std::string text = trim(raw);
  const std::string hint = "expected a size like 1000, 64KB, 10MB or 1GB, got '" + text + "'";
  double n = 0;
  std::string unit;
  if (text.empty() || !split_number(text, n, unit)) return Status::invalid_argument(hint);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double scale;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "KB" || unit == "KIB" || unit == "K") scale = 1024.0;
  else if (unit == "MB" || unit == "MIB" || unit == "M") scale = 1024.0 * 1024;
  else if (unit == "GB" || unit == "GIB" || unit == "G") scale = 1024.0 * 1024 * 1024;
  else return Status::invalid_argument(hint);
  double v = n * scale;
  if (v != std::floor(v)) return Status::invalid_argument(hint + " (not a whole number of bytes)");
  if (v > 1.8e19) return Status::invalid_argument("size '" + text + "' is too large");
  return static_cast<std::uint64_t>(v);
}

Result<YAML::Node> load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot open config file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  auto node = load_string(ss.str());
  if (!node.ok()) return Status(node.status().code(), path + ": " + node.status().message());
  return node;
}

Result<YAML::Node> load_string(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Status::invalid_argument("malformed YAML at line " + std::to_string(e.mark.line + 1) +
                                    ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

MapReader::MapReader(const YAML::Node& node, std::string path)
    : node_(node), path_(std::move(path)) {
  if (node_ && !node_.IsNull() && !node_.IsMap()) {
    error_ = Status::invalid_argument((path_.empty() ? std::string("the document") : path_) +
                                      ": expected a mapping of keys to values");
  }
}

bool MapReader::has(std::string_view key) const {
  if (!node_ || !node_.IsMap()) return false;
  for (const auto& kv : node_) {
    if (kv.first.Scalar() == key) return true;
  }
  return false;
}

std::string MapReader::path_of(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void MapReader::fail(std::string_view key, std::string why) {
  if (error_.ok()) error_ = Status::invalid_argument(path_of(key) + ": " + why);
}

void MapReader::merge(const Status& nested) {
  if (error_.ok() && !nested.ok()) error_ = nested;
}

const YAML::Node* MapReader::scalar(std::string_view key) {
  known_.emplace(key);
  if (!has(key)) return nullptr;
  // reset() rebinds scratch_; assigning (scratch_ = ...) would write the
  // new key's value into the node scratch_ refers to: the previous key's
  // node in the document.
  scratch_.reset(node_[std::string(key)]);
  if (!scratch_.IsScalar()) {
    fail(key, "expected a single value, got a " +
                  std::string(scratch_.IsMap() ? "mapping" : scratch_.IsSequence() ? "list" : "null"));
    return nullptr;
  }
  return &scratch_;
}

void MapReader::duration(std::string_view key, Duration& out, bool allow_zero) {
  const YAML::Node* n = scalar(key);
  if (!n) return;
  auto d = parse_duration(n->Scalar());
  if (!d.ok()) return fail(key, d.status().message());
  if (!allow_zero && d->count() == 0) return fail(key, "must be greater than zero, got '" + n->Scalar() + "'");
  out = *d;
}

void MapReader::bytes(std::string_view key, std::uint64_t& out, bool allow_zero) {
  const YAML::Node* n = scalar(key);
  if (!n) return;
  auto b = parse_bytes(n->Scalar());
  if (!b.ok()) return fail(key, b.status().message());
  if (!allow_zero && *b == 0) return fail(key, "must be greater than zero, got '" + n->Scalar() + "'");
  out = *b;
}

void MapReader::count(std::string_view key, std::uint64_t& out, bool allow_zero) {
  const YAML::Node* n = scalar(key);
  if (!n) return;
  const std::string& s = n->Scalar();
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || s[0] == '-' || ec != std::errc() || p != s.data() + s.size()) {
    return fail(key, "expected a non-negative whole number, got '" + s + "'");
  }
  if (!allow_zero && v == 0) return fail(key, "must be greater than zero, got '" + s + "'");
  out = v;
}

void MapReader::integer(std::string_view key, std::int64_t& out) {
  const YAML::Node* n = scalar(key);
  if (!n) return;
  const std::string& s = n->Scalar();
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
    return fail(key, "expected a whole number, got '" + s + "'");
  }
  out = v;
}

void MapReader::number(std::string_view key, double& out, double min, double max) {
  const YAML::Node* n = scalar(key);
  if (!n) return;
  const std::string& s = n->Scalar();
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) {
    return fail(key, "expected a number, got '" + s + "'");
  }
  if (v < min || v > max) {
    return fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                         ", got '" + s + "'");
  }
  out = v;
}

void MapReader::boolean(std::string_view key, bool& out) {
  const YAML::Node* n = scalar(key);
  if (!n) return;
  const std::string& s = n->Scalar();
  if (s == "true" || s == "yes" || s == "on") out = true;
  else if (s == "false" || s == "no" || s == "off") out = false;
  else fail(key, "expected true or false, got '" + s + "'");
}

void MapReader::string(std::string_view key, std::string& out, bool allow_empty) {
  const YAML::Node* n = scalar(key);
  if (!n) return;
  if (!allow_empty && n->Scalar().empty()) return fail(key, "must not be empty");
  out = n->Scalar();
}

void MapReader::string_list(std::string_view key, std::vector<std::string>& out) {
  YAML::Node n = child(key);
  if (!has(key)) return;  // child() of an absent key is a null node, not an invalid one
  std::vector<std::string> v;
  if (n.IsScalar()) {
    v.push_back(n.Scalar());
  } else if (n.IsSequence()) {
    for (const auto& item : n) {
      if (!item.IsScalar()) return fail(key, "expected a list of strings");
      v.push_back(item.Scalar());
    }
  } else {
    return fail(key, "expected a string or a list of strings");
  }
  out = std::move(v);
}

YAML::Node MapReader::child(std::string_view key) {
  known_.emplace(key);
  if (!has(key)) return YAML::Node();
  return node_[std::string(key)];
}

MapReader MapReader::map(std::string_view key) {
  YAML::Node n = child(key);
  MapReader r(n && !n.IsNull() ? n : YAML::Node(YAML::NodeType::Map), path_of(key));
  if (!r.error_.ok()) merge(r.error_);
  return r;
}

std::vector<std::string> MapReader::keys() {
  std::vector<std::string> out;
  if (!node_ || !node_.IsMap()) return out;
  for (const auto& kv : node_) {
    out.push_back(kv.first.Scalar());
    known_.insert(kv.first.Scalar());
  }
  return out;
}

Status MapReader::finish() {
  if (error_.ok() && node_ && node_.IsMap()) {
    for (const auto& kv : node_) {
      const std::string& k = kv.first.Scalar();
      if (!known_.count(k)) {
        std::string allowed;
        for (const auto& a : known_) allowed += (allowed.empty() ? "" : ", ") + a;
        fail(k, "unknown key" + (allowed.empty() ? std::string() : " (expected one of: " + allowed + ")"));
        break;
      }
    }
  }
  return error_;
}

}  // namespace callcache::config
