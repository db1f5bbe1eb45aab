// Internal: the gateway's own counters (what the engine's StatsSnapshot does
// not know): request outcomes, upstream calls and latency by method, pacing,
// 429s, tier errors. Rendered as Prometheus text and as JSON.
//
// Method labels: callers pass a method name the preset knows, "other", or a
// generic API rule's "<api>:<rule name>" (from the config), so label
// cardinality stays bounded whatever clients send. Generic API rules also
// count their requests by outcome (rule()).
//
// Pacing waits and refusals are also counted per rate-limit rule (the rule
// that demanded the wait; "penalty" for an upstream back-off), and requests
// that went upstream per tenant (hashed bot ids, never tokens; at most
// kMaxTenants are tracked, the rest are counted together). snapshot() copies
// everything at once for the dashboard's history (stats_history.h).
//
// Thread-safety: counters are relaxed atomics; the per-method, per-rule and
// per-tenant tables are guarded by shared mutexes (taken exclusively only the
// first time a name or tenant is seen).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "callcache/rate_limiter.h"
#include "callcache/striped_counters.h"
#include "callcache/tenant.h"

namespace callcache::gateway {

enum class Outcome : std::uint8_t {
  kHit,        // answered from L1
  kL2Hit,      // answered from the L2 tier (and promoted to L1)
  kMiss,       // led an upstream call for a cacheable read
  kCoalesced,  // waited for another request's upstream call
  kStale,      // served a stale answer (revalidating, or the upstream failed)
  kNegative,   // served a remembered error answer
  kBypass,     // a read inside a post-write window: went upstream, not stored
  kPass,       // forwarded uncached (writes, passthrough, uploads, files)
  kPaced,      // a paced send
  kRejected,   // refused by the gateway (4xx: malformed, blocked, pacing 429)
  kError,      // the upstream failed (502)
  kCount_,
};
const char* outcome_name(Outcome o) noexcept;
inline constexpr std::size_t kOutcomeCount = static_cast<std::size_t>(Outcome::kCount_);
// True for the outcomes whose request made an upstream call of its own
// (miss, bypass, pass, paced, error), by name as in HttpResponse::outcome.
bool went_upstream(std::string_view outcome_name) noexcept;

// Upstream latency bucket bounds in seconds: fine enough between 5 ms and
// 1 s (where Bot API calls fall) that percentiles read from them are within
// half a bucket.
inline constexpr std::array<double, 20> kLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1,    0.15,  0.2,    0.3,   0.5,  1,     2.5,  5,    10,   60};
// Upstream latency counts per bucket (not cumulative): bucket i counts
// latencies <= kLatencyBuckets[i] (and above the previous bound); the last
// one counts the rest.
using LatencyCounts = std::array<std::uint64_t, kLatencyBuckets.size() + 1>;
// The q-quantile (0 < q < 1) of `counts` in milliseconds, interpolated
// linearly inside its bucket (as Prometheus' histogram_quantile does); the
// last bucket reports its lower bound. 0 when `counts` is empty.
double latency_quantile_ms(const LatencyCounts& counts, double q) noexcept;

// The rule a paced call waited for or was refused by
// (TryAcquireResult::binding_rule): one of `limiter`'s rules, or "penalty".
inline std::string_view pacing_rule_name(const RateLimiter& limiter, const TryAcquireResult& t) {
  const auto& rules = limiter.rules();
  return t.binding_rule < rules.size() ? std::string_view(rules[t.binding_rule].name)
                                       : std::string_view("penalty");
}

// Every counter of a Metrics at one instant (tables sorted by name).
struct MetricsSnapshot {
  std::array<std::uint64_t, kOutcomeCount> outcomes{};
  std::uint64_t upstream_calls = 0, received_429 = 0, retried_429 = 0;
  std::uint64_t pacing_waits = 0, pacing_refused = 0;
  struct Method {
    std::string name;
    std::uint64_t calls = 0;
    LatencyCounts latency{};
  };
  std::vector<Method> methods;
  struct Rule {  // a generic API rule, "<api>:<rule name>"
    std::string label;
    std::array<std::uint64_t, kOutcomeCount> outcomes{};
  };
  std::vector<Rule> rules;
  struct PacingRule {
    std::string name;
    std::uint64_t waits = 0, refused = 0;
  };
  std::vector<PacingRule> pacing;
};

class Metrics {
 public:
  static constexpr std::size_t kMaxTenants = 10000;

  void count(Outcome o) noexcept { outcomes_.add(static_cast<std::size_t>(o)); }
  // One upstream exchange: `status` is the HTTP status (0 = no answer).
  void upstream_call(std::string_view method, int status, std::chrono::nanoseconds latency);
  // A paced send waited `wait` (> 0) before going upstream; `rule` names the
  // rate-limit rule that demanded it ("" = not attributed).
  void pacing_wait(std::chrono::nanoseconds wait, std::string_view rule = {});
  // A paced send was refused (429) because of `rule` ("" = not attributed).
  void pacing_refused(std::string_view rule = {});
  // A request of `tenant` was answered with `outcome` (HttpResponse::outcome);
  // counted when it went upstream (went_upstream()). Cheap otherwise.
  void tenant_answer(TenantId tenant, std::string_view outcome);
  void upstream_429_retried() noexcept { retried_429_.fetch_add(1, kRelaxed); }
  void tier_error() noexcept { tier_errors_.fetch_add(1, kRelaxed); }

  std::uint64_t outcome(Outcome o) const noexcept {
    return outcomes_.load(static_cast<std::size_t>(o));
  }
  std::uint64_t upstream_calls() const noexcept { return upstream_calls_.load(kRelaxed); }
  std::uint64_t received_429() const noexcept { return received_429_.load(kRelaxed); }
  std::uint64_t pacing_waits() const noexcept { return pacing_waits_.load(kRelaxed); }
  std::uint64_t tier_errors() const noexcept { return tier_errors_.load(kRelaxed); }

  // Request outcomes of one generic HTTP rule (label "<api>:<rule name>",
  // bounded by the configuration). rule() registers the label on first use;
  // the counters live as long as the Metrics, so callers keep the reference.
  struct RuleCounters {
    std::array<std::atomic<std::uint64_t>, static_cast<int>(Outcome::kCount_)> outcomes{};
    void count(Outcome o) noexcept { outcomes[static_cast<int>(o)].fetch_add(1, kRelaxed); }
    std::uint64_t get(Outcome o) const noexcept {
      return outcomes[static_cast<int>(o)].load(kRelaxed);
    }
  };
  RuleCounters& rule(std::string_view label);

  // Prometheus text (callcache_gateway_* families).
  std::string to_prometheus() const;
  // {"requests":{...},"upstream":{...},"pacing":{...},"tenants":{...},...}
  // ("tenants": the `top_tenants` with most upstream calls).
  std::string to_json(std::size_t top_tenants = 10) const;
  MetricsSnapshot snapshot() const;

 private:
  static constexpr auto kRelaxed = std::memory_order_relaxed;
  struct MethodStats {
    std::atomic<std::uint64_t> calls{0}, errors{0}, status_429{0}, status_5xx{0}, failed{0};
    std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size() + 1> buckets{};
    std::atomic<std::uint64_t> latency_ns_sum{0};
  };
  MethodStats& method(std::string_view name);
  struct PacingRuleStats {
    std::atomic<std::uint64_t> waits{0}, wait_ns{0}, refused{0};
  };
  PacingRuleStats& pacing_rule(std::string_view name);

  // Bumped on every request: one lane per thread group, no shared line.
  StripedCounters<static_cast<std::size_t>(Outcome::kCount_)> outcomes_;
  std::atomic<std::uint64_t> upstream_calls_{0}, received_429_{0}, retried_429_{0};
  std::atomic<std::uint64_t> pacing_waits_{0}, pacing_wait_ns_{0}, pacing_refused_{0};
  std::atomic<std::uint64_t> tier_errors_{0};
  mutable std::shared_mutex mu_;  // guards the map's shape (not the counters)
  std::map<std::string, std::unique_ptr<MethodStats>, std::less<>> methods_;
  std::map<std::string, std::unique_ptr<RuleCounters>, std::less<>> rules_;  // guarded by mu_
  std::map<std::string, std::unique_ptr<PacingRuleStats>, std::less<>> pacing_rules_;  // mu_
  mutable std::shared_mutex tenants_mu_;  // guards the map's shape (not the counters)
  std::unordered_map<std::uint64_t, std::atomic<std::uint64_t>> tenants_;  // upstream calls
  std::atomic<std::uint64_t> tenants_other_{0};                            // beyond kMaxTenants
};

}  // namespace callcache::gateway
