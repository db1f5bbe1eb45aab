// callcache/policy.h — how one namespace of the cache behaves.
//
// A namespace ("entity", "message", "full_channel" …) groups entries of one
// kind under one policy: how long they stay fresh, how many may be held, how
// they are evicted, and how failures and expiry are served.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache {

enum class EvictionPolicy : std::uint8_t {
  kLru,       // least recently used; exact when uncontended, approximate under contention
  kS3Fifo,    // S3-FIFO (small probationary FIFO + main FIFO + ghost): scan resistant
  kWTinyLfu,  // W-TinyLFU (window + frequency-sketch admission + segmented main)
  kAdaptive,  // S3-FIFO or W-TinyLFU, whichever misses less in simulations on sampled keys
};

std::string_view eviction_policy_name(EvictionPolicy p) noexcept;
Result<EvictionPolicy> parse_eviction_policy(std::string_view name);

struct NamespacePolicy {
  // How long an entry is fresh after it is stored. REQUIRES: > 0.
  Duration ttl = std::chrono::seconds(300);
  // Bounds, enforced exactly after every insert. max_entries REQUIRES: > 0.
  // max_bytes = 0 means "no byte bound".
  std::uint64_t max_entries = 500;
  std::uint64_t max_bytes = 0;
  // Cap on one tenant's entries in this namespace (0 = no cap). A tenant over
  // its cap loses its own least valuable entries, never another tenant's.
  // Each tenant's entries live in one shard, and such a namespace has at
  // most max_entries / max_entries_per_tenant shards, so every tenant can
  // reach its cap; keep max_entries well above the cap (a few tenants at
  // their cap in one shard still compete for it).
  std::uint64_t max_entries_per_tenant = 0;
  // The default: within 1% of the best of the others' miss ratios on every
  // trace and size docs/sim.md measures, where each static policy is up to
  // 23% behind somewhere; it costs about 5-7 bytes per entry more than
  // S3-FIFO (README, "Memory").
  EvictionPolicy eviction = EvictionPolicy::kAdaptive;
  // How long a failed load is remembered and returned without calling the
  // loader again (0 = failures are not cached).
  Duration negative_ttl = Duration::zero();
  // How long after expiry an entry may still be served while one background
  // refresh runs, or when the refresh fails (0 = never served stale).
  Duration stale_ttl = Duration::zero();
  // An entry read within this window before its expiry is refreshed in the
  // background so hot keys never miss (0 = off). REQUIRES: < ttl.
  Duration refresh_ahead = Duration::zero();
  // Each entry's ttl is scaled by a factor drawn from [1 - jitter, 1 + jitter]
  // so entries stored together do not expire together. REQUIRES: 0 <= jitter < 1.
  double jitter = 0.0;
  // A load running longer than this fails for all its waiters and frees the
  // key (0 = no limit).
  Duration load_timeout = Duration::zero();
  // Shared namespaces hold public data: every tenant's lookups go to
  // kSharedTenant, so one account's fetch serves all accounts.
  bool shared = false;
};

// Checks a policy. The error names the namespace and the field, e.g.
// "namespace 'entity': max_entries must be > 0".
Status validate(std::string_view ns, const NamespacePolicy& policy);

// A namespace name with its policy.
struct NamespaceSpec {
  std::string name;
  NamespacePolicy policy;
};

// The defaults mirroring the seeds' categories: entity 300 s, message 60 s,
// full_channel 600 s, discussion 300 s, input_peer 300 s; 500 entries each.
std::vector<NamespaceSpec> default_namespaces();

}  // namespace callcache
