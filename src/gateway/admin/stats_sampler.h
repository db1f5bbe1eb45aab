// Internal: feeds the dashboard's history. take_sample() copies the
// gateway's counters (Metrics, the engine's namespaces, the L2 tier) into a
// StatsSample; HistorySampler does that once per period on its own thread
// and records each sample into a StatsHistory.
//
// Sampling never blocks on the L2 tier: the tier's state is read from its
// DegradingBackend's counters (no probe), its counters from stats().
//
// Thread-safety: take_sample() may run on any thread (every source is
// thread-safe). HistorySampler's start() and stop() are called by the
// owning thread; stop() joins the sampling thread (also on destruction).
// REQUIRES: the sources and the history outlive the sampler.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "callcache/backend.h"
#include "callcache/engine.h"
#include "gateway/admin/stats_history.h"
#include "gateway/metrics.h"

namespace callcache::gateway {

struct SamplerSources {
  const Metrics* metrics = nullptr;
  Engine* engine = nullptr;
  Backend* l2 = nullptr;  // optional: the L2 tier
};

StatsSample take_sample(const SamplerSources& sources);

class HistorySampler {
 public:
  HistorySampler(SamplerSources sources, StatsHistory& history,
                 std::chrono::milliseconds period = std::chrono::seconds(1))
      : sources_(sources), history_(history), period_(period) {}
  ~HistorySampler() { stop(); }
  HistorySampler(const HistorySampler&) = delete;
  HistorySampler& operator=(const HistorySampler&) = delete;

  // Records a first sample at once (the baseline), then one per period.
  void start();
  // Idempotent.
  void stop();

 private:
  SamplerSources sources_;
  StatsHistory& history_;
  std::chrono::milliseconds period_;
  std::mutex mu_;  // guards the wait of the sampling thread
  std::condition_variable_any cv_;
  std::jthread thread_;
};

}  // namespace callcache::gateway
