// take_sample() and HistorySampler (stats_sampler.h).
#include "gateway/admin/stats_sampler.h"

#include "callcache/degrading_backend.h"

namespace callcache::gateway {

StatsSample take_sample(const SamplerSources& sources) {
  StatsSample s;
  s.at = std::chrono::steady_clock::now();
  s.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  s.gateway = sources.metrics->snapshot();
  StatsSnapshot engine = sources.engine->stats();
  s.namespaces.reserve(engine.namespaces.size());
  for (const NamespaceStats& ns : engine.namespaces) {
    StatsSample::Namespace& out = s.namespaces.emplace_back();
    out.name = ns.name;
    out.hits = ns.hits + ns.coalesced + ns.stale_hits + ns.negative_hits;
    out.lookups = out.hits + ns.misses;
    out.entries = ns.entries;
    out.bytes = ns.bytes;
    out.max_entries = ns.max_entries;
    out.max_bytes = ns.max_bytes;
  }
  if (sources.l2) {
    Backend& backend = *sources.l2;
    BackendStats b = backend.stats();
    s.l2.backend = std::string(backend.name());
    s.l2.gets = b.gets;
    s.l2.hits = b.hits;
    s.l2.errors = b.errors;
    s.l2.pending_writes = b.pending_writes;
    if (const auto* degrading = dynamic_cast<const DegradingBackend*>(&backend)) {
      s.l2.down = degrading->degrade_stats().down;
    }
  }
  return s;
}

void HistorySampler::start() {
  if (thread_.joinable()) return;
  history_.record(take_sample(sources_));
  thread_ = std::jthread([this](std::stop_token stop) {
    auto next = std::chrono::steady_clock::now() + period_;
    std::unique_lock lock(mu_);
    while (!cv_.wait_until(lock, stop, next, [] { return false; })) {
      if (stop.stop_requested()) return;
      lock.unlock();
      history_.record(take_sample(sources_));
      lock.lock();
      next += period_;
      // After a stall (a suspended process), skip the missed periods.
      const auto now = std::chrono::steady_clock::now();
      if (next < now) next = now + period_;
    }
  });
}

void HistorySampler::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

}  // namespace callcache::gateway
