#include "canonical.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace callcache::gateway::logic {
namespace {

using Json = nlohmann::json;

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!is_ascii_alnum(c) && c != '_') return false;
  }
  return true;
}

// Nesting depth of JSON text, counted outside string literals. Cheap and
// non-recursive, so it can run before the parser (whose tree is destroyed
// recursively) ever sees the input.
std::size_t depth_of(std::string_view s) noexcept {
  std::size_t depth = 0, max_depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

// Strings holding canonical integers become numbers, recursively.
// Recursion depth is bounded by depth_of() checked before parsing.
void normalise(Json& j) {
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (is_canonical_integer(s)) {
      std::int64_t v = 0;
      std::from_chars(s.data(), s.data() + s.size(), v);
      j = v;
    }
  } else if (j.is_structured()) {
    for (auto& child : j) normalise(child);
  }
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// Canonical text of a top-level parameter value, or nullopt for null (absent).
std::optional<std::string> value_text(Json& j, const RequestLimits& limits) {
  switch (j.type()) {
    case Json::value_t::null:
      return std::nullopt;
    case Json::value_t::string:
      return canonical_text_value(j.get_ref<const std::string&>(), limits);
    case Json::value_t::boolean:
      return std::string(j.get<bool>() ? "true" : "false");
    case Json::value_t::number_integer:
      return std::to_string(j.get<std::int64_t>());
    case Json::value_t::number_unsigned:
      return std::to_string(j.get<std::uint64_t>());
    case Json::value_t::object:
    case Json::value_t::array:
      normalise(j);
      return dump(j);
    default:
      return dump(j);
  }
}

}  // namespace

std::size_t json_nesting_depth(std::string_view json) noexcept { return depth_of(json); }

bool has_raw_nul(std::string_view json) noexcept {
  return json.find('\0') != std::string_view::npos;
}

bool is_canonical_integer(std::string_view s) noexcept {
  std::string_view digits = s;
  if (!digits.empty() && digits[0] == '-') digits.remove_prefix(1);
  if (digits.empty() || digits.size() > 19) return false;
  if (digits[0] == '0' && (digits.size() > 1 || s[0] == '-')) return false;  // "007", "-0"
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

const std::string* Params::find(std::string_view name) const noexcept {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                             [](const Entry& e, std::string_view n) { return e.first < n; });
  if (it == entries_.end() || it->first != name) return nullptr;
  return &it->second;
}

Status Params::add(std::string name, std::string value) {
  if (!valid_name(name)) {
    return Status::invalid_argument("Bad Request: invalid parameter name '" +
                                    quote_for_error(name) + "' (expected letters, digits or '_')");
  }
  auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                             [](const Entry& e, const std::string& n) { return e.first < n; });
  if (it != entries_.end() && it->first == name) {
    return Status::invalid_argument("Bad Request: parameter '" + name +
                                    "' is given more than once");
  }
  entries_.emplace(it, std::move(name), std::move(value));
  return Status();
}

std::string* Params::find(std::string_view name) noexcept {
  return const_cast<std::string*>(std::as_const(*this).find(name));
}

void Params::erase(std::string_view name) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), name,
                             [](const Entry& e, std::string_view n) { return e.first < n; });
  if (it != entries_.end() && it->first == name) entries_.erase(it);
}

namespace {
// First non-blank character is '{' or '[': worth trying as JSON.
bool looks_like_json(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  return i < text.size() && (text[i] == '{' || text[i] == '[');
}
}  // namespace

std::string canonical_text_value(std::string_view text, const RequestLimits& limits) {
  if (!looks_like_json(text)) return std::string(text);
  auto canon = canonical_json(text, limits.max_json_depth);
  return canon.ok() ? std::move(*canon) : std::string(text);
}

Result<std::string> canonical_json(std::string_view json, std::size_t max_depth) {
  if (has_raw_nul(json)) return Status::invalid_argument("Bad Request: can't parse JSON");
  if (depth_of(json) > max_depth) {
    return Status::invalid_argument("Bad Request: JSON nested deeper than " +
                                    std::to_string(max_depth) + " levels");
  }
  try {
    Json j = Json::parse(json, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::invalid_argument("Bad Request: can't parse JSON");
    normalise(j);
    return dump(j);
  } catch (const std::exception& e) {  // allocation failure and the like
    return Status::invalid_argument(std::string("Bad Request: can't parse JSON: ") + e.what());
  }
}

Status add_urlencoded(Params& params, std::string_view encoded, const RequestLimits& limits) {
  auto pairs = parse_query(encoded);
  if (!pairs.ok()) return pairs.status();
  if (params.size() + pairs->size() > limits.max_params) {
    return Status::invalid_argument("Bad Request: more than " + std::to_string(limits.max_params) +
                                    " parameters");
  }
  for (auto& [name, value] : *pairs) {
    Status s =
        params.add(std::move(name),
                   looks_like_json(value) ? canonical_text_value(value, limits) : std::move(value));
    if (!s.ok()) return s;
  }
  return Status();
}

Status add_json_object(Params& params, std::string_view json, const RequestLimits& limits) {
  if (has_raw_nul(json)) return Status::invalid_argument("Bad Request: can't parse JSON object");
  if (depth_of(json) > limits.max_json_depth) {
    return Status::invalid_argument("Bad Request: JSON nested deeper than " +
                                    std::to_string(limits.max_json_depth) + " levels");
  }
  try {
    // Duplicate top-level keys are rejected (the parser itself keeps the last).
    std::set<std::string, std::less<>> seen;
    std::string duplicate;
    Json::parser_callback_t cb = [&](int depth, Json::parse_event_t event, Json& parsed) {
      if (event == Json::parse_event_t::key && depth == 1 && parsed.is_string()) {
        const auto& k = parsed.get_ref<const std::string&>();
        if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
      }
      return true;
    };
    Json j = Json::parse(json, cb, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::invalid_argument("Bad Request: can't parse JSON object");
    if (!j.is_object()) {
      return Status::invalid_argument("Bad Request: JSON body must be an object, got " +
                                      std::string(j.type_name()));
    }
    if (!duplicate.empty()) {
      return Status::invalid_argument("Bad Request: parameter '" + quote_for_error(duplicate) +
                                      "' is given more than once");
    }
    if (params.size() + j.size() > limits.max_params) {
      return Status::invalid_argument("Bad Request: more than " +
                                      std::to_string(limits.max_params) + " parameters");
    }
    for (auto& [name, value] : j.items()) {
      auto text = value_text(value, limits);
      if (!text) continue;
      Status s = params.add(name, std::move(*text));
      if (!s.ok()) return s;
    }
    return Status();
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("Bad Request: can't parse JSON object: ") +
                                    e.what());
  }
}

namespace {
void append_pair(std::string& out, const Params::Entry& e) {
  if (!out.empty()) out += '&';
  append_percent_encoded(out, e.first);
  out += '=';
  append_percent_encoded(out, e.second);
}
}  // namespace

std::string key_string(const Params& params) {
  std::string out;
  for (const auto& e : params.entries()) append_pair(out, e);
  return out;
}

std::string key_string(const Params& params, const std::vector<std::string>& names) {
  std::string out;
  auto it = params.entries().begin();
  const auto end = params.entries().end();
  for (const std::string& n : names) {
    while (it != end && it->first < n) ++it;
    if (it != end && it->first == n) append_pair(out, *it);
  }
  return out;
}

}  // namespace callcache::gateway::logic
