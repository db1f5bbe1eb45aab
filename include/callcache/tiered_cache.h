// callcache/tiered_cache.h — reads through L1 (the in-memory Cache<V>), L2 (a
// Backend: SQLite or Redis) and the loader, and keeps working when L2 fails.
//
// This header holds two things:
//
// 1. DegradingBackend: wraps any Backend so that a failing or slow L2 costs
//    callers almost nothing. When a call fails with an outage-like error
//    (kUnavailable, kTimeout, kIoError, kCorruption, kInternal, kShutdown),
//    the wrapper counts it, logs ONCE for the whole outage through the log
//    sink, and backs off: until the backoff ends, every call (but flush()
//    and health(), which always probe) returns kUnavailable at once without
//    touching the store. When it ends, one call
//    probes the store; success ends the outage (logged once, with its
//    length), failure doubles the backoff (up to max_backoff). Caller errors
//    (kInvalidArgument, kTooLarge, kNotFound) pass through and never start an
//    outage. Each call's time is bounded by the wrapped backend itself (Redis
//    connect/command timeouts, SQLite call_timeout); a call that still takes
//    longer than `slow_call` is counted as slow.
//
// 2. TieredCache<V, C> (below): a typed cache over one namespace that reads
//    L1 → L2 → loader:
//      - an L1 hit never touches L2;
//      - on an L1 miss, ONE caller per key (Cache<V>::get_or_load's single
//        flight covers the whole path) reads L2; an L2 hit is decoded with
//        the codec and fills L1 with the value's REMAINING ttl; an L2 miss
//        runs the loader, and a loaded value is written through to L2 with
//        the ttl it got in L1 (the loader's Loaded<V>::ttl, else the
//        namespace ttl). N concurrent misses make one L2 read and at most
//        one load; failed loads are never written to L2;
//      - put() writes both tiers; erase()/invalidate_*() reach both tiers;
//      - L2 failures never fail a call: an L2 read error counts and falls
//        through to the loader; a write error counts and is dropped. Pass a
//        DegradingBackend (make_backend builds one) so an outage costs a
//        counter increment per call instead of a timeout.
//    An L2 value whose remaining ttl is inside the namespace's refresh_ahead
//    window is treated as a miss (so a refresh really reloads). Values that
//    fail to decode count as decode_errors and are reloaded.
//    Shared namespaces (policy.shared) store under kSharedTenant in L2 too.
//
// Thread-safety: all members may be called from any thread.
// Ownership: TieredCache borrows the Engine (via its Cache<V>) and the
// Backend; both must outlive it and any background refresh it started.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "callcache/backend.h"
#include "callcache/cache.h"
#include "callcache/clock.h"
#include "callcache/codec.h"
#include "callcache/load.h"
#include "callcache/status.h"

namespace callcache {

enum class TierLogLevel : std::uint8_t { kInfo, kWarning };

// Receives the tiers' log lines (outage start and end). Called on the thread
// whose call detected the change, never under an internal lock. Must be
// thread-safe. An empty sink writes to stderr.
using TierLogSink = std::function<void(TierLogLevel level, std::string_view message)>;

struct DegradeOptions {
  // First wait after an outage starts, and its growth.
  Duration initial_backoff = std::chrono::milliseconds(100);
  Duration max_backoff = std::chrono::seconds(30);
  double backoff_multiplier = 2.0;  // REQUIRES: >= 1
  // Calls taking longer than this are counted as slow (0 = not measured).
  Duration slow_call = std::chrono::milliseconds(250);
  // Backoff is measured on this clock; nullptr = default_clock().
  const Clock* clock = nullptr;
  TierLogSink log;
};

struct DegradeStats {
  std::uint64_t errors = 0;     // calls that failed with an outage-like error
  std::uint64_t skipped = 0;    // calls answered kUnavailable during backoff
  std::uint64_t outages = 0;    // outages started (each logged once)
  std::uint64_t recoveries = 0; // outages ended
  std::uint64_t slow_calls = 0;
  bool down = false;            // an outage is in progress now
};

class DegradingBackend final : public Backend {
 public:
  // Takes ownership of `inner`. REQUIRES: inner != nullptr.
  DegradingBackend(std::unique_ptr<Backend> inner, DegradeOptions options);
  ~DegradingBackend() override;

  std::string_view name() const noexcept override;
  Result<std::optional<StoredValue>> get(const BackendKey& key) override;
  Result<std::vector<std::optional<StoredValue>>> get_many(
      std::span<const BackendKey> keys) override;
  Status put(const BackendKey& key, std::string_view bytes, Duration ttl) override;
  Status put_many(std::span<const BackendItem> items) override;
  Status erase(const BackendKey& key) override;
  Status erase_tenant(TenantId tenant) override;
  Status erase_namespace(std::string_view ns) override;
  Result<std::uint64_t> purge_expired() override;
  // Flush and health probe the store even during backoff (and end the
  // outage if it answers): a flush is a durability barrier, never skipped.
  Status flush() override;
  Status health() override;
  BackendStats stats() const override;  // the wrapped backend's, plus skipped calls as errors

  DegradeStats degrade_stats() const;
  // Replaces the log sink. Safe at any time.
  void set_log(TierLogSink log);
  Backend& inner() noexcept { return *inner_; }

 private:
  enum class Admit : std::uint8_t { kPass, kProbe, kSkip };
  // Whether a call may go to the store now (kSkip: answer kUnavailable).
  Admit admit();
  // kPass, or kProbe during an outage (never kSkip).
  Admit force_probe();
  // Records a call's outcome and returns `s`.
  Status record(Status s, TimePoint started, Admit how);
  void log(TierLogLevel level, const std::string& message);

  std::unique_ptr<Backend> inner_;
  DegradeOptions options_;
  const Clock* clock_;

  std::atomic<bool> down_{false};  // fast path: false = healthy, no lock taken
  mutable std::mutex mu_;          // guards everything below, and options_.log
  bool probing_ = false;           // a call is probing the store
  TimePoint retry_at_{};           // when the next probe may run
  Duration backoff_{};
  TimePoint outage_start_{};
  std::uint64_t outage_errors_ = 0;
  std::string last_error_;
  std::atomic<std::uint64_t> errors_{0}, skipped_{0}, outages_{0}, recoveries_{0}, slow_{0};
};

// ---- TieredCache ---------------------------------------------------------

struct TieredStats {
  std::uint64_t l2_hits = 0;        // L1 misses served from L2
  std::uint64_t l2_misses = 0;      // L1 misses L2 could not serve (the loader ran)
  std::uint64_t l2_errors = 0;      // L2 reads that failed (the loader ran instead)
  std::uint64_t l2_writes = 0;      // values written through to L2
  std::uint64_t l2_write_errors = 0;
  std::uint64_t decode_errors = 0;  // L2 values the codec could not decode
  std::uint64_t encode_errors = 0;  // values the codec could not encode (not written)
  std::uint64_t loads = 0;          // loader calls
};

namespace internal {
struct TieredCounters {
  std::atomic<std::uint64_t> l2_hits{0}, l2_misses{0}, l2_errors{0}, l2_writes{0},
      l2_write_errors{0}, decode_errors{0}, encode_errors{0}, loads{0};
};
}  // namespace internal

template <class V, class C = DefaultCodec<V>, class SizeFn = DefaultSize<V>>
  requires Codec<C, V>
class TieredCache {
 public:
  // `l1`: the in-memory front of the namespace. `l2`: the second tier, or
  // nullptr for L1 + loader only. REQUIRES: the Engine and `l2` outlive this
  // object and its background refreshes.
  TieredCache(Cache<V, SizeFn> l1, Backend* l2, C codec = {})
      : l1_(std::move(l1)), core_(std::make_shared<Core>()) {
    const NamespacePolicy& p = l1_.engine().policy(l1_.id());
    core_->l2 = l2;
    core_->codec = std::move(codec);
    core_->ns = l1_.engine().name(l1_.id());
    core_->shared = p.shared;
    core_->ttl = p.ttl;
    core_->refresh_ahead = p.refresh_ahead;
  }

  // L1 only: the fresh value or nullopt. Never touches L2 or a loader.
  std::optional<Ref<V>> get(TenantId tenant, std::string_view key) const {
    return l1_.get(tenant, key);
  }

  // The value for (tenant, key) through L1 → L2 → `loader` (see above).
  //   loader: callable as `loader()` returning Result<V>, Result<Loaded<V>>,
  //   V or Loaded<V>; copied, and may run later on another thread for a
  //   background refresh (capture by value).
  // Errors: as Cache<V>::get_or_load (the loader's error, kTimeout, ...);
  // never an L2 error.
  template <class Loader>
  Result<Ref<V>> get_or_load(TenantId tenant, std::string_view key, Loader loader,
                             const LoadOptions& options = {}) {
    std::shared_ptr<Core> core = core_;
    return l1_.get_or_load(
        tenant, key,
        [core, tenant, k = std::string(key), loader = std::move(loader)]() mutable
            -> Result<Loaded<V>> { return core->load_through(tenant, k, loader); },
        options);
  }

  // Stores `value` in L1 and writes it through to L2 (ttl: options.ttl, else
  // the namespace ttl). Errors: L1's (kInvalidArgument, kTooLarge,
  // kShutdown); L2 failures are counted, not returned.
  Status put(TenantId tenant, std::string_view key, V value, const PutOptions& options = {}) {
    Duration ttl = options.ttl.value_or(core_->ttl);
    if (core_->l2) core_->write_through(tenant, key, value, ttl);
    return l1_.put(tenant, key, std::move(value), options);
  }

  // Drops the key from both tiers. Returns true if it was in L1.
  bool erase(TenantId tenant, std::string_view key) {
    if (core_->l2) (void)core_->l2->erase({core_->ns, core_->l2_tenant(tenant), key});
    return l1_.erase(tenant, key);
  }

  // Drops every entry of the namespace in both tiers (O(1) version bumps).
  // Returns L2's status (L1 always succeeds for a bound namespace).
  Status invalidate_namespace() {
    Status s = l1_.engine().invalidate_namespace(core_->ns);
    if (!s.ok() || !core_->l2) return s;
    return core_->l2->erase_namespace(core_->ns);
  }

  // Drops every entry of `tenant` in both tiers, in EVERY namespace (the
  // engine and backends drop tenants across namespaces). Returns L2's status.
  Status invalidate_tenant(TenantId tenant) {
    l1_.engine().invalidate_tenant(tenant);
    return core_->l2 ? core_->l2->erase_tenant(tenant) : Status();
  }

  TieredStats stats() const {
    const internal::TieredCounters& c = core_->counters;
    TieredStats s;
    s.l2_hits = c.l2_hits.load(std::memory_order_relaxed);
    s.l2_misses = c.l2_misses.load(std::memory_order_relaxed);
    s.l2_errors = c.l2_errors.load(std::memory_order_relaxed);
    s.l2_writes = c.l2_writes.load(std::memory_order_relaxed);
    s.l2_write_errors = c.l2_write_errors.load(std::memory_order_relaxed);
    s.decode_errors = c.decode_errors.load(std::memory_order_relaxed);
    s.encode_errors = c.encode_errors.load(std::memory_order_relaxed);
    s.loads = c.loads.load(std::memory_order_relaxed);
    return s;
  }

  Cache<V, SizeFn>& l1() noexcept { return l1_; }
  Backend* l2() const noexcept { return core_->l2; }
  const C& codec() const noexcept { return core_->codec; }

 private:
  // What a (possibly background) load needs; shared with in-flight loaders.
  struct Core {
    Backend* l2 = nullptr;
    C codec;
    std::string ns;
    bool shared = false;
    Duration ttl{};
    Duration refresh_ahead{};
    internal::TieredCounters counters;

    TenantId l2_tenant(TenantId t) const { return shared ? kSharedTenant : t; }

    void write_through(TenantId tenant, std::string_view key, const V& value, Duration ttl) {
      std::string bytes;
      try {
        bytes = codec.encode(value);
      } catch (...) {  // e.g. JSON of invalid UTF-8: keep the value in L1 only
        counters.encode_errors.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      Status s = l2->put({ns, l2_tenant(tenant), key}, bytes, ttl);
      (s.ok() ? counters.l2_writes : counters.l2_write_errors)
          .fetch_add(1, std::memory_order_relaxed);
    }

    template <class Loader>
    Result<Loaded<V>> load_through(TenantId tenant, const std::string& key, Loader& loader) {
      if (l2) {
        auto r = l2->get({ns, l2_tenant(tenant), key});
        if (!r.ok()) {
          counters.l2_errors.fetch_add(1, std::memory_order_relaxed);
        } else if (r->has_value() && (*r)->ttl_left > refresh_ahead) {
          auto v = codec.decode((*r)->bytes);
          if (v.ok()) {
            counters.l2_hits.fetch_add(1, std::memory_order_relaxed);
            return Loaded<V>{std::move(*v), (*r)->ttl_left, {}};
          }
          counters.decode_errors.fetch_add(1, std::memory_order_relaxed);
        } else {
          counters.l2_misses.fetch_add(1, std::memory_order_relaxed);
        }
      }
      counters.loads.fetch_add(1, std::memory_order_relaxed);
      Result<Loaded<V>> loaded = to_loaded(loader());
      if (loaded.ok() && l2) write_through(tenant, key, loaded->value, loaded->ttl.value_or(ttl));
      return loaded;
    }

    static Result<Loaded<V>> to_loaded(Result<Loaded<V>> r) { return r; }
    static Result<Loaded<V>> to_loaded(Loaded<V> l) { return l; }
    static Result<Loaded<V>> to_loaded(Result<V> r) {
      if (!r.ok()) return r.status();
      return Loaded<V>{std::move(*r), std::nullopt, {}};
    }
    template <class R>
      requires std::is_convertible_v<R, V>
    static Result<Loaded<V>> to_loaded(R&& v) {
      return Loaded<V>{V(std::forward<R>(v)), std::nullopt, {}};
    }
  };

  Cache<V, SizeFn> l1_;
  std::shared_ptr<Core> core_;
};

}  // namespace callcache
