// Internal: the gateway's pure request handler for one generic JSON API (an
// `apis:` entry of the config, e.g. the SNS backend under /sns) — request in,
// response out. All effects go through injected interfaces: the upstream
// (UpstreamExecutor), the cache (the library's Tiers, read through
// TieredCache), metrics. The rule language is logic/rules.h.
//
// Per request: the API's prefix is stripped (unless strip_prefix is off),
// then logic::plan_generic → one of
//   CachedRead  the library's read-through (cached_answer.h): L1 (fresh →
//               hit; refresh-due/stale → served and refreshed in the
//               background, per the namespace's refresh_ahead/stale_ttl),
//               then L2, then one coalesced upstream call per (namespace,
//               tenant, key); only 200 answers are kept, with the rule's ttl
//               and tags, and nothing an invalidation overtook. A request
//               with a body is forwarded uncached (the rules cannot key on
//               bodies).
//   Invalidate  forward, then drop what the rule invalidates (L1 and L2),
//               whatever the upstream answered (a write that timed out may
//               have happened)
//   Passthrough forward as is (no rule, `cache: false`, no tenant)
// Answers relay the upstream's status, content type and headers (hop-by-hop
// headers, Server and Date dropped). Cached answers keep only the content
// type and the headers in kCachedHeaders (never Set-Cookie), and a cached
// read's 200 miss answers with the same headers as its later hits; its
// other answers (shared with coalesced callers too) lose only Set-Cookie. Conditional
// and range headers are not forwarded on cached reads (a coalesced waiter
// must not receive someone else's 304 or 206).
//
// Errors: a request the rules cannot plan (bad percent-encoding, target too
// long) → 400 {"error":"..."}; the upstream failing → 502 {"error":"..."}.
//
// Cache layout: the value is a CachedAnswer (cached_answer.h); keys are the
// plan's ("<rule name>?p.id=1&q.lang=en", prefixed with the method for `*`
// rules); tags are the plan's prefixed with "<api name>:", so two APIs never
// invalidate each other's answers. Admin invalidation by namespace, tenant
// or key works as for the Bot API's namespaces.
//
// Thread-safety: handle() may run concurrently on any number of threads.
// REQUIRES: every dependency outlives the handler and every coroutine it
// started (background refreshes finish or are destroyed with the io_context).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/tiers.h"
#include "gateway/cached_answer.h"
#include "gateway/logic/rules.h"
#include "gateway/metrics.h"
#include "gateway/net/server.h"
#include "gateway/net/upstream.h"

namespace callcache::gateway {

// Response headers a cached answer keeps (besides Content-Type).
inline constexpr std::string_view kCachedHeaders[] = {
    "etag", "last-modified", "content-language", "content-disposition", "link", "retry-after"};

struct GenericHandlerOptions {
  std::string name;    // the API's name: metrics labels ("<name>:<rule>"), tags, logs
  std::string prefix;  // "/sns": what the router matched (no trailing '/')
  bool strip_prefix = true;
  Origin upstream;     // its base_path is prepended by the UpstreamExecutor
  logic::Rules rules;  // owned: plans point into it
  TenantKey tenant_key = kDefaultTenantKey;
  logic::RequestLimits limits;
  // Fill HttpResponse::log_target (the path; a query shows as "?...", since it
  // may hold an API key) for the access log.
  bool log_targets = true;
};

struct GenericHandlerDeps {
  Tiers* tiers = nullptr;  // the engine and the L2 tier (if any)
  UpstreamExecutor* upstream = nullptr;
  Metrics* metrics = nullptr;
};

class GenericHandler final : public HttpHandler {
 public:
  // Opens a read-through cache for every namespace the rules cache in.
  // Errors: a dependency missing, a namespace the engine lacks (kNotFound)
  // or bound to another value type.
  static Result<std::unique_ptr<GenericHandler>> create(GenericHandlerDeps deps,
                                                        GenericHandlerOptions options);

  boost::asio::awaitable<HttpResponse> handle(HttpRequest request) override;

  const GenericHandlerOptions& options() const { return options_; }

 private:
  using Response = boost::asio::awaitable<HttpResponse>;
  // A planned cached read, owned (the plan's views die with the request).
  struct Read {
    AnswerCache* cache = nullptr;
    TenantId tenant;
    std::string key;
    std::optional<Duration> ttl;
    std::vector<std::string> tags;
    Metrics::RuleCounters* counters = nullptr;
    std::string_view label;
  };

  GenericHandler(GenericHandlerDeps deps, GenericHandlerOptions options);

  Response cached_read(HttpRequest request, Read read);
  Response forward_and_relay(HttpRequest request, std::string_view label,
                             Metrics::RuleCounters* counters, Outcome outcome);
  boost::asio::awaitable<UpstreamResult> forward(HttpRequest request, std::string_view label);
  void invalidate(const std::vector<std::string>& tags);
  std::string tag(std::string_view plan_tag) const;

  GenericHandlerDeps deps_;
  GenericHandlerOptions options_;
  std::map<std::string, AnswerCache, std::less<>> caches_;
  // Per rule (same index as options_.rules.rules): "<api>:<rule name>".
  std::vector<std::string> labels_;
  std::vector<Metrics::RuleCounters*> counters_;
  std::string unmatched_label_;  // "<api>:-"
  Metrics::RuleCounters* unmatched_ = nullptr;
};

}  // namespace callcache::gateway
