// callcache/engine.h — the cache engine: namespaces of sharded, bounded,
// expiring entries, shared by every typed Cache<V> opened on it.
//
// Most users open a typed front (callcache/cache.h) and never call the
// `internal`-typed members below; they exist for the typed front, the loading
// layer and the tiers.
//
// Thread-safety: every member function may be called concurrently from any
// number of threads. Lookups take no lock: a hit probes its shard's table
// with atomic loads and pins the entry in a slot of the calling thread's own
// record, so a hit on a hot key writes no cache line other threads use;
// eviction order learns of hits lazily (LRU namespaces from per-thread
// batches). Writes to a shard serialise on its lock.
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
class Entry;
class EngineImpl;
class FlightTable;

// How the engine stores a value of one C++ type without knowing the type.
struct ValueOps {
  const void* type_tag;  // unique per type
  const char* type_name;
  std::size_t size;
  std::size_t align;
  void (*destroy)(void* value) noexcept;
  // Move-constructs a value at `dst` (uninitialised) from the value at `src`.
  void (*move_construct)(void* dst, void* src) noexcept;
};

// Pin management for entries handed out by lookups. A handle from
// Engine::lookup may be a pin that is not a reference count: copy it with
// share(), which returns a referenced entry.
void ref(Entry* e) noexcept;
void unref(Entry* e) noexcept;
Entry* share(Entry* e) noexcept;
const void* value_of(const Entry* e) noexcept;
// REQUIRES: e is a negative entry (see Engine::insert_negative).
const Status& error_of(const Entry* e) noexcept;
// When the entry stops being fresh (its TTL end).
TimePoint expires_at(const Entry* e) noexcept;
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
  // Store only if the namespace's invalidation epoch (Engine::epoch) still
  // has this value: a value loaded before an invalidation must not be stored
  // after it. Otherwise insert returns kCancelled.
  std::optional<std::uint64_t> if_epoch;
};

// What a lookup found, for the loading layer.
enum class Freshness : std::uint8_t {
  kMiss,        // nothing usable
  kFresh,       // within ttl
  kRefreshDue,  // within ttl but inside the refresh_ahead window
  kStale,       // past ttl, within stale_ttl
  kNegative,    // a remembered failure within negative_ttl
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

  // ---- For typed fronts and the loading layer (see callcache/cache.h) ----

  // Binds a namespace to a value type: the first bind fixes the type; a later
  // bind with another type fails with kInvalidArgument naming both types.
  Result<NamespaceId> bind(std::string_view ns, const internal::ValueOps* ops);

  // A fresh entry (pinned; the caller unrefs, copies with share) or nullptr.
  // Counts a hit or a miss. Never returns negative, stale or expired entries.
  // The pin is usually a slot of the calling thread's own, so a hit writes
  // no cache line another thread reads.
  internal::Entry* lookup(NamespaceId ns, TenantId tenant, std::string_view key);

  // Like lookup, but also returns stale, refresh-due and negative entries,
  // saying which. Counts nothing (the loading layer counts).
  internal::Entry* lookup_for_load(NamespaceId ns, TenantId tenant, std::string_view key,
                                   Freshness* freshness);

  // Counts invalidations touching namespace `ns` (by key, tenant, tag,
  // namespace, shutdown). It moves before the entries are removed, so a load
  // that read it before starting can tell whether it raced one (if_epoch).
  std::uint64_t epoch(NamespaceId ns) const noexcept;

  // Stores *value (moved from; `value` points to a V of the bound type) with
  // `charge` bytes. Returns the pinned new entry in *out if out != nullptr.
  // kCancelled when options.if_epoch no longer matches: then *out (if given)
  // holds the value in a pinned entry that is not stored, or is nullptr and
  // *value is untouched.
  // Errors: kInvalidArgument (empty key, key over 64 KiB), kTooLarge (charge
  // over the shard's byte budget, max_bytes / shards: not stored, counted),
  // kShutdown. On error *value is left untouched.
  Status insert(NamespaceId ns, TenantId tenant, std::string_view key, void* value,
                std::size_t charge, const PutOptions& options, internal::Entry** out = nullptr);

  // Remembers a failed load for the namespace's negative_ttl (no-op if 0).
  Status insert_negative(NamespaceId ns, TenantId tenant, std::string_view key, Status error);

  // Drops one key. Returns true if it was present.
  bool erase(NamespaceId ns, TenantId tenant, std::string_view key);

  // A pinned entry holding *value (moved from) that is not stored in the
  // cache (expires now): how a loaded value reaches its waiters when it
  // cannot be cached (too large, shut down). The caller unrefs. Never fails.
  internal::Entry* make_unstored(NamespaceId ns, void* value, std::size_t charge);

  // The loading layer's single-flight table; lives as long as the engine and
  // is closed first when the engine is destroyed.
  internal::FlightTable& flights() noexcept;

  // Loading-layer counters, folded into stats().
  enum class LoadEvent : std::uint8_t {
    kLoad, kLoadFailure, kLoadTimeout, kCoalesced, kNegativeHit, kStaleHit, kRefresh,
    kRefreshFailure, kHit, kMiss, kLateCompletion,
  };
  void record(NamespaceId ns, LoadEvent event, std::uint64_t n = 1) noexcept;
  void record_load_latency(NamespaceId ns, Duration latency) noexcept;

  internal::EngineImpl& impl() noexcept { return *impl_; }

 private:
  explicit Engine(std::unique_ptr<internal::EngineImpl> impl);
  std::unique_ptr<internal::EngineImpl> impl_;
};

}  // namespace callcache
