#include "upstream.h"

namespace callcache::replay {

SimUpstream::SimUpstream(const Scenario& scenario, Scheduler& scheduler, std::uint64_t seed)
    : scenario_(scenario), scheduler_(scheduler), limits_(scenario.upstream_limits), rng_(seed) {}

void SimUpstream::call(const CallKey& call, Done done) {
  const MethodDef& m = scenario_.methods.at(std::string(call.method));
  MethodCounters& c = counters_[m.name];
  ++c.calls;
  UpstreamReply reply;
  TimePoint now = scheduler_.clock().now();
  if (auto wait = limits_.try_acquire(call, now)) {
    ++c.floods;
    // Both services answer in whole seconds, rounded up, at least 1.
    std::int64_t secs = (wait->count() + 999'999'999) / 1'000'000'000;
    if (secs < 1) secs = 1;
    reply.retry_after = std::chrono::seconds(secs);
    reply.error = scenario_.account_kind == AccountKind::kBot
                      ? "429 Too Many Requests: retry after " + std::to_string(secs)
                      : "FLOOD_WAIT_" + std::to_string(secs);
  } else {
    reply.ok = true;
    // Account-specific data (an access hash) names its account; public data does not.
    bool per_account = !m.ns.empty() && !scenario_.namespaces.at(m.ns).shared;
    reply.payload = m.name + ":" + std::string(call.object) +
                    (per_account ? "@" + std::string(call.account) : std::string());
  }
  Duration latency = rng_.lognormal(m.latency_median, m.latency_sigma);
  scheduler_.schedule_after(latency,
                            [done = std::move(done), reply = std::move(reply)] { done(reply); });
}

std::uint64_t SimUpstream::total_calls() const {
  std::uint64_t n = 0;
  for (const auto& [_, c] : counters_) n += c.calls;
  return n;
}

std::uint64_t SimUpstream::total_floods() const {
  std::uint64_t n = 0;
  for (const auto& [_, c] : counters_) n += c.floods;
  return n;
}

}  // namespace callcache::replay
