// callcache/state_store.h — per-user conversation state with an idle TTL.
//
// A bot keeps a little state per user (the step of a dialogue, a draft).
// State is not a cache: losing it breaks the conversation, so a StateStore
// NEVER evicts a state before it has been idle for `idle_ttl`. When the store
// holds `max_states` live states, new state is refused with
// kResourceExhausted (existing states can still be read and replaced).
// Every read or write of a state restarts its idle TTL. Expired states are
// dropped lazily (when met), by cleanup_expired(), and — with a Scheduler —
// by a periodic background sweep.
//
// T is any movable type (ByteStateStore = StateStore<std::string> for
// serialised state).
//
// Thread-safety: every member may be called from any thread (one internal
// mutex). The functions passed to update()/upsert() run under that mutex: they
// must be short and must not call back into the store.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache {

struct StateStoreOptions {
  std::string name = "state";              // for messages
  std::size_t max_states = 100'000;        // >= 1
  Duration idle_ttl = std::chrono::minutes(30);  // > 0
  // Time source; nullptr = the scheduler's clock, or default_clock().
  const Clock* clock = nullptr;
  // Runs the background sweep every `sweep_interval`; nullptr = no background
  // sweep. Must outlive the store and use the store's clock.
  Scheduler* scheduler = nullptr;
  Duration sweep_interval = std::chrono::minutes(1);  // > 0 when scheduler is set
};

struct StateStoreStats {
  std::uint64_t active = 0;     // states held now (some may have expired unseen)
  std::uint64_t created = 0;    // states created by put()/upsert()
  std::uint64_t updated = 0;    // existing states replaced or modified
  std::uint64_t expired = 0;    // states dropped after idle_ttl
  std::uint64_t refusals = 0;   // new states refused because the store was full
  std::uint64_t erased = 0;     // states removed by erase()
  std::uint64_t sweeps = 0;     // cleanup_expired() runs (explicit or background)
  std::uint64_t capacity = 0;

  // {"active":N,...}
  std::string to_json() const;
  // callcache_state_<counter>{store="<name>"} N lines (Prometheus text format).
  std::string to_prometheus(std::string_view name) const;
};

template <class T>
class StateStore {
 public:
  // kInvalidArgument naming the option when `options` are bad.
  static Result<std::unique_ptr<StateStore>> create(StateStoreOptions options) {
    const std::string where = "state store '" + options.name + "': ";
    if (options.max_states == 0) return Status::invalid_argument(where + "max_states must be at least 1");
    if (options.idle_ttl <= Duration::zero()) {
      return Status::invalid_argument(where + "idle_ttl must be greater than zero");
    }
    if (options.scheduler && options.sweep_interval <= Duration::zero()) {
      return Status::invalid_argument(where + "sweep_interval must be greater than zero");
    }
    if (options.scheduler && options.clock && &options.scheduler->clock() != options.clock) {
      return Status::invalid_argument(where + "the scheduler must run on the store's clock");
    }
    return std::unique_ptr<StateStore>(new StateStore(std::move(options)));
  }

  ~StateStore() {
    std::lock_guard lock(core_->mu);
    core_->stopped = true;
    if (core_->sweep_task) core_->scheduler->cancel(core_->sweep_task);
  }
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Creates or replaces the state of `key`. kResourceExhausted when `key`
  // has no live state and the store is full (nothing is evicted for it).
  Status put(std::string_view key, T value) {
    return upsert(key, [&value](T& state) { state = std::move(value); });
  }

  // A copy of the state of `key`, restarting its idle TTL; nullopt if none.
  std::optional<T> get(std::string_view key) {
    std::lock_guard lock(core_->mu);
    Node* n = core_->find_live(key);
    if (!n) return std::nullopt;
    core_->touch(n);
    return n->value;
  }

  // Runs f(T&) on the existing state of `key`, restarting its idle TTL.
  // kNotFound when there is none.
  template <class F>
  Status update(std::string_view key, F&& f) {
    std::lock_guard lock(core_->mu);
    Node* n = core_->find_live(key);
    if (!n) return Status::not_found(core_->where() + "no state for '" + std::string(key) + "'");
    f(n->value);
    core_->touch(n);
    ++core_->stats.updated;
    return Status();
  }

  // Runs f(T&) on the state of `key`, creating it as T{} first when absent.
  // kResourceExhausted (f not run) when creation is needed and the store is full.
  template <class F>
  Status upsert(std::string_view key, F&& f) {
    std::lock_guard lock(core_->mu);
    Node* n = core_->find_live(key);
    if (n) {
      f(n->value);
      core_->touch(n);
      ++core_->stats.updated;
      return Status();
    }
    if (core_->order.size() >= core_->options.max_states) {
      core_->cleanup_locked();  // expired states are not live: they make room
      if (core_->order.size() >= core_->options.max_states) {
        ++core_->stats.refusals;
        return Status::resource_exhausted(
            core_->where() + "full with " + std::to_string(core_->order.size()) +
            " live states (max_states); new state for '" + std::string(key) +
            "' refused — states are never evicted before their idle TTL");
      }
    }
    core_->order.push_back(Node{std::string(key), T{}, core_->now_ns()});
    Node* created = &core_->order.back();
    core_->index.emplace(std::string_view(created->key), std::prev(core_->order.end()));
    f(created->value);
    ++core_->stats.created;
    return Status();
  }

  // Removes the state of `key`. Returns true if there was a live one.
  bool erase(std::string_view key) {
    std::lock_guard lock(core_->mu);
    Node* n = core_->find_live(key);
    if (!n) return false;
    core_->remove(core_->index.find(key));
    ++core_->stats.erased;
    return true;
  }

  // True if `key` has a live state. Does not restart its TTL.
  bool contains(std::string_view key) const {
    std::lock_guard lock(core_->mu);
    auto it = core_->index.find(key);
    return it != core_->index.end() && !core_->expired(*it->second, core_->now_ns());
  }

  // Drops every expired state now. Returns how many.
  std::size_t cleanup_expired() {
    std::lock_guard lock(core_->mu);
    return core_->cleanup_locked();
  }

  // States held (including expired ones not dropped yet).
  std::size_t size() const {
    std::lock_guard lock(core_->mu);
    return core_->order.size();
  }

  StateStoreStats stats() const {
    std::lock_guard lock(core_->mu);
    StateStoreStats s = core_->stats;
    s.active = core_->order.size();
    s.capacity = core_->options.max_states;
    return s;
  }

 private:
  struct Node {
    std::string key;
    T value;
    std::int64_t last_access_ns;
  };
  using List = std::list<Node>;

  // Shared with the background sweep task, which holds it weakly.
  struct Core {
    explicit Core(StateStoreOptions o) : options(std::move(o)) {
      clock = options.clock ? options.clock
                            : options.scheduler ? &options.scheduler->clock() : &default_clock();
      scheduler = options.scheduler;
    }
    std::string where() const { return "state store '" + options.name + "': "; }
    std::int64_t now_ns() const { return clock->now().time_since_epoch().count(); }
    bool expired(const Node& n, std::int64_t now) const {
      return n.last_access_ns <= now - options.idle_ttl.count();
    }
    // REQUIRES: mu held. The live node of `key`; drops it if expired.
    Node* find_live(std::string_view key) {
      auto it = index.find(key);
      if (it == index.end()) return nullptr;
      if (expired(*it->second, now_ns())) {
        remove(it);
        ++stats.expired;
        return nullptr;
      }
      return &*it->second;
    }
    // REQUIRES: mu held. Makes `n` the most recently used.
    void touch(Node* n) {
      n->last_access_ns = now_ns();
      auto it = index.find(std::string_view(n->key));
      order.splice(order.end(), order, it->second);
    }
    template <class It>
    void remove(It it) {
      auto node = it->second;
      index.erase(it);
      order.erase(node);
    }
    // REQUIRES: mu held. `order` is sorted by last access (oldest first), so
    // expired states are a prefix.
    std::size_t cleanup_locked() {
      const std::int64_t now = now_ns();
      std::size_t n = 0;
      while (!order.empty() && expired(order.front(), now)) {
        index.erase(std::string_view(order.front().key));
        order.pop_front();
        ++n;
      }
      stats.expired += n;
      ++stats.sweeps;
      return n;
    }

    const StateStoreOptions options;
    const Clock* clock;
    Scheduler* scheduler;
    mutable std::mutex mu;  // guards everything below
    List order;             // least recently used first
    std::unordered_map<std::string_view, typename List::iterator> index;  // views into order
    StateStoreStats stats;
    bool stopped = false;
    Scheduler::TaskId sweep_task = 0;
  };

  explicit StateStore(StateStoreOptions options)
      : core_(std::make_shared<Core>(std::move(options))) {
    if (core_->scheduler) {
      std::lock_guard lock(core_->mu);
      schedule_sweep(core_);
    }
  }

  // REQUIRES: core->mu held.
  static void schedule_sweep(const std::shared_ptr<Core>& core) {
    std::weak_ptr<Core> weak = core;
    core->sweep_task = core->scheduler->schedule_after(core->options.sweep_interval, [weak] {
      auto c = weak.lock();
      if (!c) return;
      std::lock_guard lock(c->mu);
      if (c->stopped) return;
      c->cleanup_locked();
      schedule_sweep(c);
    });
  }

  std::shared_ptr<Core> core_;
};

using ByteStateStore = StateStore<std::string>;

}  // namespace callcache
