// The type-erased half of Cache<V>::get_or_load: freshness handling, single
// flight, load timeouts, negative caching, background refreshes and the
// loading statistics. The typed half (running the loader, building Ref<V>)
// is in include/callcache/cache.h and load.h.
#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "callcache/cache.h"
#include "core/flight.h"

namespace callcache::internal {

namespace {

using Event = LoadEvent;
using Access = EngineAccess;

// How long a key waits before the next background refresh after one failed,
// when the namespace has no negative_ttl.
constexpr Duration kDefaultRefreshCooldown = std::chrono::seconds(1);

std::string millis(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

// Stale-if-error: a refresh failed (or timed out, or yielded nothing to
// keep); the stale entry stays and the next refresh of `key` waits.
void refresh_failed(Engine& engine, FlightTable& table, NamespaceId ns, const FlightKey& key) {
  EngineAccess::record(engine, ns, LoadEvent::kRefreshFailure);
  const NamespacePolicy& policy = engine.policy(ns);
  const TimePoint now = engine.clock().now();
  Duration cool =
      policy.negative_ttl > Duration::zero() ? policy.negative_ttl : kDefaultRefreshCooldown;
  table.set_cooldown(key, now, now + cool);
}

}  // namespace

// The engine owns its flight table (Engine::flights()); it is closed first
// when the engine is destroyed.
FlightTable& flight_table(Engine& engine) { return Access::flights(engine); }

void retire_flights(Engine& engine) { Access::flights(engine).close(); }

Status loader_threw(const char* what) {
  return Status::load_failed(what ? std::string("loader threw: ") + what
                                  : std::string("loader threw a non-standard exception"));
}

// The receiving end of a flight's loader. It may outlive the engine (a
// loader that answers late, a refresh task dropped by a scheduler): it
// touches the table and the engine only inside a TableUse of the table's
// life, and once the table has closed, the table has already failed the
// flight for its waiters.
class LoadSink {
 public:
  LoadSink(Engine& engine, FlightTable& table, std::shared_ptr<Flight> flight, NamespaceId ns,
           AfterStore after_store)
      : engine_(&engine),
        table_(&table),
        life_(table.life()),
        flight_(std::move(flight)),
        ns_(ns),
        after_store_(std::move(after_store)) {}

  // A loader that never completed: fail the flight so the key is not wedged.
  // No engine or scheduler calls: this may run while a scheduler that
  // dropped the refresh task is being destroyed.
  ~LoadSink() {
    if (done_.exchange(true)) return;
    TableUse use(*life_);
    if (use && table_->claim(*flight_)) {
      table_->finish(
          *flight_, nullptr,
          Status::load_failed("the loader's completion was dropped without being called "
                              "(or its refresh task was dropped by a stopped scheduler)"));
    }
  }

  bool complete(LoadOutcome& out) {
    TableUse use(*life_);
    if (!use) return false;  // the engine is gone; its table failed the flight
    if (done_.exchange(true) || !table_->claim(*flight_)) {
      Access::record(*engine_, ns_, Event::kLateCompletion);
      table_->count_late_completion();
      return false;
    }
    Engine& engine = *engine_;
    if (auto id = flight_->timer.load(std::memory_order_acquire)) engine.scheduler().cancel(id);
    Access::record_load_latency(engine, ns_, engine.clock().now() - flight_->started);
    if (!out.value) {
      fail(out);
      return true;
    }
    if (out.retain == Retain::kNone) {
      // Handed to the waiters, kept nowhere. A refresh that yields nothing to
      // keep is paced like a failed one; the stale value stays.
      if (flight_->is_refresh()) refresh_failed(engine, *table_, ns_, flight_->key());
      Entry* e = Access::make_unstored(engine, ns_, out.value, out.charge);
      table_->finish(*flight_, e, Status(), out.from_second_tier);
      unref(e);
      return true;
    }
    const FlightKey& k = flight_->key();
    Entry* e = nullptr;
    // Not stored if an invalidation ran since the load started: the value
    // may predate it.
    Status s = Access::insert(engine, ns_, TenantId{k.tenant}, k.key, out.value, out.charge,
                              out.put, flight_->epoch, &e);
    const bool stored = s.ok() && e;
    if (stored) {
      if (flight_->is_refresh()) table_->clear_cooldown(k);
    } else if (!e) {
      // Not cacheable (too large, shut down, raced an invalidation before
      // the value was moved): the waiters still get the value, in an entry
      // of their own. (A race caught later hands back such an entry in e.)
      e = Access::make_unstored(engine, ns_, out.value, out.charge);
    }
    table_->finish(*flight_, e, Status(), out.from_second_tier);
    if (stored && after_store_) after_store_(value_of(e), out);
    unref(e);
    return true;
  }

 private:
  // A failed load: counted; remembered for negative_ttl, or (a refresh) the
  // stale value stays and the next refresh waits.
  void fail(LoadOutcome& out) {
    Engine& engine = *engine_;
    Status err = out.error.ok() ? Status::internal("loader completed with neither value nor error")
                                : std::move(out.error);
    Access::record(engine, ns_, Event::kLoadFailure);
    if (flight_->is_refresh()) {
      refresh_failed(engine, *table_, ns_, flight_->key());
    } else if (engine.policy(ns_).negative_ttl > Duration::zero()) {
      const FlightKey& k = flight_->key();
      (void)Access::insert_negative(engine, ns_, TenantId{k.tenant}, k.key, err);
    }
    table_->finish(*flight_, nullptr, err);
  }

  Engine* const engine_;
  FlightTable* const table_;
  const std::shared_ptr<TableLife> life_;
  const std::shared_ptr<Flight> flight_;
  const NamespaceId ns_;
  const AfterStore after_store_;
  std::atomic<bool> done_{false};
};

bool complete_load(LoadSink& sink, LoadOutcome& outcome) { return sink.complete(outcome); }

namespace {

// Delivers to a receiver at most once: the flight's outcome and the caller's
// own wait deadline race for it.
struct OnceReceiver {
  // What the caller did in the flight, for Served.
  enum Role : std::uint8_t { kJoined, kLeads, kFoundAgain };

  explicit OnceReceiver(LoadReceiver r) : receiver(std::move(r)) {}
  void deliver(Entry* pinned, Status status, bool from_second_tier) {
    if (fired.exchange(true, std::memory_order_acq_rel)) {
      if (pinned) unref(pinned);
      return;
    }
    Served served = Served::kCoalesced;
    switch (role.load(std::memory_order_acquire)) {
      case kJoined:
        break;
      case kLeads:
        served = from_second_tier ? Served::kSecondTier : Served::kLoaded;
        break;
      case kFoundAgain:
        served = status.ok() ? Served::kHit : Served::kNegative;
        break;
    }
    receiver(pinned, std::move(status), served);
  }
  std::atomic<bool> fired{false};
  std::atomic<std::uint8_t> role{kJoined};  // set by the caller before its flight can finish
  LoadReceiver receiver;
};

// Starts the loader of `flight` (which this call created): arms the load
// timeout, then runs the starter inline (foreground) or on an executor
// (background refresh of a blocking loader).
void launch(const LoadCall& call, FlightTable& table, const std::shared_ptr<Flight>& flight) {
  Engine& engine = *call.engine;
  const NamespaceId ns = call.ns;
  const NamespacePolicy& policy = engine.policy(ns);
  const bool refresh = flight->is_refresh();
  flight->started = engine.clock().now();
  flight->epoch = Access::epoch(engine, ns);
  Access::record(engine, ns, Event::kLoad);
  if (refresh) Access::record(engine, ns, Event::kRefresh);
  auto sink = std::make_shared<LoadSink>(engine, table, flight, ns, call.after_store);

  if (policy.load_timeout > Duration::zero()) {
    std::weak_ptr<Flight> weak = flight;
    Duration limit = policy.load_timeout;
    // Holds the table's life, not the table: it may fire after the engine
    // is gone (an external scheduler), and then does nothing.
    auto id = engine.scheduler().schedule_after(limit, [&engine, &table, life = table.life(), weak,
                                                        ns, limit] {
      TableUse use(*life);
      std::shared_ptr<Flight> f = weak.lock();
      if (!use || !f || !table.claim(*f)) return;
      Access::record(engine, ns, Event::kLoadTimeout);
      if (f->is_refresh()) refresh_failed(engine, table, ns, f->key());
      table.finish(*f, nullptr,
                   Status::timeout("load of '" + f->key().key + "' in namespace '" +
                                   engine.name(ns) + "' did not complete within " + millis(limit)));
    });
    flight->timer.store(id, std::memory_order_release);
  }

  auto run = [starter = call.starter, sink, life = table.life(), refresh]() mutable {
    // A background refresh may run after the engine is gone: drop it (its
    // flight was failed when the table closed).
    TableUse use(*life);
    if (refresh && !use) return;
    try {
      starter(sink);
    } catch (...) {  // the starter itself failed (e.g. bad_alloc copying the loader)
      LoadOutcome out;
      out.error = loader_threw(nullptr);
      sink->complete(out);
    }
  };
  sink.reset();  // `run` holds the only reference: dropping it unrun fails the flight
  if (!refresh) {
    run();
  } else if (call.options && call.options->executor) {
    call.options->executor(std::move(run));
  } else if (!call.blocking_loader) {
    run();
  } else {
    // If the scheduler is shut down the task is dropped, and with it the
    // sink, which fails the flight.
    (void)engine.scheduler().schedule_after(Duration::zero(), std::move(run));
  }
}

FlightKey flight_key(const LoadCall& call) {
  TenantId tenant = call.engine->policy(call.ns).shared ? kSharedTenant : call.tenant;
  return FlightKey{call.ns.index, tenant.value, std::string(call.key)};
}

void start_refresh(const LoadCall& call) {
  FlightTable& table = flight_table(*call.engine);
  if (auto f = table.start_refresh(flight_key(call), call.engine->clock().now())) {
    launch(call, table, f);
  }
}

}  // namespace

void load_slow(const LoadCall& call, Entry* entry, Freshness freshness, LoadReceiver receiver) {
  Engine& engine = *call.engine;
  const NamespaceId ns = call.ns;
  switch (freshness) {
    case Freshness::kFresh:
      Access::record(engine, ns, Event::kHit);
      receiver(entry, Status(), Served::kHit);
      return;
    case Freshness::kRefreshDue:
      Access::record(engine, ns, Event::kHit);
      start_refresh(call);
      receiver(entry, Status(), Served::kHit);
      return;
    case Freshness::kStale:
      Access::record(engine, ns, Event::kStaleHit);
      start_refresh(call);
      receiver(entry, Status(), Served::kStale);
      return;
    case Freshness::kNegative: {
      Access::record(engine, ns, Event::kNegativeHit);
      Status error = error_of(entry);
      unref(entry);
      receiver(nullptr, std::move(error), Served::kNegative);
      return;
    }
    case Freshness::kMiss:
      if (entry) unref(entry);
      break;
  }
  if (call.key.empty()) {
    receiver(
        nullptr,
        Status::invalid_argument("get_or_load: empty key in namespace '" + engine.name(ns) + "'"),
        Served::kLoaded);
    return;
  }
  Access::record(engine, ns, Event::kMiss);

  FlightTable& table = flight_table(engine);
  auto once = std::make_shared<OnceReceiver>(std::move(receiver));
  auto joined = table.join(flight_key(call), [once](Entry* e, const Status& s, bool tier) {
    if (e) ref(e);
    once->deliver(e, s, tier);
  });
  // A blocking leader runs the loader on its own thread: it has nothing to
  // give up on, and returns the load's own result.
  const bool blocking_leader = joined.leader && call.blocking_loader;
  if (call.options && call.options->wait_timeout && !blocking_leader) {
    std::weak_ptr<OnceReceiver> weak = once;
    Duration limit = *call.options->wait_timeout;
    (void)engine.scheduler().schedule_after(limit, [weak, limit] {
      if (auto o = weak.lock()) {
        o->deliver(nullptr,
                   Status::deadline_exceeded("gave up waiting for the load after " + millis(limit) +
                                             "; it continues for other waiters"),
                   false);
      }
    });
  }
  if (!joined.leader) {
    Access::record(engine, ns, Event::kCoalesced);
    return;
  }
  // Between our miss and our join another flight may have stored the key and
  // left the table (it stores before it leaves): look again before loading.
  Freshness again = Freshness::kMiss;
  if (Entry* e = Access::lookup_for_load(engine, ns, call.tenant, call.key, &again)) {
    if (again == Freshness::kFresh || again == Freshness::kRefreshDue ||
        again == Freshness::kNegative) {
      once->role.store(OnceReceiver::kFoundAgain, std::memory_order_release);
      Status s = again == Freshness::kNegative ? error_of(e) : Status();
      if (table.claim(*joined.flight)) table.finish(*joined.flight, s.ok() ? e : nullptr, s);
      unref(e);
      return;
    }
    unref(e);
  }
  once->role.store(OnceReceiver::kLeads, std::memory_order_release);
  launch(call, table, joined.flight);
}

}  // namespace callcache::internal
