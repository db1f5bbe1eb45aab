// callcache/internal/engine_access.h — NOT part of the API. The type-erased
// engine calls behind the header-only fronts (Cache<V> in callcache/cache.h,
// TieredCache<V> in callcache/tiered_cache.h, the Asio adapter): storing and
// finding values whose type only the front knows, pins, the loading layer's
// counters.
//
// Applications, tools and the gateway use those fronts, never this header:
// nothing here is stable, and misusing it (a wrong type behind a void*, an
// unpaired pin) is undefined behaviour the fronts rule out by construction.
//
// Thread-safety: as Engine (every call may run on any thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

#include "callcache/clock.h"
#include "callcache/engine.h"
#include "callcache/status.h"
#include "callcache/tenant.h"

namespace callcache::internal {

class AdaptiveController;
class Entry;
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
  // sizeof(V) when values of this type are updated in place (kInPlace<V>),
  // else 0. Such a value lives in an 8-byte word (size and align are 8).
  std::uint8_t in_place_bytes;
};

// Value types whose entries a put updates in place instead of replacing
// (docs/architecture.md, "Updates in place"): trivially copyable and at
// most one 8-byte word. Ref<V> holds a copy of such a value rather than a
// pin, since the entry's value can change after the lookup.
template <class V>
inline constexpr bool kInPlace =
    std::is_trivially_copyable_v<V> && sizeof(V) <= 8 && alignof(V) <= 8;

// Copies the value word of an entry of an in-place type (the value's bytes
// first) into *word and returns its expiry, both as of one moment: no
// update in place is half-seen. Accepts pin handles. REQUIRES: e's type is
// in place.
TimePoint read_in_place(const Entry* e, std::uint64_t* word) noexcept;

// Pins on entries handed out by lookups (each lookup result holds one). A
// handle from EngineAccess::lookup may be a pin that is not a reference
// count: copy it with share(), which returns a referenced entry; ref() is
// for handles that are referenced entries (every other call's result).
void ref(Entry* e) noexcept;
void unref(Entry* e) noexcept;
Entry* share(Entry* e) noexcept;
const void* value_of(const Entry* e) noexcept;
// REQUIRES: e is a negative entry (EngineAccess::insert_negative).
const Status& error_of(const Entry* e) noexcept;
// When the entry stops being fresh (its TTL end).
TimePoint expires_at(const Entry* e) noexcept;

// What a lookup for the loading layer found.
enum class Freshness : std::uint8_t {
  kMiss,        // nothing usable
  kFresh,       // within ttl
  kRefreshDue,  // within ttl but inside the refresh_ahead window
  kStale,       // past ttl, within stale_ttl
  kNegative,    // a remembered failure within negative_ttl
};

// Loading-layer events, counted per namespace and folded into Engine::stats().
enum class LoadEvent : std::uint8_t {
  kLoad,
  kLoadFailure,
  kLoadTimeout,
  kCoalesced,
  kNegativeHit,
  kStaleHit,
  kRefresh,
  kRefreshFailure,
  kHit,
  kMiss,
  kLateCompletion,
};
inline constexpr int kLoadEvents = 11;

// The engine's type-erased members (defined in src/core/engine.cpp).
class EngineAccess {
 public:
  // Binds a namespace to a value type: the first bind fixes the type; a later
  // bind with another type fails with kInvalidArgument naming both types.
  static Result<NamespaceId> bind(Engine& engine, std::string_view ns, const ValueOps* ops);

  // A fresh entry (pinned; the caller unrefs, copies with share) or nullptr.
  // Counts a hit or a miss. Never returns negative, stale or expired entries.
  // The pin is usually a slot of the calling thread's own, so a hit writes
  // no cache line another thread reads.
  static Entry* lookup(Engine& engine, NamespaceId ns, TenantId tenant, std::string_view key);

  // lookup() for in-place types (kInPlace<V>): copies a fresh value's word
  // into *word and its expiry into *expires, or returns false. Counts a hit
  // or a miss; pins nothing.
  static bool lookup_copy(Engine& engine, NamespaceId ns, TenantId tenant, std::string_view key,
                          std::uint64_t* word, TimePoint* expires);

  // Like lookup, but also returns stale, refresh-due and negative entries,
  // saying which. Counts nothing (the loading layer counts).
  static Entry* lookup_for_load(Engine& engine, NamespaceId ns, TenantId tenant,
                                std::string_view key, Freshness* freshness);

  // Counts invalidations touching namespace `ns` (by key, tenant, tag,
  // namespace, shutdown). It moves before the entries are removed, so a load
  // that read it before starting can tell whether it raced one (if_epoch).
  static std::uint64_t epoch(const Engine& engine, NamespaceId ns) noexcept;

  // Tests and benchmarks. The adaptive namespace's controller (nullptr
  // under another policy), and the bytes the eviction policy of `ns` holds
  // beside entries and table (ghosts, sketches; with the adaptive policy
  // also its controller's simulations), summed over its shards.
  static AdaptiveController* adaptive(Engine& engine, NamespaceId ns) noexcept;
  static std::size_t policy_memory(Engine& engine, NamespaceId ns);

  // Stores *value (moved from; `value` points to a V of the bound type) with
  // `charge` bytes. Returns the pinned new entry in *out if out != nullptr.
  // With `if_epoch`, stores only if epoch(ns) still has that value (a value
  // loaded before an invalidation must not be stored after it), else
  // kCancelled: then *out (if given) holds the value in a pinned entry that
  // is not stored, or is nullptr and *value is untouched.
  // Errors: kInvalidArgument (empty key, key over 64 KiB), kTooLarge (charge
  // over the shard's byte budget, max_bytes / shards: not stored, counted),
  // kShutdown. On error *value is left untouched.
  static Status insert(Engine& engine, NamespaceId ns, TenantId tenant, std::string_view key,
                       void* value, std::size_t charge, const PutOptions& options,
                       std::optional<std::uint64_t> if_epoch = std::nullopt, Entry** out = nullptr);

  // Remembers a failed load for the namespace's negative_ttl (no-op if 0).
  static Status insert_negative(Engine& engine, NamespaceId ns, TenantId tenant,
                                std::string_view key, Status error);

  // Drops one key. Returns true if it was present.
  static bool erase(Engine& engine, NamespaceId ns, TenantId tenant, std::string_view key);

  // A pinned entry holding *value (moved from) that is not stored in the
  // cache (expires now): how a loaded value reaches its waiters when it
  // cannot be cached. The caller unrefs. Never fails.
  static Entry* make_unstored(Engine& engine, NamespaceId ns, void* value, std::size_t charge);

  // The loading layer's single-flight table; lives as long as the engine and
  // is closed first when the engine is destroyed.
  static FlightTable& flights(Engine& engine) noexcept;

  static void record(Engine& engine, NamespaceId ns, LoadEvent event, std::uint64_t n = 1) noexcept;
  static void record_load_latency(Engine& engine, NamespaceId ns, Duration latency) noexcept;
};

}  // namespace callcache::internal
