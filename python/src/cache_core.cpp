#include "cache_core.h"

#include <map>
#include <mutex>

namespace callcache::python {

namespace {

constexpr const char* kFrontCapsule = "callcache.front";

// ---- Engines alive, for shutdown at interpreter exit ---------------------------

std::mutex& engines_mu = *new std::mutex;
auto& live_engines = *new std::vector<std::weak_ptr<Engine>>;            // guarded by engines_mu
auto& live_registries = *new std::vector<std::weak_ptr<ScopeRegistry>>;  // guarded by engines_mu

// ---- Statistics as Python dicts --------------------------------------------------

py::dict to_dict(const NamespaceStats& n) {
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

py::dict to_dict(const TieredStats& t) {
  py::dict d;
  d["hits"] = t.l2_hits;
  d["misses"] = t.l2_misses;
  d["errors"] = t.l2_errors;
  d["invalidated"] = t.l2_invalidated;
  d["writes"] = t.l2_writes;
  d["write_errors"] = t.l2_write_errors;
  d["decode_errors"] = t.decode_errors;
  d["encode_errors"] = t.encode_errors;
  // The process-wide coordination counters are in
  // Engine.stats()["l2"]["coordination"].
  put_lease_counts(d, t);
  return d;
}

}  // namespace

void put_lease_counts(py::dict& d, const TieredStats& t) {
  d["leases_taken"] = t.leases_taken;
  d["lease_waits"] = t.lease_waits;
  d["lease_wait_hits"] = t.lease_wait_hits;
}

void track_engine(const std::shared_ptr<Engine>& e) {
  std::lock_guard lock(engines_mu);
  std::erase_if(live_engines, [](const auto& w) { return w.expired(); });
  live_engines.push_back(e);
}

void track_registry(const std::shared_ptr<ScopeRegistry>& r) {
  std::lock_guard lock(engines_mu);
  std::erase_if(live_registries, [](const auto& w) { return w.expired(); });
  live_registries.push_back(r);
}

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

// ---- CacheCore ------------------------------------------------------------------------

std::uint64_t tenant_id(py::handle t, const TenantKey& key) {
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
    return tenant_from_secret(key_view(t), key).value;
  }
  throw py::type_error("tenant: expected None, an int id or a str name, got " +
                       std::string(py::str(py::type::handle_of(t).attr("__name__"))));
}

CacheCore::CacheCore(std::shared_ptr<VirtualClock> clock, std::shared_ptr<Tier> tier,
                     std::shared_ptr<Engine> engine, std::optional<TaskScope> task, TenantKey key,
                     std::shared_ptr<EngineTiers> tiers)
    : clock_(std::move(clock)),
      tier_(std::move(tier)),
      engine_(std::move(engine)),
      task_(std::move(task)),
      key_(key),
      tiers_(tiers ? std::move(tiers) : std::make_shared<EngineTiers>(*engine_, tier_)) {
  for (const std::string& name : engine_->namespace_names()) {
    auto l1 = L1::open(*engine_, name);
    check(l1.status());
    const NamespacePolicy& policy = engine_->policy(l1->id());
    Front& f = fronts_.emplace_back(
        Front{name, l1->id(), *l1, key_, nullptr, nullptr, policy.negative_ttl});
    auto c = tier_->codecs.find(name);
    if (tier_->backend && c != tier_->codecs.end()) f.codec = c->second;
    auto tiered = Tiered::open(f.codec ? tiers_->l2 : tiers_->memory, name, PyCodec{f.codec, name});
    check(tiered.status());
    f.tiered = std::make_unique<Tiered>(std::move(*tiered));
    by_name_.emplace(name, &f);
  }
  track_engine(engine_);
}

CacheCore::~CacheCore() {
  ReleaseGil nogil;  // dropping a task engine waits for loads completing on other threads
  fronts_.clear();
  task_.reset();
  engine_.reset();
}

std::string CacheCore::scope() const {
  return task_ ? std::string(scope_name(task_->scope())) : engine_->stats().total.scope;
}

py::capsule CacheCore::front_handle(const std::string& ns) {
  return py::capsule(&front(ns), kFrontCapsule);
}

py::object CacheCore::get(const std::string& ns, py::handle tenant_arg, py::handle key) {
  Front& f = front(ns);
  auto r = f.l1.get(TenantId{tenant(tenant_arg)}, key_view(key));
  maybe_drain();
  if (!r) return py::none();
  return (*r)->object();
}

void CacheCore::put(const std::string& ns, py::handle tenant_arg, py::handle key, py::handle value,
                    py::handle ttl, py::handle tags) {
  Front& f = front(ns);
  TenantId t{tenant(tenant_arg)};
  std::string_view k = key_view(key);
  PutOptions o = put_options(ttl, tags);
  PyValue v(value);
  Status s;
  if (f.codec) {
    v.encoded = encode_now(*f.codec, f.name, value);
    v.has_encoded = true;
    ReleaseGil nogil;  // a write to Redis is a round trip
    s = f.tiered->put(t, k, std::move(v), o);
  } else {
    s = f.tiered->put(t, k, std::move(v), o);
  }
  maybe_drain();
  check(s);
}

bool CacheCore::erase(const std::string& ns, py::handle tenant_arg, py::handle key) {
  Front& f = front(ns);
  TenantId t{tenant(tenant_arg)};
  std::string_view k = key_view(key);
  bool was;
  if (f.codec) {
    ReleaseGil nogil;  // an L2 delete and an invalidation marker
    was = f.tiered->erase(t, k);
  } else {
    was = f.tiered->erase(t, k);
  }
  maybe_drain();
  return was;
}

std::uint64_t CacheCore::invalidate_tenant(py::handle tenant_arg) {
  TenantId t{tenant(tenant_arg)};
  std::uint64_t n;
  {
    ReleaseGil nogil;
    n = tiers_->l2.invalidate_tenant(t);  // L2 failures are counted, never raised
  }
  maybe_drain();
  return n;
}

std::uint64_t CacheCore::invalidate_tag(const std::string& tag) {
  std::uint64_t n;
  {
    ReleaseGil nogil;
    n = tiers_->l2.invalidate_tag(tag);
  }
  maybe_drain();
  return n;
}

void CacheCore::invalidate_namespace(const std::string& ns) {
  Front& f = front(ns);
  Status s;
  {
    ReleaseGil nogil;
    s = f.tiered->invalidate_namespace();
  }
  maybe_drain();
  check(s);  // L2 failures are counted by the tiers, never returned
}

py::object CacheCore::load(const std::string& ns, py::handle tenant_arg, py::handle key,
                           py::handle loader, py::handle context, py::handle wait_timeout) {
  Front& f = front(ns);
  TenantId t{tenant(tenant_arg)};
  std::string_view k = key_view(key);
  // A fresh hit costs one lookup and no allocation.
  if (auto hit = f.tiered->hit(t, k)) return (*hit)->object();
  LoadOptions o = load_options(wait_timeout);
  auto state = std::make_shared<WaiterState>();
  AsyncStarter starter{PyRef(loader), PyRef(context), f.negative_ttl, f.codec, f.name, tiers_};
  auto deliver = [state](Result<Ref<PyValue>> r) { state->on_result(std::move(r)); };
  if (f.codec) {
    // The leader reads L2 first (a SQLite lookup, a Redis round trip): not
    // with the GIL. The starter and the codec take it when they need it.
    ReleaseGil nogil;
    f.tiered->get_or_load_async(t, k, std::move(starter), std::move(deliver), o);
  } else {
    // Memory only: the GIL stays held (the starter may run inline).
    f.tiered->get_or_load_async(t, k, std::move(starter), std::move(deliver), o);
  }
  maybe_drain();
  if (auto r = state->take()) return value_or_raise(*r);
  return py::cast(Waiter{state});
}

py::object CacheCore::load_blocking(const std::string& ns, py::handle tenant_arg, py::handle key,
                                    py::handle loader, py::handle wait_timeout) {
  Front& f = front(ns);
  TenantId t{tenant(tenant_arg)};
  std::string k(key_view(key));
  LoadOptions o = load_options(wait_timeout);
  BlockingLoader bl{PyRef(loader), f.codec, f.name, f.negative_ttl};
  std::optional<Result<Ref<PyValue>>> r;
  {
    ReleaseGil nogil;
    r.emplace(f.tiered->get_or_load(t, k, std::move(bl), o));
  }
  maybe_drain();
  return value_or_raise(*r);
}

py::dict CacheCore::stats() {
  StatsSnapshot s;
  std::map<std::string, TieredStats> l2;
  {
    ReleaseGil nogil;
    s = engine_->stats();
    for (Front& f : fronts_) {
      if (f.codec) l2.emplace(f.name, f.tiered->stats());
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

std::string CacheCore::prometheus() {
  ReleaseGil nogil;
  std::string text = engine_->stats().to_prometheus();
  bool header = false;
  for (Front& f : fronts_) {
    if (!f.codec) continue;
    TieredStats t = f.tiered->stats();
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
    line("invalidated", t.l2_invalidated);
    line("writes", t.l2_writes);
    line("write_errors", t.l2_write_errors);
    line("decode_errors", t.decode_errors);
    line("encode_errors", t.encode_errors);
    line("leases_taken", t.leases_taken);
    line("lease_waits", t.lease_waits);
    line("lease_wait_hits", t.lease_wait_hits);
  }
  if (tiers_->l2.coordinator()) {
    text += coordination_prometheus(tiers_->l2.stats(), "callcache_coordination_total");
  }
  return text;
}

void CacheCore::end() {
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

Front& CacheCore::front(const std::string& ns) {
  auto it = by_name_.find(ns);
  if (it == by_name_.end()) {
    std::string names;
    for (const Front& f : fronts_) names += (names.empty() ? "" : ", ") + f.name;
    raise_status(Status::not_found("no namespace '" + ns + "' (configured: " + names + ")"));
  }
  return *it->second;
}

namespace {

// ---- Hit paths without pybind11's argument dispatch ------------------------------
//
// get and the fresh-hit case of get_or_load are the calls a bot makes most:
// as METH_FASTCALL functions over a namespace handle they cost one lookup
// and a few pointer checks (pybind11's dispatch costs more than the lookup).

// Runs `fn`, turning C++/pybind11 exceptions into a raised Python error.
template <class F>
PyObject* guarded(F&& fn) noexcept {
  try {
    return fn();
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (py::builtin_exception& e) {
    e.set_error();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

Front* front_of(PyObject* handle) {
  auto* f = static_cast<Front*>(PyCapsule_GetPointer(handle, kFrontCapsule));
  if (!f) throw py::error_already_set();
  return f;
}

// _fast_get(front, tenant, key) -> value or None. Counts a hit or a miss.
PyObject* fast_get(PyObject*, PyObject* const* args, Py_ssize_t n) {
  return guarded([&]() -> PyObject* {
    if (n != 3) throw py::type_error("_fast_get(front, tenant, key)");
    Front* f = front_of(args[0]);
    auto r = f->l1.get(TenantId{tenant_id(args[1], f->key)}, key_view(args[2]));
    maybe_drain();
    if (!r) Py_RETURN_NONE;
    return (*r)->object().release().ptr();
  });
}

// _fast_fresh(front, tenant, key, miss) -> a fresh value (a hit is counted),
// or `miss` (nothing counted: the load that follows counts).
PyObject* fast_fresh(PyObject*, PyObject* const* args, Py_ssize_t n) {
  return guarded([&]() -> PyObject* {
    if (n != 4) throw py::type_error("_fast_fresh(front, tenant, key, miss)");
    Front* f = front_of(args[0]);
    if (auto hit = f->tiered->hit(TenantId{tenant_id(args[1], f->key)}, key_view(args[2]))) {
      return (*hit)->object().release().ptr();
    }
    maybe_drain();
    return Py_NewRef(args[3]);
  });
}

PyMethodDef kFastMethods[] = {
    {"_fast_get", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_get)),
     METH_FASTCALL, "get() without argument dispatch"},
    {"_fast_fresh", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_fresh)),
     METH_FASTCALL, "a fresh hit without argument dispatch"},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

void add_fast_hit_functions(py::module_& m) {
  if (PyModule_AddFunctions(m.ptr(), kFastMethods) != 0) throw py::error_already_set();
}

}  // namespace callcache::python
