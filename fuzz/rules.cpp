// Fuzz target: the generic HTTP rules (gateway/logic/rules.h) — the `rules:`
// YAML of an `apis:` entry, path patterns and key templates — and planning a
// request against them. The input is an optional rules document, a line
// "===", then a request as text (fuzz/request_text.h); without "===" the
// whole input is the request, planned against the rules of
// config/sns_example.yaml.
//
// Properties:
//   - a refusal is a 400 whose error body is Bot API-shaped JSON;
//   - a matched rule's captures are non-empty path segments that, with the
//     pattern's literals, spell the path (for patterns without '*');
//   - the plan does not depend on the order of the query parameters;
//   - a cached read's key starts with its rule's name and '?'; keys and tags
//     contain no tab or newline (they are text in invalidation-marker keys
//     and log lines).
#include "gateway/logic/rules.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/yaml_reader.h"
#include "fuzz_check.h"
#include "request_text.h"

namespace callcache::gateway::logic {
namespace {

constexpr const char* kSnsRules = R"(
- match: GET /templates/{id}
  name: template
  namespace: sns
  ttl: 5m
  key: [query.lang]
  tenant: [header.x-api-key]
- match: GET /templates
  name: templates
  namespace: sns
  ttl: 1m
  key: [query.*]
  tenant: [header.x-api-key]
- match: GET /catalog/{kind}/{id}
  namespace: sns_public
- match: GET /users/{user}/files/*
  namespace: sns
  key: [header.accept-language, query.v]
  tenant: [query.account]
- match: POST /templates
  invalidates: [templates]
- match: "* /templates/{id}"
  invalidates: [template, templates]
- match: GET /health
  cache: false
)";

std::optional<Rules> load(const std::string& yaml) {
  auto doc = config::load_string(yaml);
  if (!doc.ok()) return std::nullopt;
  auto rules = parse_rules(*doc);
  if (!rules.ok()) {
    FUZZ_CHECK(!rules.status().message().empty());
    return std::nullopt;
  }
  return std::move(*rules);
}

void check_captures(const Rule& rule, std::string_view path) {
  std::vector<std::string_view> caps;
  FUZZ_CHECK(match_pattern(rule.pattern, path, caps));
  FUZZ_CHECK(caps.size() == rule.params.size());
  std::string spelled;
  bool star = false;
  std::size_t i = 0;
  for (const PatternToken& t : rule.pattern) {
    if (t.kind == PatternToken::Kind::kStar) star = true;
    if (t.kind == PatternToken::Kind::kLiteral) spelled += t.text;
    if (t.kind == PatternToken::Kind::kParam) {
      FUZZ_CHECK(!caps[i].empty() && caps[i].find('/') == std::string_view::npos);
      spelled += caps[i++];
    }
  }
  if (!star) FUZZ_CHECK(spelled == path);
}

void check_clean(std::string_view s) { FUZZ_CHECK(s.find_first_of("\t\n") == std::string::npos); }

// The target with its query pieces in reverse order.
std::string reversed_query(const std::string& target) {
  const std::size_t q = target.find('?');
  if (q == std::string::npos) return target;
  std::vector<std::string_view> pieces;
  for (std::string_view rest = std::string_view(target).substr(q + 1);;) {
    const std::size_t amp = rest.find('&');
    pieces.push_back(rest.substr(0, amp));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  std::string out = target.substr(0, q + 1);
  for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
    if (it != pieces.rbegin()) out += '&';
    out += *it;
  }
  return out;
}

void check_plan(const Rules& rules, callcache::fuzz::TextRequest& request) {
  auto plan = plan_generic(request.view(), rules);
  if (!plan.ok()) {
    FUZZ_CHECK(http_status_of(plan.status()) == 400);
    auto j = nlohmann::json::parse(error_json(plan.status()), nullptr, false);
    FUZZ_CHECK(!j.is_discarded() && j["error_code"] == 400);
    return;
  }
  if (plan->rule) check_captures(*plan->rule, split_target(request.target).first);
  if (plan->kind == RulePlan::Kind::kCachedRead) {
    FUZZ_CHECK(plan->key.starts_with(plan->rule->name + "?"));
    check_clean(plan->key);
  }
  for (const std::string& tag : plan->tags) check_clean(tag);
  for (const std::string& tag : plan->invalidate_tags) check_clean(tag);

  const std::string original = request.target;
  request.target = reversed_query(original);
  auto again = plan_generic(request.view(), rules);
  request.target = original;
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->kind == plan->kind && again->rule == plan->rule);
  FUZZ_CHECK(again->key == plan->key && again->tenant == plan->tenant);
  FUZZ_CHECK(again->tags == plan->tags && again->invalidate_tags == plan->invalidate_tags);
}

}  // namespace
}  // namespace callcache::gateway::logic

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callcache::gateway::logic;
  static const Rules sns = *load(kSnsRules);
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::optional<Rules> own;
  const Rules* rules = &sns;
  if (const std::size_t sep = input.find("\n===\n"); sep != std::string_view::npos) {
    own = load(std::string(input.substr(0, sep)));
    if (!own) return 0;
    rules = &*own;
    input.remove_prefix(sep + 5);
  }
  callcache::fuzz::TextRequest request = callcache::fuzz::parse_text_request(input);
  check_plan(*rules, request);
  return 0;
}
