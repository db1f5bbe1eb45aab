// callcache/engine.h — the cache engine: namespaces of sharded, bounded,
// expiring entries, shared by every typed Cache<V> opened on it.
//
// Values are stored and read through a typed front: Cache<V>
// (callcache/cache.h) or, with a second tier, TieredCache<V>
// (callcache/tiered_cache.h). The engine itself offers what needs no value
// type: namespaces, invalidation, statistics and shutdown.
//
// Thread-safety: every member function may be called concurrently from any
// number of threads. Lookups take no lock: a hit probes its shard's table
// with atomic loads and pins the entry in a slot of the calling thread's own
// record, so a hit on a hot key writes no cache line other threads use;
// eviction order learns of hits lazily (LRU namespaces from per-thread
// batches). Writes to a shard serialise on its lock, except a put of a
// small trivially copyable value over an untagged one, which rewrites the
// entry in place without it (callcache/cache.h).
//
// Ownership: the Engine owns its entries. A pinned entry (a Ref<V>) stays
// valid after eviction, invalidation and shutdown until the last pin drops;
// the Engine itself must outlive every Cache<V> opened on it, but not the
// Refs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/clock.h"
#include "callcache/policy.h"
#include "callcache/stats.h"
#include "callcache/status.h"
#include "callcache/tenant.h"

namespace callcache {

namespace internal {
class EngineAccess;
class EngineImpl;
}  // namespace internal

struct NamespaceId {
  std::uint32_t index = 0;
  friend bool operator==(NamespaceId, NamespaceId) = default;
};

struct EngineOptions {
  std::vector<NamespaceSpec> namespaces = default_namespaces();
  // Shards per namespace; 0 picks a power of two from the hardware thread
  // count and the namespace's size (every shard holds at least 32 entries).
  // Each shard enforces max_entries/shards and max_bytes/shards, so the
  // namespace's bounds hold exactly. 1 gives an exact global policy (used by
  // the hit-ratio simulator).
  std::size_t shards = 0;
  // Time source; nullptr = default_clock() (coarse, ~1 ns reads).
  const Clock* clock = nullptr;
  // Runs the background expiry sweep; nullptr = the engine owns a thread
  // scheduler (if sweep_interval > 0).
  Scheduler* scheduler = nullptr;
  // How often expired entries are removed in the background; 0 = never
  // (expiry is still checked on every read, and clear_expired() works).
  Duration sweep_interval = std::chrono::seconds(1);
  // Seeds key hashing and expiry jitter (fixed seed = reproducible runs).
  std::uint64_t seed = 0x243f6a8885a308d3ULL;
};

// Options for one insert.
struct PutOptions {
  // Overrides the namespace ttl for this entry (jitter still applies).
  std::optional<Duration> ttl;
  // Tags for invalidate_tag(); an entry may carry several.
  std::vector<std::string> tags;
};

class Engine {
 public:
  // Creates an engine. Fails (naming the namespace and field) if a policy is
  // invalid or two namespaces share a name.
  static Result<std::unique_ptr<Engine>> create(EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Clock& clock() const noexcept;
  // The scheduler used for background work (the one passed in options, or
  // the engine's own).
  Scheduler& scheduler() noexcept;

  // The id of a namespace, or kNotFound naming the unknown namespace.
  Result<NamespaceId> find(std::string_view ns) const;
  std::vector<std::string> namespace_names() const;
  // REQUIRES: id came from this engine.
  const NamespacePolicy& policy(NamespaceId id) const;
  const std::string& name(NamespaceId id) const;

  // ---- Invalidation ----
  // Each of these also moves the namespaces' invalidation epoch first: a
  // load in flight when one runs is handed to its waiters but not stored
  // (callcache/load.h). With a second tier, invalidate through Tiers
  // (callcache/tiered_cache.h), which reaches L2 as well.
  //
  // Drops one key. kNotFound if the namespace is unknown; OK whether or not
  // the key was present.
  Status invalidate(std::string_view ns, TenantId tenant, std::string_view key);
  // Drops every entry of a namespace in O(1) (version bump; old entries are
  // reclaimed by the sweeper and by eviction).
  Status invalidate_namespace(std::string_view ns);
  // Drops every entry of `tenant` in every namespace. Returns entries dropped.
  std::uint64_t invalidate_tenant(TenantId tenant);
  // Drops every entry carrying `tag`. Returns entries dropped.
  std::uint64_t invalidate_tag(std::string_view tag);
  // Removes every entry past ttl + stale_ttl now. Returns entries removed.
  std::uint64_t clear_expired();

  // Live entries across namespaces.
  std::uint64_t size() const;
  // Counters per namespace and in total.
  StatsSnapshot stats() const;
  // Names the scope in stats ("isolated" unless set by the scope registry).
  void set_scope_label(std::string label);

  // Drops every entry and stops the background sweep. Afterwards lookups
  // miss and inserts return kShutdown. Idempotent.
  void shutdown();
  bool is_shut_down() const noexcept;

 private:
  // The typed fronts' way in (callcache/internal/engine_access.h).
  friend class internal::EngineAccess;
  explicit Engine(std::unique_ptr<internal::EngineImpl> impl);
  std::unique_ptr<internal::EngineImpl> impl_;
};

}  // namespace callcache
