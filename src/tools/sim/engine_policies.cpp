#include "tools/sim/engine_policies.h"

#include <chrono>
#include <cstring>
#include <string>
#include <string_view>

#include "callcache/cache.h"
#include "callcache/clock.h"
#include "callcache/engine.h"
#include "callcache/tenant.h"

namespace callcache::sim {
namespace {

// The cached value: nothing but presence matters to a hit-ratio simulation.
struct Present {};

}  // namespace

Result<std::uint64_t> simulate_engine(EvictionPolicy policy, const Trace& trace,
                                      std::uint64_t size) {
  ManualClock clock;
  NamespacePolicy ns;
  ns.max_entries = size;
  ns.eviction = policy;
  ns.ttl = std::chrono::hours(24 * 365 * 100);  // the clock never moves; belt and braces
  EngineOptions options;
  options.namespaces = {NamespaceSpec{"sim", ns}};
  options.shards = 1;
  options.clock = &clock;
  options.sweep_interval = Duration::zero();
  auto engine = Engine::create(std::move(options));
  if (!engine.ok()) return engine.status();
  auto cache = Cache<Present>::open(**engine, "sim");
  if (!cache.ok()) return cache.status();

  // Keys are the dense ids' 8 bytes: interned once, no per-request formatting.
  char key_bytes[8];
  const std::string_view key(key_bytes, sizeof key_bytes);
  std::uint64_t misses = 0;
  for (std::uint32_t id : trace.requests) {
    std::uint64_t k = id;
    std::memcpy(key_bytes, &k, sizeof k);
    if (cache->get(kSharedTenant, key)) continue;
    ++misses;
    if (Status s = cache->put(kSharedTenant, key, Present{}); !s.ok()) return s;
  }
  return misses;
}

std::vector<PolicyRun> engine_policy_runs() {
  const EvictionPolicy def = NamespacePolicy{}.eviction;
  std::vector<PolicyRun> runs;
  for (EvictionPolicy p : kEnginePolicies) {
    PolicyRun r;
    r.name = std::string(eviction_policy_name(p));
    r.is_default = p == def;
    r.label = r.name + (r.is_default ? " (default)" : "");
    r.engine = true;
    r.misses = [p](const Trace& t, std::uint64_t size) { return simulate_engine(p, t, size); };
    runs.push_back(std::move(r));
  }
  return runs;
}

}  // namespace callcache::sim
