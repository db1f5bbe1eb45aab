// Internal: a shard — one slice of a namespace with its own lock, table,
// eviction strategy and bounds.
//
// Locking: `mu_` (a striped reader-writer lock, rw_lock.h) guards the table, the strategy's
// queues, the tag index, tenant counts and entry flags. Lookups take it
// shared; inserts, removals and sweeps take it exclusive. Counters are relaxed
// atomics read without the lock.
//
// Invariants (after every public call returns): entries() <= limits.max_entries;
// bytes() <= limits.max_bytes when that is non-zero; every linked entry is in
// the table exactly once and in the strategy exactly once, has kLinked set and
// holds one reference owned by the shard.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/engine.h"
#include "callcache/policy.h"
#include "callcache/stats.h"
#include "entry.h"

namespace callcache::internal {

struct ShardLimits {
  std::uint64_t max_entries = 1;
  std::uint64_t max_bytes = 0;       // 0 = unbounded
  std::uint64_t max_per_tenant = 0;  // 0 = no cap
};

// What a lookup needs to know to classify an entry.
struct LookupContext {
  TimePoint now;
  std::uint16_t version;  // low 16 bits of the namespace's current version
  Duration stale_ttl;
  Duration refresh_ahead;
};

// Counters written under the exclusive lock (hits and misses live in the
// lock's per-thread stripes, see rw_lock.h).
struct alignas(64) ShardCounters {
  std::atomic<std::uint64_t> inserts{0}, updates{0}, rejected{0};
  std::atomic<std::uint64_t> evictions[static_cast<int>(EvictionCause::kCount_)] = {};
  std::atomic<std::uint64_t> expirations{0};
};

class Shard {
 public:
  virtual ~Shard() = default;

  // Finds (tenant, key). With count = true (plain lookups) returns only fresh
  // entries and counts a hit or miss; with count = false returns anything
  // usable by the loading layer and reports its freshness. The result is
  // pinned (caller unrefs).
  virtual Entry* find(std::uint64_t hash, TenantId tenant, std::string_view key,
                      const LookupContext& ctx, bool count, Freshness* freshness) = 0;

  // Links `e` (created by the caller, who keeps its own reference), replacing
  // any entry with the same identity, then evicts down to the bounds.
  // Returns kTooLarge (e not linked) if e's charge exceeds max_bytes.
  // With `epoch`, refuses (kCancelled, e not linked) unless *epoch still
  // equals `expected` once the lock is held.
  virtual Status insert(std::uint64_t hash, Entry* e, const std::vector<std::string>& tags,
                        const std::atomic<std::uint64_t>* epoch = nullptr,
                        std::uint64_t expected = 0) = 0;

  virtual bool erase(std::uint64_t hash, TenantId tenant, std::string_view key) = 0;

  // Removes every entry matching `pred`, counted under `cause`.
  virtual std::uint64_t remove_if(const std::function<bool(const Entry&)>& pred,
                                  EvictionCause cause) = 0;
  virtual std::uint64_t remove_tag(const std::string& tag) = 0;

  virtual std::uint64_t hits() const noexcept = 0;
  virtual std::uint64_t misses() const noexcept = 0;
  virtual std::uint64_t entries() const noexcept = 0;
  virtual std::uint64_t bytes() const noexcept = 0;

  ShardCounters counters;
};

std::unique_ptr<Shard> make_shard(EvictionPolicy policy, const ShardLimits& limits,
                                  std::uint64_t seed);

}  // namespace callcache::internal
