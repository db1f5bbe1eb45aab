// Internal: a shard — one slice of a namespace with its own table, eviction
// strategy, bounds and writer lock.
//
// Concurrency: lookups take no lock. A lookup runs inside a ReadSection
// (reclaim.h): it probes the table with atomic loads, checks the entry's
// identity, expiry and version, pins it in a slot of the calling thread's
// reader record (or, with every slot taken, by a reference) and bumps its
// hit counter, which saturates — so a hit on a hot key writes only the
// calling thread's own lines (its reader record, its stats lane). Eviction state
// learns of hits lazily: from each entry's hit counter when the strategy
// next looks at it, or (LRU) from per-thread buffers of hits drained in
// batches under the lock.
//
// Writers (inserts, removals, sweeps) serialise on `mu_`, a spin lock, and
// guard the table's writes, the strategy's queues, the tag index, tenant
// counts and entry flags with it. An entry leaving the table is retired, not
// released: the shard's reference is dropped once every lookup that might
// still be reading it has finished (a grace period), so a lookup never pins
// freed memory. Counters are relaxed atomics read without the lock.
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
#include "striped_counters.h"

namespace callcache::internal {

class AdaptiveController;

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

// Lookup and lock-free update counters kept per namespace, in per-thread lanes.
enum LookupCounter : std::size_t { kHitCount = 0, kMissCount = 1, kInPlaceUpdateCount = 2 };
using LookupCounters = StripedCounters<3>;

// What a shard shares with its namespace. Both outlive the shard.
struct ShardContext {
  LookupCounters* lookups = nullptr;       // counted lookups, updates in place
  AdaptiveController* adaptive = nullptr;  // kAdaptive: the namespace's decision
};

// Counters written under the writer lock.
struct alignas(64) ShardCounters {
  std::atomic<std::uint64_t> inserts{0}, updates{0}, rejected{0};
  std::atomic<std::uint64_t> evictions[static_cast<int>(EvictionCause::kCount_)] = {};
  std::atomic<std::uint64_t> expirations{0};
};

// Where find() copies the value of an in-place type (kInPlace<V>) instead of
// pinning the entry.
struct InPlaceCopy {
  std::uint64_t* word;  // the value word
  TimePoint* expires;   // and its expiry
};

class Shard {
 public:
  virtual ~Shard() = default;

  // Finds (tenant, key). With count = true (plain lookups) returns only fresh
  // entries and counts a hit or miss; with count = false returns anything
  // usable by the loading layer and reports its freshness. The result is
  // pinned (caller unrefs): with `pin_slot`, in a free pin slot of the
  // calling thread's reader record when there is one (the result is then a
  // pin handle, entry.h), else by a reference. With `copy` (entries of
  // in-place types) the value and its expiry are copied into *copy instead
  // and nothing is pinned: the result then only says hit (non-null) or
  // miss. Lock-free.
  virtual Entry* find(std::uint64_t hash, TenantId tenant, std::string_view key,
                      const LookupContext& ctx, bool count, Freshness* freshness,
                      bool pin_slot = false, InPlaceCopy* copy = nullptr) = 0;

  // Links `e` (created by the caller), replacing any entry with the same
  // identity, then evicts down to the bounds. The shard's reference is the
  // caller's own when `adopt` and the insert succeeds (the caller must not
  // unref e then); otherwise the shard takes one more and the caller keeps
  // its own. Returns kTooLarge (e not linked) if e's charge exceeds
  // max_bytes. With `epoch`, refuses (kCancelled, e not linked) unless
  // *epoch still equals `expected` once the lock is held.
  virtual Status insert(std::uint64_t hash, Entry* e, const std::vector<std::string>& tags,
                        bool adopt, const std::atomic<std::uint64_t>* epoch = nullptr,
                        std::uint64_t expected = 0) = 0;

  // A put of an in-place type (kInPlace<V>) as an update in place, lock-free:
  // rewrites the value word and expiry of the linked entry for (tenant, key)
  // if it holds a value of namespace version `version` charged `charge`
  // bytes, has no tags and no reference but the shard's (Entry::
  // try_update_in_place). Counts an update and a use of the entry;
  // allocates, relinks and retires nothing. False (nothing changed) when
  // there is no such entry: the caller inserts a new one under the lock.
  // An update racing a removal of the entry may land in the removed entry:
  // it then counts as done before the removal (as if evicted right after).
  virtual bool update_in_place(std::uint64_t hash, TenantId tenant, std::string_view key,
                               std::uint64_t word, std::uint32_t charge, TimePoint expire,
                               std::uint16_t version) = 0;

  virtual bool erase(std::uint64_t hash, TenantId tenant, std::string_view key) = 0;

  // Removes every entry matching `pred`, counted under `cause`.
  virtual std::uint64_t remove_if(const std::function<bool(const Entry&)>& pred,
                                  EvictionCause cause) = 0;
  virtual std::uint64_t remove_tag(const std::string& tag) = 0;

  // Releases what removed entries still hold once no lookup can reach them
  // (called by the background sweep; removals do it too).
  virtual void reclaim() = 0;

  virtual std::uint64_t entries() const noexcept = 0;
  virtual std::uint64_t bytes() const noexcept = 0;
  // Bytes of bookkeeping beyond entries and the table (ghost, sketch), as
  // held now. Takes the writer lock.
  virtual std::size_t strategy_memory() = 0;

  ShardCounters counters;
};

std::unique_ptr<Shard> make_shard(EvictionPolicy policy, const ShardLimits& limits,
                                  std::uint64_t seed, const ShardContext& context);

}  // namespace callcache::internal
