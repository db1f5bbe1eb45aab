// Fuzz target: the Bot API canonicaliser (gateway/logic/canonical.h) — the
// part of a cache key that says which question was asked. The input is read
// as a JSON document, as a JSON object body and as a url-encoded string.
//
// Properties:
//   - canonical JSON is idempotent, and no deeper than its input;
//   - a JSON object body and the same members in reverse order give the same
//     parameters;
//   - parameters written back as a url-encoded string (key_string) parse to
//     the same parameters, in whatever order the pairs come;
//   - percent-encoding round-trips; canonical integers print as themselves.
#include "gateway/logic/canonical.h"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz_check.h"

namespace callcache::gateway::logic {
namespace {

const RequestLimits kLimits;

// key_string(params) parsed again, with its pairs in reverse order too.
void check_form_round_trip(const Params& params) {
  const std::string form = key_string(params);
  Params again;
  FUZZ_CHECK(add_urlencoded(again, form, kLimits).ok());
  FUZZ_CHECK(key_string(again) == form);
  std::vector<std::string_view> pairs;
  for (std::string_view rest = form; !rest.empty();) {
    const std::size_t amp = rest.find('&');
    pairs.push_back(rest.substr(0, amp));
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
  }
  std::string reversed;
  for (auto it = pairs.rbegin(); it != pairs.rend(); ++it) {
    if (!reversed.empty()) reversed += '&';
    reversed += *it;
  }
  Params backwards;
  FUZZ_CHECK(add_urlencoded(backwards, reversed, kLimits).ok());
  FUZZ_CHECK(key_string(backwards) == form);
}

void check_json(std::string_view input) {
  auto canon = canonical_json(input, kLimits.max_json_depth);
  if (!canon.ok()) return;
  auto twice = canonical_json(*canon, kLimits.max_json_depth);
  FUZZ_CHECK(twice.ok() && *twice == *canon);
  FUZZ_CHECK(json_nesting_depth(*canon) <= json_nesting_depth(input));
}

void check_json_object(std::string_view input) {
  Params params;
  if (!add_json_object(params, input, kLimits).ok()) return;
  check_form_round_trip(params);
  // The members in reverse order: the same parameters.
  auto j = nlohmann::json::parse(input, nullptr, false);
  FUZZ_CHECK(j.is_object());
  std::vector<std::string> members;
  for (auto& [name, value] : j.items()) {
    members.push_back(nlohmann::json(name).dump() + ":" + value.dump());
  }
  std::string reversed = "{";
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    if (reversed.size() > 1) reversed += ',';
    reversed += *it;
  }
  reversed += '}';
  Params backwards;
  FUZZ_CHECK(add_json_object(backwards, reversed, kLimits).ok());
  FUZZ_CHECK(key_string(backwards) == key_string(params));
}

void check_urlencoded(std::string_view input) {
  Params params;
  if (add_urlencoded(params, input, kLimits).ok()) check_form_round_trip(params);
  auto decoded = percent_decode(percent_encode(input), false);
  FUZZ_CHECK(decoded.ok() && *decoded == input);
  if (is_canonical_integer(input)) {
    FUZZ_CHECK(std::to_string(std::stoll(std::string(input))) == input);
  }
}

}  // namespace
}  // namespace callcache::gateway::logic

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callcache::gateway::logic;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_json(input);
  check_json_object(input);
  check_urlencoded(input);
  (void)canonical_text_value(input, kLimits);
  return 0;
}
