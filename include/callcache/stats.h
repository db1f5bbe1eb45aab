// callcache/stats.h — what the cache did, per namespace and in total.
//
// Counters are kept per shard (no shared cache line on the hit path) and
// summed when a snapshot is taken, so a snapshot is consistent per counter but
// not across counters taken under concurrent traffic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace callcache {

// Why an entry left the cache.
enum class EvictionCause : std::uint8_t {
  kSize,       // max_entries reached
  kBytes,      // max_bytes reached
  kTenantCap,  // max_entries_per_tenant reached
  kExpired,    // ttl (+ stale_ttl) over
  kExplicit,   // invalidated by key, tenant, namespace or tag
  kCount_,
};

struct LatencySummary {
  std::uint64_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
};

struct NamespaceStats {
  std::string name;
  std::string scope;  // "isolated", "task" or "process" (set by the scope registry)
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t inserts = 0;
  std::uint64_t updates = 0;
  std::uint64_t rejected_too_large = 0;  // values larger than max_bytes, not stored
  std::uint64_t evictions[static_cast<int>(EvictionCause::kCount_)] = {};
  std::uint64_t expirations = 0;  // entries removed because they expired
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  std::uint64_t max_entries = 0;
  std::uint64_t max_bytes = 0;
  // Loading (get_or_load).
  std::uint64_t loads = 0;
  std::uint64_t load_failures = 0;
  std::uint64_t load_timeouts = 0;
  std::uint64_t coalesced = 0;  // callers served by another caller's load
  std::uint64_t negative_hits = 0;
  std::uint64_t stale_hits = 0;
  std::uint64_t refreshes = 0;
  std::uint64_t refresh_failures = 0;
  std::uint64_t late_loads = 0;  // loader completions discarded (their flight had timed out)
  LatencySummary load_latency;

  double hit_ratio() const {
    return hits + misses ? static_cast<double>(hits) / static_cast<double>(hits + misses) : 0.0;
  }
  // entries / max_entries.
  double utilisation() const {
    return max_entries ? static_cast<double>(entries) / static_cast<double>(max_entries) : 0.0;
  }
  std::uint64_t evicted(EvictionCause c) const { return evictions[static_cast<int>(c)]; }
};

struct StatsSnapshot {
  std::vector<NamespaceStats> namespaces;
  NamespaceStats total;  // name "total"; latency merged across namespaces

  // {"total": {...}, "namespaces": {"entity": {...}, ...}}
  std::string to_json() const;
  // Prometheus text exposition format, e.g.
  //   callcache_hits_total{namespace="entity"} 42
  std::string to_prometheus() const;
};

const char* eviction_cause_name(EvictionCause c) noexcept;

}  // namespace callcache
