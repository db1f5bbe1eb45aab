// The toolkit side of the extension: the virtual clock, the rate limiter and
// account locks (in-process or Redis, from the configuration), and the flow
// structures (bounded queue, seen set, state store) holding Python objects.
// The asyncio forms live in callcache/toolkit.py: they use the non-blocking
// calls below (reserve, try_push, try_pop, acquire_async) and wait on the
// event loop; the blocking calls release the GIL.
#include <pybind11/stl.h>

#include <cstdlib>

#include "bindings.h"
#include "callcache/account_locks.h"
#include "callcache/bounded_queue.h"
#include "callcache/rate_limiter.h"
#include "callcache/redis_backend.h"
#include "callcache/seen_set.h"
#include "callcache/state_store.h"
#include "py_config.h"

namespace callcache::python {

namespace {

// ---- Redis options from the storage section -----------------------------------

// The tiers' reading of the storage section (tiers::redis_options), with
// its error raised as a Python exception.
RedisOptions redis_options_or_raise(const tiers::StorageConfig& c) {
  auto o = tiers::redis_options(c);
  if (!o.ok()) raise_status(o.status());
  return std::move(*o);
}

// ---- Rate limiter ---------------------------------------------------------------

// Call attributes with the strings they view kept alive.
struct Call {
  std::string method, account, bot;
  std::optional<std::int64_t> chat;
  bool paid = false;
  CallAttributes view() const {
    CallAttributes a;
    a.method = method;
    a.account = account;
    a.bot = bot;
    a.chat = chat;
    a.paid = paid;
    return a;
  }
};

Call make_call(const std::string& method, const std::string& account, const std::string& bot,
               std::optional<std::int64_t> chat, bool paid) {
  return Call{method, account, bot, chat, paid};
}

struct Limiter {
  std::shared_ptr<VirtualClock> clock;  // outlives the limiter
  std::unique_ptr<RateLimiter> limiter;
  bool distributed = false;

  Limiter(const PyConfig& cfg, std::shared_ptr<VirtualClock> vc) : clock(std::move(vc)) {
    if (cfg.distributed) {
      RedisRateLimiterOptions o;
      o.redis = redis_options_or_raise(cfg.storage);
      o.rules = cfg.rate_limits.rules;
      auto l = make_redis_rate_limiter(std::move(o));
      check(l.status());
      limiter = std::move(*l);
      distributed = true;
    } else {
      RateLimiterOptions o = cfg.rate_limits;
      if (clock) o.clock = &clock->clock;
      auto l = make_local_rate_limiter(std::move(o));
      check(l.status());
      limiter = std::move(*l);
    }
  }

  // Seconds to wait before the call may start (its slot is reserved), or
  // DeadlineExceeded when that is more than max_wait.
  double reserve(const Call& c, py::handle max_wait) {
    Duration budget =
        max_wait.is_none() ? RateLimiter::kNoDeadline : to_duration(max_wait, "deadline");
    Result<Duration> r = Status::internal("unset");
    if (distributed) {
      ReleaseGil nogil;  // a round trip to Redis
      r = limiter->reserve(c.view(), budget);
    } else {
      r = limiter->reserve(c.view(), budget);
    }
    check(r.status());
    return to_seconds(*r);
  }

  py::tuple try_acquire(const Call& c) {
    TryAcquireResult r;
    {
      ReleaseGil nogil;
      r = limiter->try_acquire(c.view());
    }
    return py::make_tuple(r.admitted, to_seconds(r.wait));
  }

  void acquire(const Call& c, py::handle max_wait) {
    Duration budget =
        max_wait.is_none() ? RateLimiter::kNoDeadline : to_duration(max_wait, "deadline");
    Status s;
    {
      ReleaseGil nogil;
      s = limiter->acquire(c.view(), budget);
    }
    check(s);
  }

  void penalize(const Call& c, int scope, py::handle seconds) {
    Duration d = to_duration(seconds, "seconds");
    Status s;
    {
      ReleaseGil nogil;
      s = limiter->penalize(c.view(), static_cast<KeyScope>(scope), d);
    }
    check(s);
  }

  std::string stats_json() const { return limiter->stats().to_json(); }
  std::string prometheus() const { return limiter->stats().to_prometheus(); }
  std::vector<std::string> rule_names() const {
    std::vector<std::string> out;
    for (const Rule& r : limiter->rules()) out.push_back(r.name);
    return out;
  }
};

// ---- Account locks ----------------------------------------------------------------

struct Locks {
  std::shared_ptr<VirtualClock> clock;
  std::unique_ptr<AccountLocks> locks;
  // Destroyed before `locks`: its pending grants release into live locks.
  std::unique_ptr<Scheduler> own_scheduler;
  bool distributed = false;

  Locks(const PyConfig& cfg, std::shared_ptr<VirtualClock> vc) : clock(std::move(vc)) {
    AccountLockOptions o = cfg.account_locks;
    if (clock) {
      o.clock = &clock->clock;
      o.scheduler = &clock->scheduler;
    } else {
      own_scheduler = make_thread_scheduler(default_clock());
      o.scheduler = own_scheduler.get();
    }
    o.log = [](std::string_view message) {
      if (!python_alive()) return;
      py::gil_scoped_acquire gil;
      try {
        py::module_::import("logging")
            .attr("getLogger")("callcache.locks")
            .attr("warning")(std::string(message));
      } catch (py::error_already_set& e) {
        e.discard_as_unraisable("callcache: logging an account lock conflict");
      }
    };
    if (cfg.distributed) {
      RedisAccountLockOptions r;
      r.redis = redis_options_or_raise(cfg.storage);
      r.locks = std::move(o);
      auto l = make_redis_account_locks(std::move(r));
      check(l.status());
      locks = std::move(*l);
      distributed = true;
    } else {
      auto l = make_local_account_locks(std::move(o));
      check(l.status());
      locks = std::move(*l);
    }
  }

  ~Locks() {
    ReleaseGil nogil;  // the scheduler's thread may be delivering a grant (it takes the GIL)
    own_scheduler.reset();
    locks.reset();
  }
};

// A held set of accounts; keeps its locks alive.
struct Guard {
  std::shared_ptr<Locks> owner;
  AccountLockGuard guard;
  void release() {
    ReleaseGil nogil;  // Redis: a compare-and-delete round trip
    guard.release();
  }
};

std::optional<Duration> wait_arg(py::handle wait) {
  if (wait.is_none()) return AccountLocks::kDefaultWait;
  return to_duration(wait, "wait");
}

py::object holder_dict(const LockHolder& h, const Clock& clock) {
  py::dict d;
  d["account"] = h.account;
  d["task"] = h.task;
  d["held_for"] = to_seconds(clock.now() - h.since);
  return d;
}

// ---- Flow ------------------------------------------------------------------------

OverflowPolicy parse_policy(const std::string& name) {
  if (name == "block") return OverflowPolicy::kBlock;
  if (name == "drop_newest") return OverflowPolicy::kDropNewest;
  if (name == "drop_oldest") return OverflowPolicy::kDropOldest;
  if (name == "reject") return OverflowPolicy::kReject;
  throw py::value_error("policy: expected one of block, drop_newest, drop_oldest, reject, got '" +
                        name + "'");
}

struct Queue {
  std::shared_ptr<VirtualClock> clock;
  std::unique_ptr<BoundedQueue<PyValue>> q;

  Queue(const std::string& name, std::size_t capacity, const std::string& policy,
        py::handle block_timeout, std::shared_ptr<VirtualClock> vc)
      : clock(std::move(vc)) {
    BoundedQueueOptions o;
    o.name = name;
    o.capacity = capacity;
    o.policy = parse_policy(policy);
    if (!block_timeout.is_none()) o.block_timeout = to_duration(block_timeout, "block_timeout");
    if (clock) o.clock = &clock->clock;
    auto r = BoundedQueue<PyValue>::create(std::move(o));
    check(r.status());
    q = std::move(*r);
  }

  // The outcome's name, or None when a blocking queue is full.
  py::object try_push(py::handle item) {
    PyValue v(item);
    std::optional<PushOutcome> o = q->try_push(v);
    maybe_drain();
    if (!o) return py::none();
    return py::str(push_outcome_name(*o));
  }
  py::tuple try_pop() {
    std::optional<PyValue> v = q->try_pop();
    maybe_drain();
    if (!v) return py::make_tuple(false, py::none());
    return py::make_tuple(true, v->object());
  }
  py::tuple pop(py::handle timeout) {
    Duration d = timeout.is_none() ? Duration::max() : to_duration(timeout, "timeout");
    std::optional<PyValue> v;
    {
      ReleaseGil nogil;
      v = q->pop_for(d);
    }
    maybe_drain();
    if (!v) return py::make_tuple(false, py::none());
    return py::make_tuple(true, v->object());
  }
  void status_of(const std::string& outcome) {
    for (PushOutcome o : {PushOutcome::kDroppedNewest, PushOutcome::kRejected,
                          PushOutcome::kTimedOut, PushOutcome::kClosed}) {
      if (outcome == push_outcome_name(o)) check(q->to_status(o));
    }
  }
};

struct Seen {
  std::shared_ptr<VirtualClock> clock;
  std::unique_ptr<SeenSet> set;
  Seen(std::size_t capacity, py::handle ttl, bool refresh, std::shared_ptr<VirtualClock> vc)
      : clock(std::move(vc)) {
    SeenSetOptions o;
    o.capacity = capacity;
    o.ttl = to_duration(ttl, "ttl");
    o.refresh_on_repeat = refresh;
    if (clock) o.clock = &clock->clock;
    auto r = SeenSet::create(std::move(o));
    check(r.status());
    set = std::move(*r);
  }
  bool insert_if_new(py::handle id) {
    if (PyLong_Check(id.ptr())) return set->insert_if_new(id.cast<std::int64_t>());
    return set->insert_if_new(id.cast<std::string>());
  }
  static std::string id_text(py::handle id) {
    if (PyLong_Check(id.ptr())) return std::to_string(id.cast<std::int64_t>());
    return id.cast<std::string>();
  }
};

struct States {
  std::shared_ptr<VirtualClock> clock;
  std::unique_ptr<StateStore<PyValue>> store;
  States(const std::string& name, std::size_t max_states, py::handle idle_ttl,
         std::shared_ptr<VirtualClock> vc)
      : clock(std::move(vc)) {
    StateStoreOptions o;
    o.name = name;
    o.max_states = max_states;
    o.idle_ttl = to_duration(idle_ttl, "idle_ttl");
    if (clock) {
      o.clock = &clock->clock;
      o.scheduler = &clock->scheduler;
    }
    auto r = StateStore<PyValue>::create(std::move(o));
    check(r.status());
    store = std::move(*r);
  }
};

}  // namespace

void bind_toolkit(py::module_& m) {
  py::class_<VirtualClock, std::shared_ptr<VirtualClock>>(m, "VirtualClock")
      .def(py::init([](double start) {
             if (!(start >= 0)) throw py::value_error("start: expected seconds >= 0");
             return std::make_shared<VirtualClock>(
                 TimePoint(Duration(static_cast<std::int64_t>(start * 1e9))));
           }),
           py::arg("start") = 1.0)
      .def("now",
           [](const VirtualClock& c) { return to_seconds(c.clock.now().time_since_epoch()); })
      .def("now_ns", [](const VirtualClock& c) { return c.clock.now().time_since_epoch().count(); })
      .def("advance",
           [](VirtualClock& c, py::handle seconds) {
             std::size_t n = c.scheduler.advance(to_duration(seconds, "seconds"));
             maybe_drain();
             return n;
           })
      .def("advance_to_ns",
           [](VirtualClock& c, std::int64_t ns) {
             Duration d = Duration(ns) - c.clock.now().time_since_epoch();
             std::size_t n = c.scheduler.advance(d > Duration::zero() ? d : Duration::zero());
             maybe_drain();
             return n;
           })
      .def("next_deadline",
           [](const VirtualClock& c) -> py::object {
             TimePoint t = c.scheduler.next_deadline();
             if (t == TimePoint::max()) return py::none();
             return py::float_(to_seconds(t.time_since_epoch()));
           })
      .def("pending", [](const VirtualClock& c) { return c.scheduler.pending(); });

  py::class_<Call>(m, "Call")
      .def(py::init(&make_call), py::arg("method") = "", py::arg("account") = "",
           py::arg("bot") = "", py::arg("chat") = std::nullopt, py::arg("paid") = false)
      .def_readonly("method", &Call::method)
      .def_readonly("account", &Call::account)
      .def_readonly("bot", &Call::bot)
      .def_readonly("chat", &Call::chat)
      .def_readonly("paid", &Call::paid);

  m.attr("SCOPE_METHOD") = static_cast<int>(key_scope::kMethod);
  m.attr("SCOPE_ACCOUNT") = static_cast<int>(key_scope::kAccount);
  m.attr("SCOPE_CHAT") = static_cast<int>(key_scope::kChat);
  m.attr("SCOPE_BOT") = static_cast<int>(key_scope::kBot);
  m.attr("SCOPE_PAID") = static_cast<int>(key_scope::kPaid);

  py::class_<Limiter, std::shared_ptr<Limiter>>(m, "RateLimiter")
      .def(py::init<const PyConfig&, std::shared_ptr<VirtualClock>>(), py::arg("config"),
           py::arg("clock") = nullptr)
      .def_readonly("distributed", &Limiter::distributed)
      .def("reserve", &Limiter::reserve, py::arg("call"), py::arg("max_wait") = py::none())
      .def("try_acquire", &Limiter::try_acquire)
      .def("acquire", &Limiter::acquire, py::arg("call"), py::arg("max_wait") = py::none())
      .def("penalize", &Limiter::penalize)
      .def("stats_json", &Limiter::stats_json)
      .def("prometheus", &Limiter::prometheus)
      .def("rule_names", &Limiter::rule_names);

  py::class_<Guard>(m, "LockGuard")
      .def("release", &Guard::release)
      .def_property_readonly("holds", [](const Guard& g) { return g.guard.holds(); })
      .def_property_readonly("accounts", [](const Guard& g) { return g.guard.accounts(); });

  py::class_<Locks, std::shared_ptr<Locks>>(m, "AccountLocks")
      .def(py::init<const PyConfig&, std::shared_ptr<VirtualClock>>(), py::arg("config"),
           py::arg("clock") = nullptr)
      .def_readonly("distributed", &Locks::distributed)
      .def_property_readonly(
          "mode", [](const Locks& l) { return std::string(lock_mode_name(l.locks->mode())); })
      .def("acquire",
           [](std::shared_ptr<Locks> self, std::vector<std::string> accounts,
              const std::string& task, py::handle wait) {
             std::optional<Duration> w = wait_arg(wait);
             Result<AccountLockGuard> g = Status::internal("unset");
             {
               ReleaseGil nogil;
               g = self->locks->acquire_all(std::move(accounts), task, w);
             }
             check(g.status());
             return Guard{self, std::move(*g)};
           })
      .def("acquire_async",
           // `done(ok, guard_or_exception)` runs on the locks' scheduler
           // thread (the virtual clock's advance() for a virtual clock).
           [](std::shared_ptr<Locks> self, std::vector<std::string> accounts,
              const std::string& task, py::handle wait, py::handle done) {
             std::optional<Duration> w = wait_arg(wait);
             PyRef cb(done);
             std::weak_ptr<Locks> weak = self;
             Status s = self->locks->acquire_all_async(
                 std::move(accounts), task, w, [cb, weak](Result<AccountLockGuard> g) mutable {
                   std::shared_ptr<Locks> owner = weak.lock();
                   if (!owner || !python_alive()) return;  // the guard releases here
                   py::gil_scoped_acquire gil;
                   try {
                     if (g.ok()) {
                       cb.get()(true, py::cast(Guard{owner, std::move(*g)}));
                     } else {
                       cb.get()(false, exception_for(g.status()));
                     }
                   } catch (py::error_already_set& e) {
                     e.discard_as_unraisable("callcache: delivering an account lock");
                   }
                   maybe_drain();
                 });
             check(s);
           })
      .def("holder",
           [](const Locks& l, const std::string& account) -> py::object {
             auto h = l.locks->holder(account);
             if (!h) return py::none();
             return holder_dict(
                 *h, l.clock ? static_cast<const Clock&>(l.clock->clock) : default_clock());
           })
      .def("holders",
           [](const Locks& l) {
             py::list out;
             const Clock& clock =
                 l.clock ? static_cast<const Clock&>(l.clock->clock) : default_clock();
             std::vector<LockHolder> hs;
             {
               ReleaseGil nogil;
               hs = l.locks->holders();
             }
             for (const LockHolder& h : hs) out.append(holder_dict(h, clock));
             return out;
           })
      .def("stats_json", [](const Locks& l) { return l.locks->stats().to_json(); })
      .def("prometheus", [](const Locks& l) { return l.locks->stats().to_prometheus(); });

  py::class_<Queue>(m, "BoundedQueue")
      .def(py::init<const std::string&, std::size_t, const std::string&, py::handle,
                    std::shared_ptr<VirtualClock>>(),
           py::arg("name"), py::arg("capacity"), py::arg("policy"), py::arg("block_timeout"),
           py::arg("clock") = nullptr)
      .def("try_push", &Queue::try_push)
      .def("push",
           [](Queue& self, py::handle item, py::handle timeout) {
             PyValue v(item);
             std::optional<Duration> d;
             if (!timeout.is_none()) d = to_duration(timeout, "timeout");
             PushOutcome o;
             {
               ReleaseGil nogil;
               o = d ? self.q->push_for(std::move(v), *d) : self.q->push(std::move(v));
             }
             maybe_drain();
             return std::string(push_outcome_name(o));
           })
      .def("try_pop", &Queue::try_pop)
      .def("pop", &Queue::pop)
      .def("close", [](Queue& self) { self.q->close(); })
      .def_property_readonly("closed", [](const Queue& self) { return self.q->closed(); })
      .def_property_readonly("capacity",
                             [](const Queue& self) { return self.q->options().capacity; })
      .def_property_readonly("policy",
                             [](const Queue& self) {
                               return std::string(overflow_policy_name(self.q->options().policy));
                             })
      .def("size", [](const Queue& self) { return self.q->size(); })
      .def("raise_for", &Queue::status_of)
      .def("stats_json", [](const Queue& self) { return self.q->stats().to_json(); })
      .def("prometheus",
           [](const Queue& self) { return self.q->stats().to_prometheus(self.q->name()); });

  py::class_<Seen>(m, "SeenSet")
      .def(py::init<std::size_t, py::handle, bool, std::shared_ptr<VirtualClock>>(),
           py::arg("capacity"), py::arg("ttl"), py::arg("refresh_on_repeat"),
           py::arg("clock") = nullptr)
      .def("insert_if_new", &Seen::insert_if_new)
      .def("contains",
           [](const Seen& s, py::handle id) { return s.set->contains(Seen::id_text(id)); })
      .def("erase", [](Seen& s, py::handle id) { return s.set->erase(Seen::id_text(id)); })
      .def("cleanup_expired", [](Seen& s) { return s.set->cleanup_expired(); })
      .def("size", [](const Seen& s) { return s.set->size(); })
      .def("stats_json", [](const Seen& s) { return s.set->stats().to_json(); });

  py::class_<States>(m, "StateStore")
      .def(py::init<const std::string&, std::size_t, py::handle, std::shared_ptr<VirtualClock>>(),
           py::arg("name"), py::arg("max_states"), py::arg("idle_ttl"), py::arg("clock") = nullptr)
      .def("put",
           [](States& s, const std::string& key, py::handle value) {
             Status st = s.store->put(key, PyValue(value));
             maybe_drain();
             check(st);
           })
      .def("get",
           [](States& s, const std::string& key) -> py::object {
             std::optional<PyValue> v = s.store->get(key);  // a copy: one more reference, GIL held
             maybe_drain();
             if (!v) return py::none();
             return v->object();
           })
      .def("erase",
           [](States& s, const std::string& key) {
             bool was = s.store->erase(key);
             maybe_drain();
             return was;
           })
      .def("contains",
           [](const States& s, const std::string& key) { return s.store->contains(key); })
      .def("cleanup_expired",
           [](States& s) {
             std::size_t n = s.store->cleanup_expired();
             maybe_drain();
             return n;
           })
      .def("size", [](const States& s) { return s.store->size(); })
      .def("stats_json", [](const States& s) { return s.store->stats().to_json(); });
}

}  // namespace callcache::python
