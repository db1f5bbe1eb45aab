#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

#include "callcache/scope.h"
#include "core/flight.h"

namespace callcache {

std::string_view scope_name(CacheScope scope) noexcept {
  switch (scope) {
    case CacheScope::kTask:
      return "task";
    case CacheScope::kProcess:
      return "process";
    case CacheScope::kIsolated:
      return "isolated";
  }
  return "unknown";
}

namespace {

// The options of an engine of `scope`: the registry's namespaces with the
// scope's size and the per-tenant cap applied.
EngineOptions engine_options(const ScopeOptions& options, CacheScope scope, Scheduler* scheduler) {
  EngineOptions o = options.engine;
  o.scheduler = scheduler;
  const ScopeSettings& s = options.settings;
  if (scope == CacheScope::kProcess) o.sweep_interval = s.cleanup_interval;
  for (auto& spec : o.namespaces) {
    NamespacePolicy& p = spec.policy;
    if (scope == CacheScope::kProcess && s.process_max_entries)
      p.max_entries = s.process_max_entries;
    if (s.per_tenant_max_entries &&
        (p.max_entries_per_tenant == 0 || s.per_tenant_max_entries < p.max_entries_per_tenant)) {
      p.max_entries_per_tenant = s.per_tenant_max_entries;
    }
    p.max_entries_per_tenant = std::min(p.max_entries_per_tenant, p.max_entries);
  }
  return o;
}

}  // namespace

struct ScopeRegistry::State {
  ScopeOptions options;
  // The registry's own scheduler (when none was given); engines' deleters
  // hold it too, so it outlives every engine that uses it.
  std::shared_ptr<Scheduler> owned_scheduler;

  mutable std::mutex mu;  // guards everything below
  std::shared_ptr<Engine> process;
  std::vector<std::function<void(Engine&)>> hooks;
  std::vector<std::weak_ptr<Engine>> task_engines;  // task-scoped engines of running tasks
  bool shut_down = false;
  std::uint64_t started = 0;
  std::uint64_t warm = 0;
  std::uint64_t running = 0;

  // Flushes (see ScopeRegistry::shutdown). Idempotent.
  void shutdown();

  Result<std::shared_ptr<Engine>> make_engine(CacheScope scope) const {
    auto created = Engine::create(engine_options(
        options, scope, options.scheduler ? options.scheduler : owned_scheduler.get()));
    if (!created.ok()) return created.status();
    (*created)->set_scope_label(std::string(scope_name(scope)));
    // Retire the engine's loading state before it goes (background refreshes
    // on the shared scheduler must not outlive it), then release the
    // scheduler reference.
    return std::shared_ptr<Engine>(created->release(), [sched = owned_scheduler](Engine* e) {
      internal::retire_flights(*e);
      delete e;
    });
  }
};

// Registries still alive at process exit are flushed by an atexit handler
// (a registry that is destroyed earlier flushes in its destructor).
namespace {
std::mutex exit_mu;  // guards exit_list
auto* exit_list = new std::vector<std::weak_ptr<ScopeRegistry::State>>();

void flush_at_exit() {
  std::vector<std::weak_ptr<ScopeRegistry::State>> list;
  {
    std::lock_guard lock(exit_mu);
    list.swap(*exit_list);
  }
  for (auto& w : list) {
    if (auto st = w.lock()) st->shutdown();
  }
}

void flush_at_exit_too(const std::shared_ptr<ScopeRegistry::State>& st) {
  static const bool registered = [] { return std::atexit(flush_at_exit) == 0; }();
  (void)registered;
  std::lock_guard lock(exit_mu);
  std::erase_if(*exit_list, [](const auto& w) { return w.expired(); });
  exit_list->push_back(st);
}
}  // namespace

// Releases a task's count when its TaskScope ends.
namespace {
struct TaskToken {
  std::function<void()> on_end;
  ~TaskToken() {
    if (on_end) on_end();
  }
};
}  // namespace

TaskScope::TaskScope(std::shared_ptr<Engine> engine, CacheScope scope, std::string name,
                     std::uint64_t entries_at_start, std::shared_ptr<void> registry_state)
    : engine_(std::move(engine)),
      scope_(scope),
      name_(std::move(name)),
      entries_at_start_(entries_at_start),
      state_(std::move(registry_state)) {}

TaskScope::TaskScope(TaskScope&& o) noexcept
    : engine_(std::move(o.engine_)),
      scope_(o.scope_),
      name_(std::move(o.name_)),
      entries_at_start_(o.entries_at_start_),
      state_(std::move(o.state_)) {}

TaskScope& TaskScope::operator=(TaskScope&& o) noexcept {
  if (this != &o) {
    end();
    engine_ = std::move(o.engine_);
    scope_ = o.scope_;
    name_ = std::move(o.name_);
    entries_at_start_ = o.entries_at_start_;
    state_ = std::move(o.state_);
  }
  return *this;
}

TaskScope::~TaskScope() { end(); }

void TaskScope::end() {
  if (!engine_) return;
  if (scope_ == CacheScope::kTask) engine_->shutdown();  // drops its entries now
  engine_.reset();
  state_.reset();
}

Result<std::unique_ptr<ScopeRegistry>> ScopeRegistry::create(ScopeOptions options) {
  const ScopeSettings& s = options.settings;
  if (s.scope == CacheScope::kIsolated) {
    return Status::invalid_argument(
        "cache.scope: a registry hands out 'task' or 'process' caches; isolated caches come "
        "from make_isolated()");
  }
  if (s.cleanup_interval <= Duration::zero()) {
    return Status::invalid_argument("process.cleanup_interval must be > 0");
  }
  auto state = std::make_shared<State>();
  if (!options.scheduler) {
    const Clock& clock = options.engine.clock ? *options.engine.clock : default_clock();
    state->owned_scheduler = make_thread_scheduler(clock);
  }
  state->options = std::move(options);
  // Create the process engine now (or a probe engine) so bad policies fail here.
  auto engine = state->make_engine(state->options.settings.scope);
  if (!engine.ok()) return engine.status();
  if (state->options.settings.scope == CacheScope::kProcess) {
    state->process = std::move(*engine);
  } else {
    (*engine)->shutdown();
  }
  flush_at_exit_too(state);
  return std::unique_ptr<ScopeRegistry>(new ScopeRegistry(std::move(state)));
}

ScopeRegistry::ScopeRegistry(std::shared_ptr<State> state) : state_(std::move(state)) {}

ScopeRegistry::~ScopeRegistry() { shutdown(); }

CacheScope ScopeRegistry::scope() const noexcept { return state_->options.settings.scope; }

Result<TaskScope> ScopeRegistry::begin_task(std::string name) {
  State& st = *state_;
  std::shared_ptr<Engine> engine;
  std::uint64_t entries = 0;
  const CacheScope scope = st.options.settings.scope;
  if (scope == CacheScope::kTask) {
    auto created = st.make_engine(CacheScope::kTask);
    if (!created.ok()) return created.status();
    engine = std::move(*created);
  }
  {
    std::lock_guard lock(st.mu);
    if (st.shut_down) return Status::shutdown("scope registry is shut down");
    if (scope == CacheScope::kProcess) {
      engine = st.process;
      entries = engine->size();
    } else {
      std::erase_if(st.task_engines, [](const std::weak_ptr<Engine>& w) { return w.expired(); });
      st.task_engines.push_back(engine);
    }
    ++st.started;
    if (entries > 0) ++st.warm;
    ++st.running;
  }
  std::weak_ptr<State> weak = state_;
  auto token = std::make_shared<TaskToken>();
  token->on_end = [weak] {
    if (auto s = weak.lock()) {
      std::lock_guard lock(s->mu);
      --s->running;
    }
  };
  return TaskScope(std::move(engine), scope, std::move(name), entries, std::move(token));
}

Result<std::unique_ptr<Engine>> ScopeRegistry::make_isolated() const {
  // A plain unique_ptr must be deletable with `delete`: build it without the
  // registry's deleter, on the caller's scheduler or one of its own.
  // nullptr scheduler: the engine owns one.
  auto created = Engine::create(
      engine_options(state_->options, CacheScope::kIsolated, state_->options.scheduler));
  if (!created.ok()) return created.status();
  (*created)->set_scope_label("isolated");
  return std::move(*created);
}

std::shared_ptr<Engine> ScopeRegistry::process_engine() const {
  std::lock_guard lock(state_->mu);
  return state_->process;
}

void ScopeRegistry::on_shutdown(std::function<void(Engine&)> hook) {
  std::lock_guard lock(state_->mu);
  state_->hooks.push_back(std::move(hook));
}

void ScopeRegistry::State::shutdown() {
  State& st = *this;
  std::shared_ptr<Engine> process;
  std::vector<std::function<void(Engine&)>> hooks;
  std::vector<std::weak_ptr<Engine>> tasks;
  {
    std::lock_guard lock(st.mu);
    if (st.shut_down) return;
    st.shut_down = true;
    process = std::move(st.process);
    hooks.swap(st.hooks);
    tasks.swap(st.task_engines);
  }
  if (process) {
    for (auto& hook : hooks) {
      try {
        hook(*process);
      } catch (...) {  // a failing flush must not stop the others or the shutdown
      }
    }
    process->shutdown();
  }
  for (auto& w : tasks) {
    if (auto e = w.lock()) e->shutdown();
  }
}

void ScopeRegistry::shutdown() { state_->shutdown(); }

bool ScopeRegistry::is_shut_down() const {
  std::lock_guard lock(state_->mu);
  return state_->shut_down;
}

std::uint64_t ScopeRegistry::tasks_started() const {
  std::lock_guard lock(state_->mu);
  return state_->started;
}

std::uint64_t ScopeRegistry::warm_starts() const {
  std::lock_guard lock(state_->mu);
  return state_->warm;
}

std::uint64_t ScopeRegistry::tasks_running() const {
  std::lock_guard lock(state_->mu);
  return state_->running;
}

}  // namespace callcache
