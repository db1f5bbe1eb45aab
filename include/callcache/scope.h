// callcache/scope.h — a registry that hands out caches (Engines) by scope.
//
//   task      a fresh engine per task, dropped when the task ends (the seeds'
//             original design: nothing survives from one task to the next);
//   process   one engine shared by consecutive (and concurrent) tasks, its
//             expired entries swept in the background every
//             cleanup_interval, flushed by shutdown(), when the registry is
//             destroyed, and at process exit (std::exit or return from main)
//             if the registry is still alive then;
//   isolated  a private engine that never touches the registry (tools, tests).
//
//   auto reg = callcache::ScopeRegistry::create(options).value();
//   {
//     auto task = reg->begin_task("likebot").value();   // RAII
//     auto peers = callcache::Cache<Peer>::open(task.engine(), "entity").value();
//     if (task.warm()) log("reusing", task.entries_at_start(), "entries");
//     ...
//   }  // task scope: its engine is dropped here; process scope: kept
//   reg->shutdown();
//
// Every engine the registry creates gets the same namespaces and policies,
// with the per-tenant cap (`per_account.max_entries`) applied to every
// namespace in every scope, and is labelled with its scope in statistics
// (NamespaceStats::scope).
//
// Thread-safety: all members may be called concurrently. Ownership: engines
// are shared (TaskScope holds a reference), so a TaskScope or an engine
// reference may outlive the registry; the scheduler the registry owns lives
// until the last engine that uses it is gone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "callcache/clock.h"
#include "callcache/engine.h"
#include "callcache/status.h"

namespace callcache {

enum class CacheScope : std::uint8_t { kTask, kProcess, kIsolated };

// "task", "process" or "isolated".
std::string_view scope_name(CacheScope scope) noexcept;

// The scope parameters read from configuration (src/config/scope_config.h).
struct ScopeSettings {
  // What begin_task() hands out (`cache.scope`). kIsolated is not a valid
  // registry scope: use make_isolated().
  CacheScope scope = CacheScope::kTask;
  // `process.max_size`: max_entries of every namespace of the process-scoped
  // engine (0 = keep each namespace's own max_entries).
  std::uint64_t process_max_entries = 0;
  // `process.cleanup_interval`: how often the process-scoped engine removes
  // expired entries in the background. REQUIRES: > 0.
  Duration cleanup_interval = std::chrono::seconds(60);
  // `per_account.max_entries`: cap on one tenant's entries in each namespace,
  // in every scope (0 = each namespace's own max_entries_per_tenant). A
  // namespace with a smaller cap of its own keeps it.
  std::uint64_t per_tenant_max_entries = 0;
};

struct ScopeOptions {
  ScopeSettings settings;
  // Namespaces, shards, clock and seed of every engine the registry creates.
  // `scheduler` and `sweep_interval` are set by the registry.
  EngineOptions engine;
  // Runs sweeps, load timeouts and refreshes of every engine; nullptr = the
  // registry owns one thread scheduler (on engine.clock) shared by them.
  // REQUIRES: outlives every engine the registry creates.
  Scheduler* scheduler = nullptr;
};

class ScopeRegistry;

// One task's hold on its cache. Move-only RAII: ending the task (destructor
// or end()) drops a task-scoped engine (shut down: entries released, later
// inserts fail with kShutdown) and releases the hold on the process engine.
class TaskScope {
 public:
  TaskScope(TaskScope&&) noexcept;
  TaskScope& operator=(TaskScope&&) noexcept;
  ~TaskScope();

  // REQUIRES: the task has not ended.
  Engine& engine() const noexcept { return *engine_; }
  // A shared reference to the engine (valid after end(); a task-scoped one
  // is then shut down).
  std::shared_ptr<Engine> share() const { return engine_; }
  CacheScope scope() const noexcept { return scope_; }
  const std::string& name() const noexcept { return name_; }
  // Whether the task started with entries already cached (process scope with
  // a warm engine). Always false in task scope.
  bool warm() const noexcept { return entries_at_start_ > 0; }
  std::uint64_t entries_at_start() const noexcept { return entries_at_start_; }

  // Ends the task now. Idempotent.
  void end();
  bool ended() const noexcept { return !engine_; }

 private:
  friend class ScopeRegistry;
  TaskScope(std::shared_ptr<Engine> engine, CacheScope scope, std::string name,
            std::uint64_t entries_at_start, std::shared_ptr<void> registry_state);

  std::shared_ptr<Engine> engine_;
  CacheScope scope_;
  std::string name_;
  std::uint64_t entries_at_start_;
  std::shared_ptr<void> state_;  // registry bookkeeping (tasks running)
};

class ScopeRegistry {
 public:
  // Validates the options by creating the process engine (process scope) or
  // a probe engine (task scope). Errors: kInvalidArgument naming the setting
  // or the namespace and field (see Engine::create).
  static Result<std::unique_ptr<ScopeRegistry>> create(ScopeOptions options);
  // shutdown().
  ~ScopeRegistry();
  ScopeRegistry(const ScopeRegistry&) = delete;
  ScopeRegistry& operator=(const ScopeRegistry&) = delete;

  CacheScope scope() const noexcept;

  // Starts a task: a fresh engine (task scope) or the shared one (process
  // scope). `name` is for logs only. Errors: kShutdown after shutdown().
  Result<TaskScope> begin_task(std::string name = {});

  // A private engine with the registry's namespaces and caps, labelled
  // "isolated", never registered or flushed by the registry. Works after
  // shutdown().
  Result<std::unique_ptr<Engine>> make_isolated() const;

  // The process-scoped engine (null in task scope or after shutdown()).
  std::shared_ptr<Engine> process_engine() const;

  // Runs `hook` on the process engine at shutdown, before its entries are
  // dropped (e.g. to flush a write-behind tier). Hooks run in order added.
  void on_shutdown(std::function<void(Engine&)> hook);

  // Flushes: runs the shutdown hooks, then shuts the process engine down
  // (drops every entry, stops its background sweep) and refuses new tasks.
  // Task-scoped engines still held by running tasks are shut down as well.
  // Idempotent.
  void shutdown();
  bool is_shut_down() const;

  // Tasks begun, tasks that started warm, tasks not yet ended.
  std::uint64_t tasks_started() const;
  std::uint64_t warm_starts() const;
  std::uint64_t tasks_running() const;

  struct State;  // internal

 private:
  explicit ScopeRegistry(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace callcache
