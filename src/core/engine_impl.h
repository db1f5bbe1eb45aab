// Internal: the engine's state. One NamespaceState per configured namespace,
// each owning its shards; the set of namespaces is fixed at creation, so name
// lookups need no lock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "adaptive.h"
#include "callcache/engine.h"
#include "callcache/internal/engine_access.h"
#include "flight.h"
#include "latency.h"
#include "shard.h"
#include "striped_counters.h"

namespace callcache::internal {

struct NamespaceState {
  std::string name;
  NamespacePolicy policy;
  std::atomic<std::uint32_t> version{1};
  std::atomic<std::uint64_t> epoch{0};        // bumped before every invalidation's removals
  std::uint32_t swept_version = 1;            // guarded by EngineImpl::sweep_mu
  std::atomic<const ValueOps*> ops{nullptr};  // bound value type (first bind wins)
  std::uint8_t type_index = 0;                // its registry index, set with ops
  std::mutex bind_mu;                         // serialises binding
  // Shared by the shards, so declared (and destroyed) before them.
  LookupCounters lookups;                        // plain lookups, updates in place
  std::unique_ptr<AdaptiveController> adaptive;  // kAdaptive only
  std::vector<std::unique_ptr<Shard>> shards;
  std::uint64_t shard_mask = 0;
  // Namespaces with a per-tenant cap keep each tenant in one shard so the cap
  // is exact and only the tenant's own entries are displaced.
  bool shard_by_tenant = false;
  std::uint64_t byte_budget = 0;             // per shard, 0 = unbounded
  StripedCounters<kLoadEvents> load_events;  // bumped on every get_or_load hit
  LatencyHistogram latency;

  Shard& shard_for(std::uint64_t hash, TenantId tenant) const noexcept {
    std::uint64_t pick =
        shard_by_tenant ? (tenant.value * 0x9e3779b97f4a7c15ULL) >> 32 : hash >> 16;
    return *shards[pick & shard_mask];
  }
  TenantId effective(TenantId t) const noexcept { return policy.shared ? kSharedTenant : t; }
};

class EngineImpl {
 public:
  EngineOptions options;
  const Clock* clock = nullptr;
  std::vector<std::unique_ptr<NamespaceState>> namespaces;
  std::unordered_map<std::string, std::uint32_t> by_name;
  std::atomic<bool> shut_down{false};

  std::mutex label_mu;  // guards scope_label
  std::string scope_label = "isolated";

  // Single-flight table of the loading layer. Declared before own_scheduler
  // so it is destroyed after it: refresh tasks dropped by a dying scheduler
  // fail their flights through the table.
  std::unique_ptr<FlightTable> flights = std::make_unique<FlightTable>(16);

  // Scheduler: the caller's, or our own created on first use.
  std::once_flag scheduler_once;
  std::unique_ptr<Scheduler> own_scheduler;
  Scheduler* scheduler = nullptr;
  Scheduler& get_scheduler();

  // Background sweep. sweep_mu guards the fields below and serialises sweeps.
  std::mutex sweep_mu;
  std::condition_variable sweep_cv;
  bool sweep_stop = false;
  bool sweep_running = false;
  Scheduler::TaskId sweep_task = 0;
  void schedule_sweep();
  void stop_sweeper();
  std::uint64_t sweep();

  LookupContext context(const NamespaceState& ns) const noexcept {
    return LookupContext{clock->now(),
                         static_cast<std::uint16_t>(ns.version.load(std::memory_order_acquire)),
                         ns.policy.stale_ttl, ns.policy.refresh_ahead};
  }
};

}  // namespace callcache::internal
