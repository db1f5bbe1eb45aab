// The engine side of the extension: configuration and Runtime — one
// configuration's scopes (callcache/scope.h) and second tier — and the
// Python classes over them and over CacheCore (cache_core.h: one engine's
// namespaces and the read path), Completion and Waiter (read_path.h).
#include <pybind11/stl.h>

#include <optional>

#include "bindings.h"
#include "cache_core.h"
#include "py_config.h"

namespace callcache::python {

namespace {

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
      Result<std::shared_ptr<TierCoordinator>> co = std::shared_ptr<TierCoordinator>();
      {
        ReleaseGil nogil;  // opens a file or a pool
        b = tiers::make_backend(cfg.storage);
        // Several processes on one Redis (workers of one bot, several bots):
        // keep their L1s coherent and load each key once among them.
        if (b.ok() && cfg.storage.redis_coordination) co = tiers::make_coordinator(cfg.storage);
      }
      check(b.status());
      check(co.status());
      tier_->backend = std::move(*b);
      tier_->coordinator = std::move(*co);
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
    track_registry(registry_);
  }

  ~Runtime() {
    ReleaseGil nogil;
    stop_coordinator();
    process_.reset();
    process_tiers_.reset();
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
    std::shared_ptr<EngineTiers> tiers = tiers_for(engine);
    return std::make_shared<CacheCore>(clock_, tier_, std::move(engine), std::move(*task), key_,
                                       std::move(tiers));
  }

  // The process-scoped cache, or None in task scope.
  std::shared_ptr<CacheCore> process_cache() {
    if (!process_) {
      std::shared_ptr<Engine> e = registry_->process_engine();
      if (!e) return nullptr;
      std::shared_ptr<EngineTiers> tiers = tiers_for(e);
      process_ = std::make_shared<CacheCore>(clock_, tier_, std::move(e), std::nullopt, key_,
                                             std::move(tiers));
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
      stop_coordinator();
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
    if (tier_->coordinator) {
      d["subscribed"] = tier_->coordinator->subscribed();
      TieredStats t;
      if (process_tiers_) {
        ReleaseGil nogil;
        t = process_tiers_->l2.stats();
      }
      py::dict c;
      c["remote_invalidations"] = t.remote_invalidations;
      c["l1_flushes"] = t.l1_flushes;
      put_lease_counts(c, t);
      d["coordination"] = c;
    }
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
  // The Tiers a CacheCore over `e` uses: with a coordinator, the process
  // engine's shared ones (the coordinator serves one Tiers); null = its own.
  // Task and isolated engines live for a task or a test: they rely on the
  // second tier's invalidation markers and their own L1's short life.
  std::shared_ptr<EngineTiers> tiers_for(const std::shared_ptr<Engine>& e) {
    if (!tier_->coordinator || e != registry_->process_engine()) return nullptr;
    if (!process_tiers_) process_tiers_ = std::make_shared<EngineTiers>(*e, tier_, true);
    return process_tiers_;
  }

  // No coordinator handler may touch the process engine once it shuts down.
  // Any thread, without the GIL.
  void stop_coordinator() {
    if (tier_->coordinator) tier_->coordinator->stop();
  }

  std::shared_ptr<VirtualClock> clock_;
  std::shared_ptr<Tier> tier_;
  TenantKey key_;
  std::shared_ptr<ScopeRegistry> registry_;
  std::shared_ptr<EngineTiers> process_tiers_;  // with the coordinator (tiers_for)
  std::shared_ptr<CacheCore> process_;
};

}  // namespace

void bind_engine(py::module_& m) {
  add_fast_hit_functions(m);
  m.def("_set_deliver", [](py::handle fn) { set_deliver_hook(fn); });
  m.def("_set_starter", [](py::handle fn) { set_start_hook(fn); });
  m.def("_set_loaded_class", [](py::handle cls) { set_loaded_class(cls); });

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
      .def("front_handle", &CacheCore::front_handle)
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
