// Internal (Python binding): CacheCore — one engine's namespaces as Python
// sees them (callcache.Cache wraps one), over the library's read path: each
// namespace is a TieredCache<PyValue> (L1 → L2 when it uses the second tier →
// loader, one flight per key, write-through).
//
//   asyncio   CacheCore::load: TieredCache::get_or_load_async. A hit returns
//             at once; a miss joins (or starts) the engine's single flight
//             and hands Python a Waiter. The leader reads L2 inline (one
//             SQLite lookup or Redis round trip, as the gateway does, with
//             the GIL released); on an L2 miss the loader runs as an asyncio
//             task (AsyncStarter, read_path.h). No thread waits for a load.
//   threads   CacheCore::load_blocking: TieredCache::get_or_load with the GIL
//             released.
// Both use the engine's one flight table: a key is loaded once for
// coroutines and threads together. Invalidation goes through the library's
// Tiers, so it reaches L2 and loads in flight too.
//
// Also here: the hit paths that skip pybind11's argument dispatch, and the
// registry of live engines shut down at interpreter exit.
//
// Thread-safety: a CacheCore may be used from any Python thread (the engine
// is thread-safe); its methods REQUIRE the GIL. GIL rules: support.h.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "bindings.h"
#include "callcache/scope.h"
#include "read_path.h"

namespace callcache::python {

// One namespace of a CacheCore. Lives as long as its CacheCore.
struct Front {
  std::string name;
  NamespaceId id;
  L1 l1;
  TenantKey key;                          // hashes str tenants
  std::unique_ptr<Tiered> tiered;         // the read path, over the engine's Tiers
  std::shared_ptr<const CodecFns> codec;  // set when the namespace uses L2
  Duration negative_ttl;
};

// Sets the lease counters of `t` in `d` (processes sharing Redis,
// storage.redis_coordination, process scope).
void put_lease_counts(py::dict& d, const TieredStats& t);

// A tenant argument: None (0), an int id, or a str/bytes name hashed with
// `key`. TypeError/ValueError otherwise.
std::uint64_t tenant_id(py::handle t, const TenantKey& key);

class CacheCore {
 public:
  // `task`: the task scope this cache belongs to (none: process or isolated).
  // `tiers`: the engine's Tiers when another CacheCore shares them (the
  // process engine's, with the coordinator); null = its own.
  CacheCore(std::shared_ptr<VirtualClock> clock, std::shared_ptr<Tier> tier,
            std::shared_ptr<Engine> engine, std::optional<TaskScope> task, TenantKey key,
            std::shared_ptr<EngineTiers> tiers = nullptr);
  ~CacheCore();  // releases the GIL: dropping a task engine waits for its loads

  std::vector<std::string> namespaces() const { return engine_->namespace_names(); }
  bool has_l2(const std::string& ns) { return front(ns).codec != nullptr; }
  std::string scope() const;
  bool warm() const { return task_ && task_->warm(); }
  std::uint64_t entries_at_start() const { return task_ ? task_->entries_at_start() : 0; }
  std::uint64_t tenant(py::handle t) const { return tenant_id(t, key_); }

  // A handle on one namespace for the hit paths (add_fast_hit_functions;
  // valid while this CacheCore lives: the Python Cache holds both).
  py::capsule front_handle(const std::string& ns);

  py::object get(const std::string& ns, py::handle tenant, py::handle key);
  void put(const std::string& ns, py::handle tenant, py::handle key, py::handle value,
           py::handle ttl, py::handle tags);
  bool erase(const std::string& ns, py::handle tenant, py::handle key);
  std::uint64_t invalidate_tenant(py::handle tenant);
  std::uint64_t invalidate_tag(const std::string& tag);
  void invalidate_namespace(const std::string& ns);

  // The asynchronous read path. Returns the value, raises the load's error,
  // or returns a Waiter when the flight is still running.
  py::object load(const std::string& ns, py::handle tenant, py::handle key, py::handle loader,
                  py::handle context, py::handle wait_timeout);
  // The blocking read path: through L2 when the namespace has one. Waits
  // with the GIL released.
  py::object load_blocking(const std::string& ns, py::handle tenant, py::handle key,
                           py::handle loader, py::handle wait_timeout);

  py::dict stats();
  std::string prometheus();
  std::uint64_t size() const { return engine_->size(); }
  // Ends a task scope (its engine is dropped); shuts other engines down.
  void end();

 private:
  Front& front(const std::string& ns);

  // Destroyed in reverse order: fronts, tiers (unless a load in flight
  // still holds them), task, engine, then the tier and the clock they use.
  std::shared_ptr<VirtualClock> clock_;
  std::shared_ptr<Tier> tier_;
  std::shared_ptr<Engine> engine_;
  std::optional<TaskScope> task_;
  TenantKey key_;
  std::shared_ptr<EngineTiers> tiers_;
  std::deque<Front> fronts_;  // stable addresses for by_name_
  std::unordered_map<std::string, Front*> by_name_;
};

// Registers _fast_get and _fast_fresh (METH_FASTCALL over a front handle):
// get() and the fresh-hit case of get_or_load, the calls a bot makes most,
// without pybind11's argument dispatch (which costs more than the lookup).
void add_fast_hit_functions(py::module_& m);

// Engines and registries alive, for shutdown_all_engines (bindings.h). Any
// thread.
void track_engine(const std::shared_ptr<Engine>& e);
void track_registry(const std::shared_ptr<ScopeRegistry>& r);

}  // namespace callcache::python
