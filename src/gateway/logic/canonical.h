// Internal: canonical request parameters — the part of a cache key that says
// "which question was asked", independent of how the client spelled it.
//
// The Bot API reads every parameter as text whatever the transport, so
// callcache does the same. Canonical form of one parameter value:
//   - a JSON string: its text;            "chat_id": "-100123" → -100123
//   - a JSON number: its decimal text;    "chat_id": -100123   → -100123
//   - a JSON boolean: true / false;
//   - a JSON null: the parameter is absent;
//   - a JSON object or array, or a text value that parses as one
//     (url-encoded reply_markup, scope ...): canonical JSON — keys sorted, no
//     whitespace, and inside it every string that is a canonical integer
//     ("-100123") turned into that number, so nested ids compare equal too.
// Parameter names must match [A-Za-z0-9_]{1,64}; a name given twice (in one
// source, or in both the query and the body) is an error, never a silent pick.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "callcache/status.h"
#include "request.h"

namespace callcache::gateway::logic {

// Parameters sorted by name, values canonical (see above). At most one value
// per name.
class Params {
 public:
  using Entry = std::pair<std::string, std::string>;

  // The canonical value of `name`, or nullptr when absent.
  const std::string* find(std::string_view name) const noexcept;
  std::string* find(std::string_view name) noexcept;
  const std::vector<Entry>& entries() const noexcept { return entries_; }
  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }

  // Adds a parameter. Errors (kInvalidArgument): bad name, duplicate name.
  // `value` must already be canonical (see canonical_text_value).
  Status add(std::string name, std::string value);
  // Drops `name` if present.
  void erase(std::string_view name);

 private:
  std::vector<Entry> entries_;  // sorted by name, unique names
};

// Adds url-encoded pairs ("a=1&b=2", from a query string or a form body).
// Values are canonicalised with canonical_text_value.
Status add_urlencoded(Params& params, std::string_view encoded, const RequestLimits& limits);

// Adds the members of a JSON object body. Errors: malformed JSON, a body that
// is not an object, too deep, too many members, bad or duplicate names.
Status add_json_object(Params& params, std::string_view json, const RequestLimits& limits);

// The canonical form of a text value: JSON-looking text (first non-blank
// character '{' or '[') that parses is rewritten as canonical JSON; any other
// text is returned unchanged.
std::string canonical_text_value(std::string_view text, const RequestLimits& limits);

// Canonical JSON of a whole JSON document (object, array or scalar), with the
// nested integer normalisation above. Errors: malformed or too deep.
Result<std::string> canonical_json(std::string_view json, std::size_t max_depth);

// Nesting depth of JSON text ('{' / '[' outside string literals), counted
// without parsing. Check it before building a DOM of untrusted JSON.
std::size_t json_nesting_depth(std::string_view json) noexcept;

// True if `json` holds a raw NUL byte, which JSON never does (not even in a
// string) but nlohmann's parser takes as the end of its input: it would
// parse `{"a":1}<NUL>anything` as {"a":1}, so two different bodies would
// give one cache key. Every parse of outside JSON checks this first.
bool has_raw_nul(std::string_view json) noexcept;

// True if `s` is a canonical decimal integer that fits in int64
// ("0", "-100123"; not "007", "+1", "1.0", "-0").
bool is_canonical_integer(std::string_view s) noexcept;

// "name=value&name=value" over all parameters, names and values
// percent-encoded so separators stay unambiguous.
std::string key_string(const Params& params);
// The same over the parameters named in `names` only (absent ones skipped).
// REQUIRES: `names` sorted and unique.
std::string key_string(const Params& params, const std::vector<std::string>& names);

}  // namespace callcache::gateway::logic
