// callcache/tiers.h — an Engine (L1) and one second tier (L2, a Backend:
// SQLite or Redis) used together: what every TieredCache over them shares —
// invalidation that reaches both tiers, loads in flight and other processes
// sharing L2, and the L2 counters. The typed read path over a Tiers is
// TieredCache<V> (callcache/tiered_cache.h).
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/backend.h"
#include "callcache/clock.h"
#include "callcache/engine.h"
#include "callcache/status.h"
#include "callcache/tenant.h"

namespace callcache {

struct TieredStats {
  std::uint64_t l2_hits = 0;    // L1 misses served from L2
  std::uint64_t l2_misses = 0;  // L1 misses L2 could not serve (the loader ran)
  std::uint64_t l2_invalidated =
      0;                        // L2 values hidden by an invalidation made after their load began
  std::uint64_t l2_errors = 0;  // L2 reads that failed (the loader ran instead)
  std::uint64_t l2_writes = 0;  // values written through to L2
  std::uint64_t l2_write_errors = 0;  // L2 writes, deletes and invalidation markers that failed
  std::uint64_t decode_errors = 0;    // L2 values the codec could not decode
  std::uint64_t encode_errors = 0;    // values the codec could not encode (not written)
  std::uint64_t loads = 0;            // loader calls
  // Cross-process coordination (TiersOptions::coordinator):
  std::uint64_t remote_invalidations = 0;  // invalidations from other processes applied to L1
  std::uint64_t l1_flushes = 0;            // L1 dropped because the subscription was lost/regained
  std::uint64_t leases_taken = 0;          // misses that took the key's lease and loaded
  std::uint64_t lease_waits = 0;           // misses that waited for another process's load
  std::uint64_t lease_wait_hits = 0;       // ... and then found its value in L2
};

// Prometheus text for the cross-process counters of `t` (Tiers::stats() of
// tiers with a coordinator): the counter `metric` (a name ending in
// "_total") with one sample per event — remote_invalidation, l1_flush,
// lease_taken, lease_wait, lease_wait_hit — after its HELP and TYPE lines.
std::string coordination_prometheus(const TieredStats& t, std::string_view metric);

namespace internal {
struct TieredCounters {
  std::atomic<std::uint64_t> l2_hits{0}, l2_misses{0}, l2_invalidated{0}, l2_errors{0},
      l2_writes{0}, l2_write_errors{0}, decode_errors{0}, encode_errors{0}, loads{0},
      remote_invalidations{0}, l1_flushes{0}, leases_taken{0}, lease_waits{0}, lease_wait_hits{0};
  TieredStats snapshot() const;
};

// A one-shot signal a thread can wait on (a blocking load waiting for
// another process's lease).
class Gate {
 public:
  // Notifies under the lock: a waiter that sees open_ may destroy the gate
  // as soon as it returns, so nothing may touch it after the lock is let go.
  void open() {
    std::lock_guard l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Returns whether it opened within `d`.
  bool wait_for(Duration d) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, d, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};
}  // namespace internal

// Coordination between processes whose Tiers share one L2 server (a Redis
// implementation: open_redis_coordinator in callcache/redis_backend.h):
//   - invalidation messages: every invalidation made through a Tiers is
//     published, and applied to the L1 of every other process's Tiers;
//   - the subscription's health: while it is lost, a process may have missed
//     invalidations, so its L1 is suspect (Tiers drops it, see TiersOptions);
//   - leases: a short exclusive claim on a key being loaded, and a
//     notification when its holder is done, so N processes missing one key
//     make one load (TieredCache waits for the holder, then reads L2).
// Thread-safety: every member may be called from any thread.
class TierCoordinator {
 public:
  struct Handlers {
    // A message another process published (never this one's own), on the
    // coordinator's thread.
    std::function<void(std::string_view message)> on_message;
    // The subscription is down (called when it is lost, then again every
    // flush interval until it is back): messages may have been missed.
    std::function<void()> on_lost;
    // The subscription is back (after on_lost): anything kept meanwhile may
    // have missed a message.
    std::function<void()> on_resubscribed;
  };
  virtual ~TierCoordinator() = default;

  // Starts delivering to `handlers` (called once). After stop() returns no
  // handler runs, and pending waits are dropped without being called.
  virtual void start(Handlers handlers) = 0;
  virtual void stop() = 0;
  // Whether messages are being received now.
  virtual bool subscribed() const = 0;
  // Sends `messages` to every other process. Errors: the server's.
  virtual Status publish(std::span<const std::string> messages) = 0;

  // Claims `name` for `ttl`: the token to release it with, nullopt if another
  // process holds it, or an error (then load without a lease).
  virtual Result<std::optional<std::string>> try_lease(std::string_view name, Duration ttl) = 0;
  // Frees `name` if `token` still holds it, and wakes its waiters everywhere.
  virtual void release_lease(std::string_view name, std::string_view token) = 0;
  // Calls `done` once: when `name` is released, after `timeout`, or when the
  // subscription is lost (inline if it is down now). Runs on the
  // coordinator's thread (or inline); `done` must not block for long.
  virtual void wait_lease(std::string_view name, Duration timeout, std::function<void()> done) = 0;
};

struct TiersOptions {
  // How long invalidation markers stay in L2. They must outlive any value
  // that a load in flight during the invalidation may still write. 0 = the
  // longest ttl + stale_ttl + load_timeout of the engine's namespaces, plus
  // one hour.
  Duration marker_ttl{};
  // Microseconds since the Unix epoch, for load start times and markers
  // (compared across processes sharing L2: keep their hosts' clocks
  // synchronised). Empty = the system clock.
  std::function<std::int64_t()> wall_clock_us;
  // Called after every failed L2 call (read, write, delete, marker) with the
  // error and the operation ("get", "put", "erase", "mark" ...); on the
  // calling thread, never under a lock. Must be thread-safe. Empty = only
  // counted (TieredStats).
  std::function<void(const Status& error, std::string_view operation)> on_error;

  // Other processes sharing L2 (nullptr = none). With one, every
  // invalidation is also applied to the other processes' L1 within
  // milliseconds; while the subscription is lost (the coordinator's
  // on_lost), L1 is dropped at once and again on every on_lost call (each
  // flush interval) and when it is back, so no L1 value outlives a missed
  // invalidation by more than the coordinator's detection time plus flush
  // interval. And a TieredCache miss that L2 cannot serve takes the key's
  // lease before loading; a process finding it held waits for the holder
  // (at most lease_wait), then reads L2 and loads itself only if the value
  // is not there. Tiers starts the coordinator and stops it when destroyed.
  std::shared_ptr<TierCoordinator> coordinator;
  // How long a loading process holds a key's lease (a crashed holder's
  // lease lapses after this) and how long others wait for it.
  Duration lease_ttl = std::chrono::seconds(5);
  Duration lease_wait = std::chrono::seconds(5);
};

// An engine (L1) and one second tier (L2) used together: what every
// TieredCache over them shares.
//
// Invalidation through Tiers reaches both tiers, and also loads in flight and
// other processes sharing L2: besides dropping the entries it writes an
// invalidation marker into L2 (the key's, the tag's, the tenant's or the
// namespace's, stamped with the wall-clock time), and an L2 value whose load
// began no later than a marker that covers it is never served. So a value
// loaded before an invalidation — by this process or another — is kept in
// neither tier once the invalidation has run. Markers live in the reserved
// L2 namespace "_callcache_inv" for marker_ttl.
//
// L2 values are stored as records: a small header (the load's start time,
// the value's tags) before the codec's bytes. A value without the header
// (written directly to the backend, or by an older version) is read as
// untagged and hidden by any marker of its key, tenant or namespace.
//
// L2 failures never fail a call: reads fall through to the loader, writes
// and markers are dropped; both are counted (stats()) and reported to
// options.on_error. Pass a DegradingBackend (tiers::make_backend builds one)
// so an outage costs a counter increment per call instead of a timeout.
//
// Ownership: Tiers borrows the Engine and the Backend; both must outlive it
// and every TieredCache opened on it, and their background refreshes.
class Tiers {
 public:
  // `l2` may be nullptr (L1 + loader only; invalidation reaches L1 only).
  Tiers(Engine& engine, Backend* l2, TiersOptions options = {});
  // Stops the coordinator (no handler runs afterwards).
  ~Tiers();
  Tiers(const Tiers&) = delete;
  Tiers& operator=(const Tiers&) = delete;

  Engine& engine() const noexcept { return *engine_; }
  Backend* l2() const noexcept { return l2_; }

  // ---- Invalidation in both tiers ----
  // One key. Errors: kNotFound for an unknown namespace; otherwise OK (an L2
  // failure is counted and reported, the L1 entry is gone either way).
  Status invalidate(std::string_view ns, TenantId tenant, std::string_view key);
  // Every entry carrying `tag`, in every namespace. Returns L1 entries dropped.
  std::uint64_t invalidate_tag(std::string_view tag);
  std::uint64_t invalidate_tags(const std::vector<std::string>& tags);
  // Every entry of `tenant`, in every namespace. Returns L1 entries dropped.
  std::uint64_t invalidate_tenant(TenantId tenant);
  // Every entry of a namespace. Errors: kNotFound for an unknown namespace.
  Status invalidate_namespace(std::string_view ns);

  // L2 counters of every TieredCache on these tiers, and of invalidations.
  TieredStats stats() const { return totals_.snapshot(); }

  // ---- For TieredCache (src/core/tiers.cpp) ----
  struct Found {
    std::string bytes;  // the codec's bytes
    Duration ttl_left{};
    std::vector<std::string> tags;
  };
  // The value L2 holds for (ns, stored_as, key) with more than `min_ttl_left`
  // left, unless an invalidation marker hides it. Counts misses, errors and
  // hidden values (in `counters` and in the totals).
  std::optional<Found> read(std::string_view ns, TenantId stored_as, std::string_view key,
                            Duration min_ttl_left, internal::TieredCounters& counters);
  // Writes a record of `bytes` loaded at `loaded_at_us` for `ttl`. Counts.
  void write(std::string_view ns, TenantId stored_as, std::string_view key, std::string_view bytes,
             Duration ttl, const std::vector<std::string>& tags, std::int64_t loaded_at_us,
             internal::TieredCounters& counters);
  // Bumps `field` in `counters` and in the totals.
  void count(std::atomic<std::uint64_t> internal::TieredCounters::*field,
             internal::TieredCounters& counters) noexcept {
    (counters.*field).fetch_add(1, std::memory_order_relaxed);
    (totals_.*field).fetch_add(1, std::memory_order_relaxed);
  }
  std::int64_t now_us() const;
  TierCoordinator* coordinator() const noexcept { return options_.coordinator.get(); }
  const TiersOptions& options() const noexcept { return options_; }
  // The lease name of a key (for TierCoordinator::try_lease).
  static std::string lease_name(std::string_view ns, TenantId stored_as, std::string_view key);

 private:
  void mark(std::string marker);
  // Sends invalidation messages to other processes (no-op without a
  // coordinator); applies one received from another.
  void publish(std::span<const std::string> messages);
  void apply(std::string_view message);
  // Drops every namespace of L1 (the subscription was lost or regained).
  void flush_l1();
  void failed(const Status& s, std::string_view operation);
  TenantId stored_as(std::string_view ns, TenantId tenant) const;

  Engine* engine_;
  Backend* l2_;
  TiersOptions options_;
  internal::TieredCounters totals_;
};

}  // namespace callcache
