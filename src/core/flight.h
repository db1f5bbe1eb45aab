// Internal: the single-flight table behind Cache<V>::get_or_load.
//
// A flight is one load of one (namespace, tenant, key) in progress. The first
// caller to miss starts it (the leader); callers arriving while it runs join
// it as waiters; whoever completes the flight (the loader's completion, a load
// timeout, or a dropped loader) delivers one outcome to every waiter. The table
// knows nothing about values: an outcome is a borrowed `Entry*` (valid during
// the delivery call, pinned by the completer) or an error Status, so this file
// does not depend on the engine and is tested standalone (flight_test.cpp).
//
// Lifecycle of a flight (state guarded by its shard's mutex):
//
//   kLoading --claim()--> kCompleting --finish()--> kDone (removed from table)
//
// claim() succeeds once per flight: the loader's completion and the load
// timeout race for it and the loser is discarded. Between claim() and
// finish() the flight stays in the table, so callers that arrive while the
// completer stores the value still join it instead of starting a second load.
//
// Thread-safety: every member may be called from any thread. Waiters are
// invoked by finish() on the finishing thread, with no table lock held.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache {
class Engine;
}

namespace callcache::internal {

class Entry;

// Receives a flight's outcome: `entry` is borrowed (pin it to keep it) and
// non-null exactly when `status` is OK; `from_second_tier` when the value was
// read from a TieredCache's L2 rather than loaded. Must not throw.
using FlightWaiter = std::function<void(Entry* entry, const Status& status, bool from_second_tier)>;

struct FlightKey {
  std::uint32_t ns = 0;
  std::uint64_t tenant = 0;
  std::string key;
  friend bool operator==(const FlightKey&, const FlightKey&) = default;
};

struct FlightKeyHash {
  std::size_t operator()(const FlightKey& k) const noexcept;
};

class Flight {
 public:
  enum class State : std::uint8_t { kLoading, kCompleting, kDone };

  const FlightKey& key() const noexcept { return key_; }
  bool is_refresh() const noexcept { return refresh_; }

  // Set by the loading layer before the loader starts; read by its completer.
  TimePoint started{};
  std::uint64_t epoch = 0;              // the namespace's invalidation epoch when the load started
  std::atomic<std::uint64_t> timer{0};  // load-timeout task id (0 = none)

 private:
  friend class FlightTable;
  Flight(FlightKey key, std::size_t shard, bool refresh)
      : key_(std::move(key)), shard_(shard), refresh_(refresh) {}

  const FlightKey key_;
  const std::size_t shard_;
  const bool refresh_;  // started by a stale or refresh-due read
  // Guarded by the shard mutex:
  State state_ = State::kLoading;
  std::vector<FlightWaiter> waiters_;
};

// Whether a flight table (and the engine owning it) still exists, shared by
// the background work that may outlive both. Thread-safe.
class TableLife {
 public:
  // Enters unless closed; REQUIRES: a successful enter() is paired with leave().
  bool enter();
  void leave();
  // Refuses new enters and waits until the ones in progress (on other
  // threads) leave. Idempotent.
  void close();
  bool closed() const;

 private:
  mutable std::mutex mu_;  // guards closed_, active_; paired with cv_
  std::condition_variable cv_;
  bool closed_ = false;
  std::size_t active_ = 0;
};

class FlightTable {
 public:
  // REQUIRES: shards is a power of two.
  explicit FlightTable(std::size_t shards = 64);
  ~FlightTable();
  FlightTable(const FlightTable&) = delete;
  FlightTable& operator=(const FlightTable&) = delete;

  struct Joined {
    std::shared_ptr<Flight> flight;  // null only when a refresh was refused (cooldown)
    bool leader = false;             // true: the caller created the flight and must load
  };

  // Joins the flight in progress for `key`, adding `waiter` (if non-empty),
  // or starts a new one with `waiter` as its first waiter. A new flight is
  // marked as a refresh when `refresh` is set.
  Joined join(const FlightKey& key, FlightWaiter waiter, bool refresh = false);

  // Like join() with no waiter, for background refreshes: starts a refresh
  // flight unless one is in progress for `key` or `key` is cooling down after
  // a failed refresh (until `now` passes the cooldown). Returns the new flight
  // (to load), or null.
  std::shared_ptr<Flight> start_refresh(const FlightKey& key, TimePoint now);

  // Takes the right to complete `f`. True exactly once per flight.
  bool claim(Flight& f);
  // Removes `f` from the table and delivers (entry, status,
  // from_second_tier) to its waiters, then to nobody: later joins start a
  // new flight. REQUIRES: claim(f) returned true on this thread.
  void finish(Flight& f, Entry* entry, const Status& status, bool from_second_tier = false);

  // After a failed refresh: no refresh of `key` starts before `until`.
  // Cooldowns over at `now` may be pruned.
  void set_cooldown(const FlightKey& key, TimePoint now, TimePoint until);
  void clear_cooldown(const FlightKey& key);

  // ---- Engine lifetime ----
  // Background work that may outlive the engine (refresh tasks, load-timeout
  // timers, loader completions) holds life() — not the table — and touches
  // the table and the engine only inside a TableUse of it.
  std::shared_ptr<TableLife> life() const noexcept { return life_; }
  // Closes life() (waiting for work inside a TableUse to leave; work on the
  // calling thread itself is not waited for), then fails every flight still
  // in progress with kShutdown so no waiter is left hanging. Afterwards the
  // table may be destroyed. Idempotent.
  void close();
  bool closed() const;

  // Flights in progress (for tests and stats).
  std::size_t in_flight() const;
  // Loader completions discarded because their flight was already completed
  // (timed out, or completed twice).
  std::uint64_t late_completions() const noexcept { return late_.load(std::memory_order_relaxed); }
  void count_late_completion() noexcept { late_.fetch_add(1, std::memory_order_relaxed); }

 private:
  struct Shard {
    mutable std::mutex mu;  // guards flights, cooldown and every flight's state_/waiters_
    std::unordered_map<FlightKey, std::shared_ptr<Flight>, FlightKeyHash> flights;
    std::unordered_map<FlightKey, TimePoint, FlightKeyHash> cooldown;
  };
  Shard& shard_of(const FlightKey& key, std::size_t* index);

  std::unique_ptr<Shard[]> shards_;
  const std::size_t mask_;
  const std::shared_ptr<TableLife> life_;
  std::atomic<std::uint64_t> late_{0};
};

// Enters a TableLife for the scope of a block; false if it is closed.
class TableUse {
 public:
  explicit TableUse(TableLife& life) : life_(life), ok_(life.enter()) {}
  ~TableUse() {
    if (ok_) life_.leave();
  }
  TableUse(const TableUse&) = delete;
  TableUse& operator=(const TableUse&) = delete;
  explicit operator bool() const noexcept { return ok_; }

 private:
  TableLife& life_;
  const bool ok_;
};

// The flight table of `engine` (src/core/load.cpp).
FlightTable& flight_table(Engine& engine);
// Called before `engine` is destroyed (also done by ~Engine): closes its
// table — waits for background loading work that uses the engine, drops work
// not yet started, fails flights still in progress with kShutdown.
void retire_flights(Engine& engine);

}  // namespace callcache::internal
