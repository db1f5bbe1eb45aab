// The engine side of the extension: configuration, scopes, the second tier,
// and CacheCore — one engine's namespaces with the read path:
//
//   asyncio   CacheCore::load: Cache<V>::get_or_load_async. A hit returns at
//             once; a miss joins (or starts) the engine's single flight and
//             hands Python a Waiter. The leader reads the second tier inline
//             (AsyncStarter/TierStep: one SQLite lookup or Redis round trip,
//             as the gateway does); on an L2 miss the loader runs as an
//             asyncio task and its Completion writes the value through. No
//             thread waits for a load.
//   threads   CacheCore::load_blocking: TieredCache<V>::get_or_load (L1 → L2
//             → loader → write-through) with the GIL released.
// Both use the engine's one flight table: a key is loaded once for
// coroutines and threads together. TierStep is the interim asynchronous form
// of TieredCache's L2 step; the library's asynchronous TieredCache replaces it.
#include <pybind11/stl.h>

#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "bindings.h"
#include "callcache/cache.h"
#include "callcache/scope.h"
#include "callcache/tiered_cache.h"
#include "py_config.h"
#include "pythread.h"

namespace callcache::python {

namespace {

PyObject* g_deliver = nullptr;       // callcache._cache._deliver(future, ok, value); owned
PyObject* g_start = nullptr;         // callcache._cache._start_load(loader, context, completion)
PyObject* g_loaded_class = nullptr;  // callcache.Loaded; owned

// ---- Codecs -----------------------------------------------------------------

// A codec's two functions (bytes <-> object), supplied by the Python layer.
struct CodecFns {
  std::string name;
  PyRef dumps;  // object -> bytes
  PyRef loads;  // bytes -> object
};

[[noreturn]] void raise_codec_error(const std::string& message) {
  py::object cls = py::module_::import("callcache.errors").attr("CodecError");
  PyErr_SetObject(cls.ptr(), cls(message).ptr());
  throw py::error_already_set();
}

// Encodes `obj` for namespace `ns`. REQUIRES: the GIL. Raises CodecError.
std::string encode_now(const CodecFns& c, const std::string& ns, py::handle obj) {
  py::object out;
  try {
    out = c.dumps.get()(obj);
  } catch (py::error_already_set& e) {
    raise_codec_error("namespace '" + ns + "': a value of type " +
                      std::string(py::str(py::type::handle_of(obj).attr("__name__"))) +
                      " cannot be encoded with the '" + c.name +
                      "' codec for the second tier: " + e.what());
  }
  if (!PyBytes_Check(out.ptr())) {
    raise_codec_error("namespace '" + ns + "': the '" + c.name + "' codec returned " +
                      std::string(py::str(py::type::handle_of(out).attr("__name__"))) +
                      ", not bytes");
  }
  return std::string(PyBytes_AS_STRING(out.ptr()), PyBytes_GET_SIZE(out.ptr()));
}

// The TieredCache codec over Python functions.
struct PyCodec {
  std::shared_ptr<const CodecFns> fns;
  std::string ns;

  std::string encode(const PyValue& v) const {
    if (v.has_encoded) {  // encoded once, by the load or put that produced it
      v.has_encoded = false;
      return std::move(v.encoded);
    }
    if (!python_alive()) throw std::runtime_error("interpreter finalizing");
    py::gil_scoped_acquire gil;
    try {
      return encode_now(*fns, ns, v.obj);
    } catch (py::error_already_set& e) {
      throw std::runtime_error(e.what());  // counted as an encode error; L1 keeps the value
    }
  }

  Result<PyValue> decode(std::string_view bytes) const {
    if (!python_alive()) return Status::shutdown("interpreter finalizing");
    py::gil_scoped_acquire gil;
    try {
      py::object o = fns->loads.get()(py::bytes(bytes.data(), bytes.size()));
      return PyValue(o);
    } catch (py::error_already_set& e) {
      return Status::corruption("namespace '" + ns + "': the '" + fns->name +
                                "' codec cannot decode a stored value: " + e.what());
    }
  }
};

using L1 = Cache<PyValue, PyValueSize>;
using Tiered = TieredCache<PyValue, PyCodec, PyValueSize>;

// ---- Arguments ----------------------------------------------------------------

std::string_view key_view(py::handle k) {
  if (PyUnicode_Check(k.ptr())) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(k.ptr(), &n);
    if (!s) throw py::error_already_set();
    return {s, static_cast<std::size_t>(n)};
  }
  if (PyBytes_Check(k.ptr())) {
    return {PyBytes_AS_STRING(k.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(k.ptr()))};
  }
  throw py::type_error("key: expected str or bytes, got " +
                       std::string(py::str(py::type::handle_of(k).attr("__name__"))));
}

std::vector<std::string> tag_list(py::handle tags) {
  std::vector<std::string> out;
  if (tags.is_none()) return out;
  if (PyUnicode_Check(tags.ptr())) {
    throw py::type_error("tags: expected a list of str, got a str (wrap it in a list)");
  }
  for (py::handle t : tags) {
    if (!PyUnicode_Check(t.ptr())) throw py::type_error("tags: every tag must be a str");
    out.emplace_back(key_view(t));
  }
  return out;
}

PutOptions put_options(py::handle ttl, py::handle tags) {
  PutOptions o;
  if (!ttl.is_none()) {
    o.ttl = to_duration(ttl, "ttl");
    if (*o.ttl <= Duration::zero()) throw py::value_error("ttl: must be > 0 seconds");
  }
  o.tags = tag_list(tags);
  return o;
}

LoadOptions load_options(py::handle wait_timeout) {
  LoadOptions o;
  if (!wait_timeout.is_none()) o.wait_timeout = to_duration(wait_timeout, "timeout");
  return o;
}

// The value (or the exception raised) of a finished read. REQUIRES: the GIL.
py::object value_or_raise(Result<Ref<PyValue>>& r) {
  if (!r.ok()) raise_status(r.status());
  return (*r)->object();
}

// What a Python loader returned: a bare value or a callcache.Loaded.
Loaded<PyValue> to_loaded(py::handle r) {
  if (g_loaded_class && PyObject_IsInstance(r.ptr(), g_loaded_class) == 1) {
    Loaded<PyValue> l{PyValue(r.attr("value")), std::nullopt, tag_list(r.attr("tags"))};
    py::object ttl = r.attr("ttl");
    if (!ttl.is_none()) {
      l.ttl = to_duration(ttl, "Loaded.ttl");
      if (*l.ttl <= Duration::zero()) throw py::value_error("Loaded.ttl: must be > 0 seconds");
    }
    return l;
  }
  return Loaded<PyValue>{PyValue(r), std::nullopt, {}};
}

// ---- Engines alive, for shutdown at interpreter exit ---------------------------

std::mutex& engines_mu = *new std::mutex;
auto& live_engines = *new std::vector<std::weak_ptr<Engine>>;            // guarded by engines_mu
auto& live_registries = *new std::vector<std::weak_ptr<ScopeRegistry>>;  // guarded by engines_mu

void track(const std::shared_ptr<Engine>& e) {
  std::lock_guard lock(engines_mu);
  std::erase_if(live_engines, [](const auto& w) { return w.expired(); });
  live_engines.push_back(e);
}

// ---- The second tier shared by every cache of one configuration ---------------

struct Tier {
  std::unique_ptr<Backend> backend;                               // null: memory only
  std::map<std::string, std::shared_ptr<const CodecFns>> codecs;  // namespaces in L2
};

// The second-tier step of the asynchronous read path for one namespace:
// what TieredCache::get_or_load does around its loader (an L2 read before,
// a write-through after), done by the flight's leader without parking a
// thread. Interim: the library's asynchronous TieredCache replaces it.
struct TierStep {
  std::shared_ptr<Tier> tier;  // keeps the backend alive for late completions
  std::shared_ptr<const CodecFns> codec;
  std::string ns;
  bool shared = false;
  Duration ttl{};
  Duration refresh_ahead{};
  internal::TieredCounters counters;

  Backend& backend() const { return *tier->backend; }
  TenantId l2_tenant(TenantId t) const { return shared ? kSharedTenant : t; }
};

// Where a completed load goes besides L1: nothing, or the second tier.
struct TierWrite {
  std::shared_ptr<TierStep> step;
  TenantId tenant;
  std::string key;
};

// ---- Loading: Completion and Waiter ----------------------------------------------

// Completes one flight from Python (callcache._cache runs the loader as an
// asyncio task and calls set() or fail()). For a namespace with a second
// tier, set() encodes the value and writes it through first. Dropping a
// Completion unused fails the flight for its waiters.
struct Completion {
  LoadCompletion<PyValue> done;
  Duration negative_ttl;
  std::optional<TierWrite> tier;

  bool set(py::handle value) {
    Loaded<PyValue> l = to_loaded(value);
    if (tier) {
      const TierStep& step = *tier->step;
      std::string bytes;
      try {
        bytes = encode_now(*step.codec, step.ns, l.value.obj);
      } catch (py::error_already_set& e) {  // every waiter gets the CodecError
        bool taken = done(current_exception_to_status(e, Duration::zero()));
        maybe_drain();
        return taken;
      }
      Status s;
      {
        ReleaseGil nogil;  // SQLite queues the write; Redis is a round trip
        s = step.backend().put({step.ns, step.l2_tenant(tier->tenant), tier->key}, bytes,
                               l.ttl.value_or(step.ttl));
      }
      (s.ok() ? tier->step->counters.l2_writes : tier->step->counters.l2_write_errors)
          .fetch_add(1, std::memory_order_relaxed);
    }
    bool stored = done(Result<Loaded<PyValue>>(std::move(l)));
    maybe_drain();
    return stored;
  }
  bool fail(py::handle exc) {
    bool taken = done(exception_to_status(exc, negative_ttl));
    maybe_drain();
    return taken;
  }
};

// One asyncio caller's wait for a flight. The flight may finish on any
// thread, before or after Python attaches its future.
class WaiterState {
 public:
  // The flight's outcome (any thread, no library lock held).
  void on_result(Result<Ref<PyValue>> r) {
    std::unique_lock lock(mu_);
    if (!attached_) {
      result_.emplace(std::move(r));
      return;
    }
    lock.unlock();
    post(std::move(r));
  }

  // The outcome if it has arrived (moved out).
  std::optional<Result<Ref<PyValue>>> take() {
    std::lock_guard lock(mu_);
    return std::exchange(result_, std::nullopt);
  }

  // Hands the outcome to `future` (on `loop`, running on this thread).
  // REQUIRES: the GIL.
  void attach(py::handle future, py::handle loop) {
    std::unique_lock lock(mu_);
    if (result_) {
      auto r = std::move(*result_);
      result_.reset();
      lock.unlock();
      deliver_here(future, r);
      return;
    }
    future_ = PyRef(future);
    loop_ = PyRef(loop);
    loop_thread_ = PyThread_get_thread_ident();
    attached_ = true;
  }

 private:
  // REQUIRES: the GIL.
  static void deliver_here(py::handle future, Result<Ref<PyValue>>& r) {
    py::handle deliver(g_deliver);
    if (r.ok()) {
      deliver(future, true, (*r)->object());
    } else {
      deliver(future, false, exception_for(r.status()));
    }
  }

  void post(Result<Ref<PyValue>> r) {
    if (!python_alive()) return;
    py::gil_scoped_acquire gil;
    try {
      if (PyThread_get_thread_ident() == loop_thread_) {
        deliver_here(future_.get(), r);  // the loader's task completed the flight
      } else {
        py::object value = r.ok() ? (*r)->object() : exception_for(r.status());
        loop_.get().attr("call_soon_threadsafe")(py::handle(g_deliver), future_.get(), r.ok(),
                                                 value);
      }
    } catch (py::error_already_set& e) {
      // The waiter's loop is closed: nobody is left to tell.
      e.discard_as_unraisable("callcache: delivering a load result");
    }
    maybe_drain();
  }

  std::mutex mu_;  // guards result_, attached_ (future_, loop_, loop_thread_ are set once, before
                   // attached_)
  std::optional<Result<Ref<PyValue>>> result_;
  bool attached_ = false;
  PyRef future_, loop_;
  unsigned long loop_thread_ = 0;
};

struct Waiter {
  std::shared_ptr<WaiterState> state;
};

// Starts the load of a flight whose leader is an asyncio caller (on the
// caller's thread; for a background refresh, on the reader's). With a second
// tier, reads it first (inline: one SQLite lookup or Redis round trip, like
// the gateway's L1 misses); on an L2 hit the flight completes here, with the
// value's remaining ttl. Otherwise calls callcache._cache._start_load(loader,
// context, completion), which runs the loader as a task on the event loop
// running on this thread.
struct AsyncStarter {
  PyRef loader, context;
  Duration negative_ttl;
  std::shared_ptr<TierStep> step;  // null: L1 only
  TenantId tenant;
  std::string key;

  void operator()(LoadCompletion<PyValue> done) const {
    if (!python_alive()) {
      done(Status::shutdown("the Python interpreter is finalizing"));
      return;
    }
    py::gil_scoped_acquire gil;
    if (step && from_tier(done)) return;
    try {
      std::optional<TierWrite> write;
      if (step) write = TierWrite{step, tenant, key};
      py::handle start(g_start);
      start(loader.get(), context.get(), Completion{done, negative_ttl, write});
    } catch (py::error_already_set& e) {
      done(current_exception_to_status(e, negative_ttl));
    }
    maybe_drain();
  }

  // True if the second tier answered (the flight is completed). REQUIRES: the GIL.
  bool from_tier(const LoadCompletion<PyValue>& done) const {
    internal::TieredCounters& c = step->counters;
    Result<std::optional<StoredValue>> r = Status::internal("unset");
    {
      ReleaseGil nogil;
      r = step->backend().get({step->ns, step->l2_tenant(tenant), key});
    }
    if (!r.ok()) {
      c.l2_errors.fetch_add(1, std::memory_order_relaxed);
    } else if (r->has_value() && (*r)->ttl_left > step->refresh_ahead) {
      // (Inside the refresh-ahead window: a miss, so a refresh really reloads.)
      try {
        py::object o = step->codec->loads.get()(py::bytes((*r)->bytes));
        c.l2_hits.fetch_add(1, std::memory_order_relaxed);
        done(Result<Loaded<PyValue>>(Loaded<PyValue>{PyValue(o), (*r)->ttl_left, {}}));
        maybe_drain();
        return true;
      } catch (py::error_already_set&) {
        c.decode_errors.fetch_add(1, std::memory_order_relaxed);  // reloaded below
      }
    } else {
      c.l2_misses.fetch_add(1, std::memory_order_relaxed);
    }
    c.loads.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
};

// Runs a Python loader on the calling thread (the blocking read path).
struct BlockingLoader {
  PyRef fn;
  std::shared_ptr<const CodecFns> codec;  // set when the value goes to L2
  std::string ns;
  Duration negative_ttl;
  Result<Loaded<PyValue>> operator()() const {
    if (!python_alive()) return Status::shutdown("the Python interpreter is finalizing");
    py::gil_scoped_acquire gil;
    try {
      Loaded<PyValue> l = to_loaded(fn.get()());
      if (codec) {
        // Encode here, with the GIL: a value the second tier cannot take
        // fails the load with a clear error (TieredCache reuses the bytes).
        l.value.encoded = encode_now(*codec, ns, l.value.obj);
        l.value.has_encoded = true;
      }
      return l;
    } catch (py::error_already_set& e) {
      return current_exception_to_status(e, negative_ttl);
    }
  }
};

// ---- CacheCore: one engine and its namespaces --------------------------------------

struct Front {
  std::string name;
  NamespaceId id;
  L1 l1;
  std::unique_ptr<Tiered> tiered;         // when the namespace uses L2: the blocking path
  std::shared_ptr<TierStep> step;         // likewise: the asynchronous path
  std::shared_ptr<const CodecFns> codec;  // likewise
  Duration negative_ttl;
};

class CacheCore {
 public:
  CacheCore(std::shared_ptr<VirtualClock> clock, std::shared_ptr<Tier> tier,
            std::shared_ptr<Engine> engine, std::optional<TaskScope> task, TenantKey key)
      : clock_(std::move(clock)),
        tier_(std::move(tier)),
        engine_(std::move(engine)),
        task_(std::move(task)),
        key_(key) {
    for (const std::string& name : engine_->namespace_names()) {
      auto l1 = L1::open(*engine_, name);
      check(l1.status());
      const NamespacePolicy& policy = engine_->policy(l1->id());
      Front& f = fronts_.emplace_back(
          Front{name, l1->id(), *l1, nullptr, nullptr, nullptr, policy.negative_ttl});
      auto c = tier_->codecs.find(name);
      if (tier_->backend && c != tier_->codecs.end()) {
        f.codec = c->second;
        f.tiered = std::make_unique<Tiered>(f.l1, tier_->backend.get(), PyCodec{f.codec, name});
        f.step = std::make_shared<TierStep>();
        f.step->tier = tier_;
        f.step->codec = f.codec;
        f.step->ns = name;
        f.step->shared = policy.shared;
        f.step->ttl = policy.ttl;
        f.step->refresh_ahead = policy.refresh_ahead;
      }
      by_name_.emplace(name, &f);
    }
    track(engine_);
  }

  ~CacheCore() {
    ReleaseGil nogil;  // dropping a task engine waits for loads completing on other threads
    fronts_.clear();
    task_.reset();
    engine_.reset();
  }

  std::vector<std::string> namespaces() const { return engine_->namespace_names(); }
  bool has_l2(const std::string& ns) { return front(ns).tiered != nullptr; }
  std::string scope() const {
    return task_ ? std::string(scope_name(task_->scope())) : engine_->stats().total.scope;
  }
  bool warm() const { return task_ && task_->warm(); }
  std::uint64_t entries_at_start() const { return task_ ? task_->entries_at_start() : 0; }

  std::uint64_t tenant(py::handle t) const {
    if (t.is_none()) return 0;
    if (PyLong_Check(t.ptr())) {
      unsigned long long v = PyLong_AsUnsignedLongLong(t.ptr());
      if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
        PyErr_Clear();
        throw py::value_error("tenant: an int tenant id must be in [0, 2**64)");
      }
      return v;
    }
    if (PyUnicode_Check(t.ptr()) || PyBytes_Check(t.ptr())) {
      return tenant_from_secret(key_view(t), key_).value;
    }
    throw py::type_error("tenant: expected None, an int id or a str name, got " +
                         std::string(py::str(py::type::handle_of(t).attr("__name__"))));
  }

  py::object get(const std::string& ns, py::handle tenant_arg, py::handle key) {
    Front& f = front(ns);
    auto r = f.l1.get(TenantId{tenant(tenant_arg)}, key_view(key));
    maybe_drain();
    if (!r) return py::none();
    return (*r)->object();
  }

  void put(const std::string& ns, py::handle tenant_arg, py::handle key, py::handle value,
           py::handle ttl, py::handle tags) {
    Front& f = front(ns);
    TenantId t{tenant(tenant_arg)};
    std::string_view k = key_view(key);
    PutOptions o = put_options(ttl, tags);
    PyValue v(value);
    Status s;
    if (f.tiered) {
      v.encoded = encode_now(*f.codec, f.name, value);
      v.has_encoded = true;
      ReleaseGil nogil;  // a write to Redis is a round trip
      s = f.tiered->put(t, k, std::move(v), o);
    } else {
      s = f.l1.put(t, k, std::move(v), o);
    }
    maybe_drain();
    check(s);
  }

  bool erase(const std::string& ns, py::handle tenant_arg, py::handle key) {
    Front& f = front(ns);
    TenantId t{tenant(tenant_arg)};
    std::string_view k = key_view(key);
    bool was;
    if (f.tiered) {
      ReleaseGil nogil;
      was = f.tiered->erase(t, k);
    } else {
      was = f.l1.erase(t, k);
    }
    maybe_drain();
    return was;
  }

  std::uint64_t invalidate_tenant(py::handle tenant_arg) {
    TenantId t{tenant(tenant_arg)};
    std::uint64_t n;
    Status s;
    {
      ReleaseGil nogil;
      n = engine_->invalidate_tenant(t);
      if (tier_->backend && !tier_->codecs.empty()) s = tier_->backend->erase_tenant(t);
    }
    maybe_drain();
    (void)s;  // an L2 outage is counted by the tier and never fails an invalidation of L1
    return n;
  }

  std::uint64_t invalidate_tag(const std::string& tag) {
    std::uint64_t n;
    {
      ReleaseGil nogil;
      n = engine_->invalidate_tag(tag);
    }
    maybe_drain();
    return n;
  }

  void invalidate_namespace(const std::string& ns) {
    Front& f = front(ns);
    Status s;
    {
      ReleaseGil nogil;
      s = f.tiered ? f.tiered->invalidate_namespace() : engine_->invalidate_namespace(ns);
    }
    maybe_drain();
    if (!f.tiered) check(s);  // L2 failures are outages, counted by the tier
  }

  // The asynchronous read path. Returns the value, raises the
  // load's error, or returns a Waiter when the flight is still running.
  py::object load(const std::string& ns, py::handle tenant_arg, py::handle key, py::handle loader,
                  py::handle context, py::handle wait_timeout) {
    Front& f = front(ns);
    TenantId t{tenant(tenant_arg)};
    std::string_view k = key_view(key);
    // A fresh hit costs one lookup and no allocation.
    Freshness fr = Freshness::kMiss;
    if (internal::Entry* e = engine_->lookup_for_load(f.id, t, k, &fr)) {
      if (fr == Freshness::kFresh) {
        engine_->record(f.id, Engine::LoadEvent::kHit);
        return Ref<PyValue>::adopt(e)->object();
      }
      internal::unref(e);
    }
    LoadOptions o = load_options(wait_timeout);
    auto state = std::make_shared<WaiterState>();
    // The GIL stays held: on a miss this caller may start the loader inline.
    f.l1.get_or_load_async(
        t, k,
        AsyncStarter{PyRef(loader), PyRef(context), f.negative_ttl, f.step, t, std::string(k)},
        [state](Result<Ref<PyValue>> r) { state->on_result(std::move(r)); }, o);
    maybe_drain();
    if (auto r = state->take()) return value_or_raise(*r);
    return py::cast(Waiter{state});
  }

  // The blocking read path: through L2 when the namespace has one. Waits
  // with the GIL released.
  py::object load_blocking(const std::string& ns, py::handle tenant_arg, py::handle key,
                           py::handle loader, py::handle wait_timeout) {
    Front& f = front(ns);
    TenantId t{tenant(tenant_arg)};
    std::string k(key_view(key));
    LoadOptions o = load_options(wait_timeout);
    BlockingLoader bl{PyRef(loader), f.codec, f.name, f.negative_ttl};
    std::optional<Result<Ref<PyValue>>> r;
    {
      ReleaseGil nogil;
      if (f.tiered) {
        r.emplace(f.tiered->get_or_load(t, k, std::move(bl), o));
      } else {
        r.emplace(f.l1.get_or_load(t, k, std::move(bl), o));
      }
    }
    maybe_drain();
    return value_or_raise(*r);
  }

  py::dict stats() {
    StatsSnapshot s;
    std::map<std::string, TieredStats> l2;
    {
      ReleaseGil nogil;
      s = engine_->stats();
      for (Front& f : fronts_) {
        if (f.tiered) l2.emplace(f.name, tier_stats(f));
      }
    }
    py::dict out;
    py::dict namespaces;
    for (const NamespaceStats& n : s.namespaces) {
      py::dict d = to_dict(n);
      if (auto it = l2.find(n.name); it != l2.end()) d["l2"] = to_dict(it->second);
      namespaces[py::str(n.name)] = d;
    }
    out["total"] = to_dict(s.total);
    out["namespaces"] = namespaces;
    return out;
  }

  std::string prometheus() {
    ReleaseGil nogil;
    std::string text = engine_->stats().to_prometheus();
    bool header = false;
    for (Front& f : fronts_) {
      if (!f.tiered) continue;
      TieredStats t = tier_stats(f);
      auto line = [&](const char* name, std::uint64_t v) {
        text += std::string("callcache_l2_") + name + "_total{namespace=\"" + f.name + "\"} " +
                std::to_string(v) + "\n";
      };
      if (!header) {
        text += "# HELP callcache_l2_hits_total Second-tier reads and writes by namespace.\n";
        header = true;
      }
      line("hits", t.l2_hits);
      line("misses", t.l2_misses);
      line("errors", t.l2_errors);
      line("writes", t.l2_writes);
      line("write_errors", t.l2_write_errors);
      line("decode_errors", t.decode_errors);
      line("encode_errors", t.encode_errors);
    }
    return text;
  }

  std::uint64_t size() const { return engine_->size(); }

  // Ends a task scope (its engine is dropped); shuts other engines down.
  void end() {
    {
      ReleaseGil nogil;
      if (task_) {
        task_->end();
      } else {
        engine_->shutdown();
      }
    }
    maybe_drain();
  }

 private:
  // Both read paths' second-tier counters.
  static TieredStats tier_stats(Front& f) {
    TieredStats t = f.tiered->stats();
    const internal::TieredCounters& c = f.step->counters;
    t.l2_hits += c.l2_hits.load(std::memory_order_relaxed);
    t.l2_misses += c.l2_misses.load(std::memory_order_relaxed);
    t.l2_errors += c.l2_errors.load(std::memory_order_relaxed);
    t.l2_writes += c.l2_writes.load(std::memory_order_relaxed);
    t.l2_write_errors += c.l2_write_errors.load(std::memory_order_relaxed);
    t.decode_errors += c.decode_errors.load(std::memory_order_relaxed);
    t.loads += c.loads.load(std::memory_order_relaxed);
    return t;
  }

  static py::dict to_dict(const NamespaceStats& n) {
    py::dict d;
    d["scope"] = n.scope;
    d["hits"] = n.hits;
    d["misses"] = n.misses;
    d["hit_ratio"] = n.hit_ratio();
    d["coalesced"] = n.coalesced;
    d["loads"] = n.loads;
    d["load_failures"] = n.load_failures;
    d["load_timeouts"] = n.load_timeouts;
    d["negative_hits"] = n.negative_hits;
    d["stale_hits"] = n.stale_hits;
    d["refreshes"] = n.refreshes;
    d["refresh_failures"] = n.refresh_failures;
    d["inserts"] = n.inserts;
    d["updates"] = n.updates;
    d["rejected_too_large"] = n.rejected_too_large;
    py::dict ev;
    std::uint64_t evicted = 0;
    for (int i = 0; i < static_cast<int>(EvictionCause::kCount_); ++i) {
      ev[eviction_cause_name(static_cast<EvictionCause>(i))] = n.evictions[i];
      if (static_cast<EvictionCause>(i) != EvictionCause::kExpired) evicted += n.evictions[i];
    }
    d["evictions"] = evicted;
    d["evictions_by_cause"] = ev;
    d["expirations"] = n.expirations;
    d["entries"] = n.entries;
    d["bytes"] = n.bytes;
    d["max_entries"] = n.max_entries;
    d["max_bytes"] = n.max_bytes;
    d["utilisation"] = n.utilisation();
    py::dict lat;
    lat["count"] = n.load_latency.count;
    lat["p50_ms"] = n.load_latency.p50_ms;
    lat["p90_ms"] = n.load_latency.p90_ms;
    lat["p99_ms"] = n.load_latency.p99_ms;
    lat["max_ms"] = n.load_latency.max_ms;
    d["load_latency"] = lat;
    return d;
  }
  static py::dict to_dict(const TieredStats& t) {
    py::dict d;
    d["hits"] = t.l2_hits;
    d["misses"] = t.l2_misses;
    d["errors"] = t.l2_errors;
    d["writes"] = t.l2_writes;
    d["write_errors"] = t.l2_write_errors;
    d["decode_errors"] = t.decode_errors;
    d["encode_errors"] = t.encode_errors;
    return d;
  }

  Front& front(const std::string& ns) {
    auto it = by_name_.find(ns);
    if (it == by_name_.end()) {
      std::string names;
      for (const Front& f : fronts_) names += (names.empty() ? "" : ", ") + f.name;
      raise_status(Status::not_found("no namespace '" + ns + "' (configured: " + names + ")"));
    }
    return *it->second;
  }

  // Destroyed in reverse order: fronts, task, engine, then the tier and the
  // clock they use.
  std::shared_ptr<VirtualClock> clock_;
  std::shared_ptr<Tier> tier_;
  std::shared_ptr<Engine> engine_;
  std::optional<TaskScope> task_;
  TenantKey key_;
  std::deque<Front> fronts_;  // stable addresses for by_name_
  std::unordered_map<std::string, Front*> by_name_;
};

// ---- Runtime: one configuration's scopes and second tier ------------------------------

class Runtime {
 public:
  Runtime(const PyConfig& cfg, py::dict codecs, std::shared_ptr<VirtualClock> clock)
      : clock_(std::move(clock)), tier_(std::make_shared<Tier>()), key_(cfg.engine.tenant_key) {
    bool any_l2 = false;
    for (const NamespaceSpec& ns : cfg.engine.namespaces) any_l2 |= cfg.uses_l2(ns.name);
    if (any_l2) {
      for (const NamespaceSpec& ns : cfg.engine.namespaces) {
        if (!cfg.uses_l2(ns.name)) continue;
        py::object c = codecs.contains(ns.name) ? py::object(codecs[py::str(ns.name)]) : py::none();
        if (c.is_none()) throw py::value_error("no codec for namespace '" + ns.name + "'");
        auto t = c.cast<py::tuple>();
        tier_->codecs.emplace(ns.name, std::make_shared<CodecFns>(CodecFns{
                                           t[0].cast<std::string>(), PyRef(t[1]), PyRef(t[2])}));
      }
      Result<std::unique_ptr<Backend>> b = Status::internal("unset");
      {
        ReleaseGil nogil;  // opens a file or a pool
        b = tiers::make_backend(cfg.storage);
      }
      check(b.status());
      tier_->backend = std::move(*b);
    }
    ScopeOptions o;
    o.settings = cfg.scope;
    o.engine = cfg.engine.engine_options();
    if (clock_) {
      o.engine.clock = &clock_->clock;
      o.scheduler = &clock_->scheduler;
    }
    auto reg = ScopeRegistry::create(std::move(o));
    check(reg.status());
    registry_ = std::shared_ptr<ScopeRegistry>(std::move(*reg));
    if (tier_->backend) {
      registry_->on_shutdown([tier = tier_](Engine&) { (void)tier->backend->flush(); });
    }
    std::lock_guard lock(engines_mu);
    std::erase_if(live_registries, [](const auto& w) { return w.expired(); });
    live_registries.push_back(registry_);
  }

  ~Runtime() {
    ReleaseGil nogil;
    process_.reset();
    registry_.reset();
    if (tier_->backend) (void)tier_->backend->flush();
  }

  std::string scope() const { return std::string(scope_name(registry_->scope())); }

  std::shared_ptr<CacheCore> begin_task(const std::string& name) {
    Result<TaskScope> task = Status::internal("unset");
    {
      ReleaseGil nogil;
      task = registry_->begin_task(name);
    }
    check(task.status());
    std::shared_ptr<Engine> engine = task->share();
    return std::make_shared<CacheCore>(clock_, tier_, std::move(engine), std::move(*task), key_);
  }

  // The process-scoped cache, or None in task scope.
  std::shared_ptr<CacheCore> process_cache() {
    if (!process_) {
      std::shared_ptr<Engine> e = registry_->process_engine();
      if (!e) return nullptr;
      process_ = std::make_shared<CacheCore>(clock_, tier_, std::move(e), std::nullopt, key_);
    }
    return process_;
  }

  std::shared_ptr<CacheCore> isolated() {
    auto e = registry_->make_isolated();
    check(e.status());
    return std::make_shared<CacheCore>(clock_, tier_, std::shared_ptr<Engine>(std::move(*e)),
                                       std::nullopt, key_);
  }

  void shutdown() {
    {
      ReleaseGil nogil;
      registry_->shutdown();
      if (tier_->backend) (void)tier_->backend->flush();
    }
    maybe_drain();
  }

  py::dict l2_status() {
    py::dict d;
    if (!tier_->backend) return d;
    BackendStats s;
    std::optional<DegradeStats> ds;
    {
      ReleaseGil nogil;
      s = tier_->backend->stats();
      if (auto* deg = dynamic_cast<DegradingBackend*>(tier_->backend.get()))
        ds = deg->degrade_stats();
    }
    d["backend"] = std::string(tier_->backend->name());
    d["gets"] = s.gets;
    d["hits"] = s.hits;
    d["puts"] = s.puts;
    d["errors"] = s.errors;
    d["pending_writes"] = s.pending_writes;
    if (ds) {
      d["down"] = ds->down;
      d["outages"] = ds->outages;
    }
    return d;
  }

  std::uint64_t tenant_id(py::handle secret) const {
    return tenant_from_secret(key_view(secret), key_).value;
  }

 private:
  std::shared_ptr<VirtualClock> clock_;
  std::shared_ptr<Tier> tier_;
  TenantKey key_;
  std::shared_ptr<ScopeRegistry> registry_;
  std::shared_ptr<CacheCore> process_;
};

}  // namespace

void shutdown_all_engines() {
  std::vector<std::shared_ptr<ScopeRegistry>> regs;
  std::vector<std::shared_ptr<Engine>> engines;
  {
    std::lock_guard lock(engines_mu);
    for (auto& w : live_registries) {
      if (auto r = w.lock()) regs.push_back(std::move(r));
    }
    for (auto& w : live_engines) {
      if (auto e = w.lock()) engines.push_back(std::move(e));
    }
  }
  {
    ReleaseGil nogil;
    for (auto& r : regs) r->shutdown();
    for (auto& e : engines) e->shutdown();
  }
  drain_released();
  ReleaseGil nogil;  // the references above may be the last ones: engines stop their threads
  regs.clear();
  engines.clear();
}

void bind_engine(py::module_& m) {
  m.def("_set_deliver", [](py::object fn) {
    Py_XDECREF(g_deliver);
    g_deliver = fn.inc_ref().ptr();
  });
  m.def("_set_starter", [](py::object fn) {
    Py_XDECREF(g_start);
    g_start = fn.inc_ref().ptr();
  });
  m.def("_set_loaded_class", [](py::object cls) {
    Py_XDECREF(g_loaded_class);
    g_loaded_class = cls.inc_ref().ptr();
  });

  py::class_<PyConfig>(m, "Config")
      .def_static(
          "from_text",
          [](const std::string& text, const std::string& source) {
            auto c = parse_py_config(text, source);
            check(c.status());
            return std::move(*c);
          },
          py::arg("text"), py::arg("source") = "")
      .def_static("from_file",
                  [](const std::string& path) {
                    auto c = load_py_config(path);
                    check(c.status());
                    return std::move(*c);
                  })
      .def_property_readonly("namespaces",
                             [](const PyConfig& c) {
                               std::vector<std::string> names;
                               for (const auto& s : c.engine.namespaces) names.push_back(s.name);
                               return names;
                             })
      .def_property_readonly(
          "scope", [](const PyConfig& c) { return std::string(scope_name(c.scope.scope)); })
      .def_property_readonly("storage",
                             [](const PyConfig& c) -> std::string {
                               if (!c.has_storage) return "none";
                               switch (c.storage.l2) {
                                 case tiers::L2Kind::kSqlite:
                                   return "sqlite";
                                 case tiers::L2Kind::kRedis:
                                   return "redis";
                                 case tiers::L2Kind::kNone:
                                   return "none";
                               }
                               return "none";
                             })
      .def_property_readonly("distributed", [](const PyConfig& c) { return c.distributed; })
      .def_property_readonly("has_rate_limits", [](const PyConfig& c) { return c.has_rate_limits; })
      .def_property_readonly("has_account_locks",
                             [](const PyConfig& c) { return c.has_account_locks; })
      .def("codec_of", &PyConfig::codec_of)
      .def("uses_l2", &PyConfig::uses_l2)
      .def("policy", [](const PyConfig& c, const std::string& ns) {
        for (const auto& s : c.engine.namespaces) {
          if (s.name != ns) continue;
          const NamespacePolicy& p = s.policy;
          py::dict d;
          d["ttl"] = to_seconds(p.ttl);
          d["max_entries"] = p.max_entries;
          d["max_bytes"] = p.max_bytes;
          d["max_entries_per_tenant"] = p.max_entries_per_tenant;
          d["eviction"] = std::string(eviction_policy_name(p.eviction));
          d["negative_ttl"] = to_seconds(p.negative_ttl);
          d["stale_ttl"] = to_seconds(p.stale_ttl);
          d["refresh_ahead"] = to_seconds(p.refresh_ahead);
          d["jitter"] = p.jitter;
          d["load_timeout"] = to_seconds(p.load_timeout);
          d["shared"] = p.shared;
          return d;
        }
        raise_status(Status::not_found("no namespace '" + ns + "'"));
      });

  py::class_<Completion>(m, "Completion")
      .def("set", &Completion::set, py::arg("value"))
      .def("fail", &Completion::fail, py::arg("exception"));

  py::class_<Waiter>(m, "Waiter").def("attach", [](Waiter& w, py::handle future, py::handle loop) {
    w.state->attach(future, loop);
  });

  py::class_<CacheCore, std::shared_ptr<CacheCore>>(m, "CacheCore")
      .def("namespaces", &CacheCore::namespaces)
      .def("has_l2", &CacheCore::has_l2)
      .def_property_readonly("scope", &CacheCore::scope)
      .def_property_readonly("warm", &CacheCore::warm)
      .def_property_readonly("entries_at_start", &CacheCore::entries_at_start)
      .def("tenant", &CacheCore::tenant)
      .def("get", &CacheCore::get)
      .def("put", &CacheCore::put)
      .def("erase", &CacheCore::erase)
      .def("invalidate_tenant", &CacheCore::invalidate_tenant)
      .def("invalidate_tag", &CacheCore::invalidate_tag)
      .def("invalidate_namespace", &CacheCore::invalidate_namespace)
      .def("load", &CacheCore::load)
      .def("load_blocking", &CacheCore::load_blocking)
      .def("stats", &CacheCore::stats)
      .def("prometheus", &CacheCore::prometheus)
      .def("size", &CacheCore::size)
      .def("end", &CacheCore::end);

  py::class_<Runtime, std::shared_ptr<Runtime>>(m, "Runtime")
      .def(py::init<const PyConfig&, py::dict, std::shared_ptr<VirtualClock>>(), py::arg("config"),
           py::arg("codecs"), py::arg("clock") = nullptr)
      .def_property_readonly("scope", &Runtime::scope)
      .def("begin_task", &Runtime::begin_task)
      .def("process_cache", &Runtime::process_cache)
      .def("isolated", &Runtime::isolated)
      .def("shutdown", &Runtime::shutdown)
      .def("l2_status", &Runtime::l2_status)
      .def("tenant_id", &Runtime::tenant_id);
}

}  // namespace callcache::python
