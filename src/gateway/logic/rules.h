// Internal: generic HTTP rules — caching for any JSON API (the seeds' SNS
// backend) described in the main config, not in code.
//
//   rules:
//     - match: GET /templates/{id}        # METHOD (or *) and a path pattern
//       name: template                    # optional; default: the match text
//                                         # (neither holds control characters)
//       namespace: sns                    # cache answers in this namespace
//       ttl: 5m                           # optional; default: the namespace's
//       key: [query.lang, header.accept-language]
//       tenant: [header.x-api-key]        # optional; see below
//     - match: GET /templates*
//       namespace: sns
//       key: [query.*]
//     - match: POST /templates/*
//       invalidates: [GET /templates*]    # rules named by match text or name
//     - match: DELETE /templates/{id}
//       invalidates: [template, GET /templates*]
//     - match: GET /health
//       cache: false                      # forward uncached (stops matching)
//
// Matching: rules are tried in order; the first whose method and path
// pattern match wins; a request no rule matches is forwarded uncached. Path
// patterns match the raw path (before percent-decoding, without the query):
//   literal text  matches itself
//   {name}        one non-empty path segment (no '/'), captured as `name`
//   *             any text, including '/' and nothing
//
// Keys: "<rule name>?" followed by every captured path parameter
// ("p.id=42"), then the `key` entries in order: "query.<name>", "query.*"
// (all query parameters, sorted), "header.<name>" (case-insensitive). Values
// are percent-decoded then re-encoded, so "%41" and "A" are one key.
//
// Tenancy: `tenant` lists headers (or query parameters) whose values identify
// the caller (an API key, an account id); they are hashed into the TenantId
// (SipHash with the gateway's tenant key) and never appear in keys, tags or
// logs. A request lacking them is forwarded uncached, never shared. Without
// `tenant` a rule's answers belong to kSharedTenant.
//
// Invalidation: a cached answer carries the tags
//   "rule:<tenant hex>:<rule name>" and, if the rule captures path
//   parameters, "rule:<tenant hex>:<rule name>:<its path parameters>".
// A write invalidating rule R drops the answers of R whose path parameters
// equal the write's captures of the same names when the write captures all
// of R's parameters, else every answer of R (for the tenant R derives from
// the write's request headers).
//
// Only 200 answers are stored (generic APIs have no "ok" field to check).
//
// Thread-safety: Rules is immutable once parsed; share it by const reference.
// RulePlan holds a pointer into its Rules, which must outlive it.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/clock.h"
#include "callcache/policy.h"
#include "callcache/status.h"
#include "callcache/tenant.h"
#include "request.h"

namespace callcache::gateway::logic {

// One piece of a path pattern.
struct PatternToken {
  enum class Kind : std::uint8_t { kLiteral, kParam, kStar };
  Kind kind = Kind::kLiteral;
  std::string text;  // literal text, or the parameter name
};

// Where a key or tenant part comes from.
struct RequestPart {
  enum class Source : std::uint8_t { kQuery, kAllQuery, kHeader };
  Source source = Source::kQuery;
  std::string name;  // query parameter, or lowercase header name
};

struct Rule {
  enum class Action : std::uint8_t {
    kCache,        // store 200 answers under the rule's key
    kInvalidate,   // a write: drop what `invalidates` names, then forward
    kPassthrough,  // forward uncached
  };
  std::string name;    // unique among the rules
  std::string match;   // "GET /templates/{id}" as written (normalised spaces)
  std::string method;  // "GET", or "*" for any
  std::vector<PatternToken> pattern;
  std::vector<std::string> params;  // captured parameter names, in order
  Action action = Action::kPassthrough;
  std::string ns;
  std::optional<Duration> ttl;
  std::vector<RequestPart> key;
  std::vector<RequestPart> tenant;
  std::vector<std::size_t> invalidates;  // indices of kCache rules
  std::string origin;                    // "rules[2]", for messages
};

struct Rules {
  std::vector<Rule> rules;

  // The namespaces the rules cache in (sorted, unique): the Engine must
  // declare them.
  std::vector<std::string> namespaces_used() const;
};

// Parses the `rules:` section (a list; null = no rules). Errors name the
// entry and key: "rules[2].match: expected 'METHOD /path', got 'templates'".
Result<Rules> parse_rules(const YAML::Node& section, std::string_view path = "rules");

// Checks that every caching rule's namespace is among `namespaces`.
// Error: "rules[0].namespace: unknown namespace 'sns' (declared: ...)".
Status check_namespaces(const Rules& rules, const std::vector<NamespaceSpec>& namespaces);

struct RulePlan {
  enum class Kind : std::uint8_t { kCachedRead, kInvalidate, kPassthrough };
  Kind kind = Kind::kPassthrough;
  const Rule* rule = nullptr;  // the matching rule; nullptr if none matched
  // kCachedRead:
  std::string ns;
  TenantId tenant = kSharedTenant;
  std::string key;
  std::optional<Duration> ttl;    // nullopt: the namespace's ttl
  std::vector<std::string> tags;  // store the answer with these
  // kInvalidate: Engine::invalidate_tag each, after forwarding.
  std::vector<std::string> invalidate_tags;
  // kPassthrough: why ("no rule", "rule says cache: false", "no tenant").
  std::string reason;
};

// Plans a request against `rules`. Errors (400 via http_status_of): target
// over the limits, bad percent-encoding in the query or a captured segment.
Result<RulePlan> plan_generic(const HttpRequestView& request, const Rules& rules,
                              const TenantKey& tenant_key = kDefaultTenantKey);

// Matches `path` against a compiled pattern, appending captures to
// `captures` (raw, not decoded). Exposed for tests.
bool match_pattern(const std::vector<PatternToken>& pattern, std::string_view path,
                   std::vector<std::string_view>& captures);

// Compiles a pattern such as "/templates/{id}*". Errors name the problem.
Result<std::vector<PatternToken>> compile_pattern(std::string_view pattern);

}  // namespace callcache::gateway::logic
