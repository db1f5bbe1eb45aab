#include "callcache/engine.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "callcache/internal/engine_access.h"
#include "engine_impl.h"
#include "entry.h"
#include "hash.h"

namespace callcache {

using internal::EngineAccess;
using internal::EngineImpl;
using internal::Entry;
using internal::NamespaceState;

namespace {

constexpr std::uint64_t kMinEntriesPerShard = 32;
constexpr std::uint64_t kMinBytesPerShard = 1 << 20;

std::uint64_t pick_shards(const EngineOptions& o, const NamespacePolicy& p) {
  // A namespace with a per-tenant cap keeps each tenant in one shard (see
  // NamespaceState::shard_by_tenant), so a shard must hold at least one
  // tenant at its cap: with max_entries / shards below the cap, a tenant
  // could never reach its cap, and one tenant filling its shard would evict
  // the other tenants pinned there.
  const std::uint64_t tenant_bound =
      p.max_entries_per_tenant && !p.shared
          ? std::bit_floor(std::max<std::uint64_t>(1, p.max_entries / p.max_entries_per_tenant))
          : std::numeric_limits<std::uint64_t>::max();
  if (o.shards) return std::min(std::bit_floor(std::max<std::uint64_t>(o.shards, 1)), tenant_bound);
  std::uint64_t hw = std::max(1u, std::thread::hardware_concurrency());
  // Enough shards that concurrent readers rarely meet on one lock, even with
  // a skewed key popularity.
  std::uint64_t n = std::bit_ceil(std::max<std::uint64_t>(hw * 16, 64));
  n = std::min<std::uint64_t>(n, 256);
  n = std::min(n, std::max<std::uint64_t>(1, p.max_entries / kMinEntriesPerShard));
  if (p.max_bytes) n = std::min(n, std::max<std::uint64_t>(1, p.max_bytes / kMinBytesPerShard));
  return std::min(std::bit_floor(std::max<std::uint64_t>(n, 1)), tenant_bound);
}

// Splits `total` over n shards exactly: the first total % n get one more.
std::uint64_t share(std::uint64_t total, std::uint64_t n, std::uint64_t i) {
  return total / n + (i < total % n ? 1 : 0);
}

}  // namespace

namespace internal {

Scheduler& EngineImpl::get_scheduler() {
  std::call_once(scheduler_once, [this] {
    if (options.scheduler) {
      scheduler = options.scheduler;
    } else {
      own_scheduler = make_thread_scheduler(*clock);
      scheduler = own_scheduler.get();
    }
  });
  return *scheduler;
}

void EngineImpl::schedule_sweep() {
  std::lock_guard lock(sweep_mu);
  if (sweep_stop) return;
  sweep_task = get_scheduler().schedule_after(options.sweep_interval, [this] {
    {
      std::lock_guard lock(sweep_mu);
      if (sweep_stop) return;
      sweep_running = true;
    }
    sweep();
    {
      std::lock_guard lock(sweep_mu);
      sweep_running = false;
    }
    sweep_cv.notify_all();
    schedule_sweep();
  });
}

void EngineImpl::stop_sweeper() {
  std::unique_lock lock(sweep_mu);
  sweep_stop = true;
  if (sweep_task && scheduler) scheduler->cancel(sweep_task);
  sweep_cv.wait(lock, [this] { return !sweep_running; });
}

std::uint64_t EngineImpl::sweep() {
  std::uint64_t removed = 0;
  for (auto& nsp : namespaces) {
    NamespaceState& ns = *nsp;
    const std::uint32_t version = ns.version.load(std::memory_order_acquire);
    const TimePoint now = clock->now();
    const Duration stale = ns.policy.stale_ttl;
    bool reclaim_versions;
    {
      std::lock_guard lock(label_mu);  // cheap, uncontended: protects swept_version
      reclaim_versions = ns.swept_version != version;
      ns.swept_version = version;
    }
    for (auto& shard : ns.shards) {
      if (reclaim_versions) {
        removed += shard->remove_if(
            [version](const Entry& e) {
              return e.version() != static_cast<std::uint16_t>(version);
            },
            EvictionCause::kExplicit);
      }
      removed += shard->remove_if(
          [now, stale](const Entry& e) {
            return e.negative() ? now >= e.expire() : now >= e.expire() + stale;
          },
          EvictionCause::kExpired);
      shard->reclaim();
    }
  }
  return removed;
}

}  // namespace internal

// ---- Engine -----------------------------------------------------------------

Engine::Engine(std::unique_ptr<EngineImpl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  impl_->flights->close();  // waits for running loading work, drops queued work
  impl_->stop_sweeper();
  impl_->own_scheduler.reset();  // joins its thread; pending tasks are dropped
}

Result<std::unique_ptr<Engine>> Engine::create(EngineOptions options) {
  auto impl = std::make_unique<EngineImpl>();
  if (options.namespaces.empty()) return Status::invalid_argument("no namespaces configured");
  impl->clock = options.clock ? options.clock : &default_clock();
  for (const auto& spec : options.namespaces) {
    if (Status s = validate(spec.name, spec.policy); !s.ok()) return s;
    if (impl->by_name.count(spec.name)) {
      return Status::invalid_argument("namespace '" + spec.name + "' is configured twice");
    }
    auto ns = std::make_unique<NamespaceState>();
    ns->name = spec.name;
    ns->policy = spec.policy;
    ns->shard_by_tenant = spec.policy.max_entries_per_tenant > 0 && !spec.policy.shared;
    const std::uint64_t n = pick_shards(options, spec.policy);
    ns->shard_mask = n - 1;
    // Shards rehash entries with the same seed the engine hashes lookups with.
    const std::uint64_t seed = options.seed;
    if (spec.policy.eviction == EvictionPolicy::kAdaptive) {
      ns->adaptive = std::make_unique<internal::AdaptiveController>(spec.policy.max_entries);
    }
    const internal::ShardContext context{&ns->lookups, ns->adaptive.get()};
    for (std::uint64_t i = 0; i < n; ++i) {
      internal::ShardLimits limits;
      limits.max_entries = std::max<std::uint64_t>(1, share(spec.policy.max_entries, n, i));
      limits.max_bytes = spec.policy.max_bytes
                             ? std::max<std::uint64_t>(1, share(spec.policy.max_bytes, n, i))
                             : 0;
      limits.max_per_tenant = spec.policy.shared ? 0 : spec.policy.max_entries_per_tenant;
      ns->shards.push_back(internal::make_shard(spec.policy.eviction, limits, seed, context));
    }
    ns->byte_budget = spec.policy.max_bytes / n;
    impl->by_name.emplace(spec.name, static_cast<std::uint32_t>(impl->namespaces.size()));
    impl->namespaces.push_back(std::move(ns));
  }
  impl->options = std::move(options);
  std::unique_ptr<Engine> engine(new Engine(std::move(impl)));
  if (engine->impl_->options.sweep_interval > Duration::zero()) engine->impl_->schedule_sweep();
  return engine;
}

const Clock& Engine::clock() const noexcept { return *impl_->clock; }
Scheduler& Engine::scheduler() noexcept { return impl_->get_scheduler(); }

Result<NamespaceId> Engine::find(std::string_view ns) const {
  auto it = impl_->by_name.find(std::string(ns));
  if (it == impl_->by_name.end()) {
    std::string known;
    for (const auto& n : impl_->namespaces) known += (known.empty() ? "" : ", ") + n->name;
    return Status::not_found("unknown namespace '" + std::string(ns) + "' (configured: " + known +
                             ")");
  }
  return NamespaceId{it->second};
}

std::vector<std::string> Engine::namespace_names() const {
  std::vector<std::string> out;
  for (const auto& n : impl_->namespaces) out.push_back(n->name);
  return out;
}

const NamespacePolicy& Engine::policy(NamespaceId id) const {
  return impl_->namespaces[id.index]->policy;
}
const std::string& Engine::name(NamespaceId id) const { return impl_->namespaces[id.index]->name; }

// ---- The typed fronts' calls (callcache/internal/engine_access.h) ----------

Result<NamespaceId> internal::EngineAccess::bind(Engine& engine, std::string_view ns,
                                                 const internal::ValueOps* ops) {
  auto id = engine.find(ns);
  if (!id.ok()) return id;
  NamespaceState& state = *engine.impl_->namespaces[id->index];
  std::lock_guard lock(state.bind_mu);
  const internal::ValueOps* bound = state.ops.load(std::memory_order_acquire);
  if (!bound) {
    auto type = internal::register_type(ops);
    if (!type.ok()) return type.status();
    state.type_index = *type;
    state.ops.store(ops, std::memory_order_release);
  } else if (bound->type_tag != ops->type_tag) {
    return Status::invalid_argument("namespace '" + state.name + "' holds values of type " +
                                    bound->type_name + ", not " + ops->type_name);
  }
  return id;
}

namespace {

// The lookups' shared part: the key's shard in namespace `id`, and its find().
Entry* find_key(EngineImpl& impl, NamespaceId id, TenantId tenant, std::string_view key,
                bool count, internal::Freshness* freshness, bool pin_slot,
                internal::InPlaceCopy* copy = nullptr) {
  NamespaceState& ns = *impl.namespaces[id.index];
  tenant = ns.effective(tenant);
  const std::uint64_t h = internal::hash_key(impl.options.seed, tenant.value, key);
  return ns.shard_for(h, tenant).find(h, tenant, key, impl.context(ns), count, freshness,
                                      pin_slot, copy);
}

}  // namespace

Entry* internal::EngineAccess::lookup(Engine& engine, NamespaceId id, TenantId tenant,
                                      std::string_view key) {
  return find_key(*engine.impl_, id, tenant, key, /*count=*/true, nullptr, /*pin_slot=*/true);
}

bool internal::EngineAccess::lookup_copy(Engine& engine, NamespaceId id, TenantId tenant,
                                         std::string_view key, std::uint64_t* word,
                                         TimePoint* expires) {
  internal::InPlaceCopy copy{word, expires};
  return find_key(*engine.impl_, id, tenant, key, /*count=*/true, nullptr, /*pin_slot=*/false,
                  &copy) != nullptr;
}

Entry* internal::EngineAccess::lookup_for_load(Engine& engine, NamespaceId id, TenantId tenant,
                                               std::string_view key,
                                               internal::Freshness* freshness) {
  return find_key(*engine.impl_, id, tenant, key, /*count=*/false, freshness,
                  /*pin_slot=*/false);
}

namespace {

Status key_error(std::string_view key) {
  if (key.empty()) return Status::invalid_argument("empty key");
  if (key.size() > internal::kMaxKeyLength) {
    return Status::invalid_argument("key of " + std::to_string(key.size()) + " bytes exceeds the " +
                                    std::to_string(internal::kMaxKeyLength) + "-byte limit");
  }
  return Status();
}

// Whether `key` is acceptable; key_error(key) says why not.
bool key_ok(std::string_view key) noexcept {
  return !key.empty() && key.size() <= internal::kMaxKeyLength;
}

// now + ttl scaled by a jitter factor in [1 - j, 1 + j] drawn from the key's
// hash (deterministic for a given seed), saturating instead of overflowing.
TimePoint expiry(TimePoint now, Duration ttl, double jitter, std::uint64_t hash) {
  const Duration room = (TimePoint::max() - now) / 2;
  if (jitter == 0) return now + std::min(ttl, room);
  double scale = 1.0;
  if (jitter > 0) {
    double u = static_cast<double>(internal::mix64(hash, 0x2545f4914f6cdd1dULL) >> 11) * 0x1.0p-53;
    scale = 1.0 + jitter * (2.0 * u - 1.0);
  }
  double ns = static_cast<double>(ttl.count()) * scale;
  if (ns >= static_cast<double>(room.count())) return now + room;
  return now + Duration(static_cast<std::int64_t>(ns));
}

}  // namespace

Status internal::EngineAccess::insert(Engine& engine, NamespaceId id, TenantId tenant,
                                      std::string_view key, void* value, std::size_t charge,
                                      const PutOptions& options,
                                      std::optional<std::uint64_t> if_epoch, Entry** out) {
  EngineImpl* impl_ = engine.impl_.get();
  if (out) *out = nullptr;
  if (impl_->shut_down.load(std::memory_order_acquire))
    return Status::shutdown("cache is shut down");
  if (!key_ok(key)) return key_error(key);
  NamespaceState& ns = *impl_->namespaces[id.index];
  const internal::ValueOps* ops = ns.ops.load(std::memory_order_acquire);
  if (!ops) return Status::internal("namespace '" + ns.name + "' has no bound value type");
  if (charge > std::numeric_limits<std::uint32_t>::max() ||
      (ns.policy.max_bytes && charge > ns.policy.max_bytes)) {
    ns.shards[0]->counters.rejected.fetch_add(1, std::memory_order_relaxed);
    return Status::too_large("value of " + std::to_string(charge) +
                             " bytes exceeds max_bytes of namespace '" + ns.name + "'");
  }
  if (if_epoch && ns.epoch.load(std::memory_order_seq_cst) != *if_epoch) {
    return Status::cancelled("an invalidation ran while the value was being loaded");
  }
  if (ns.byte_budget && charge > ns.byte_budget) {
    // Checked before the value is moved into an entry: on error the caller
    // still owns it (the loading layer hands it to waiters uncached).
    ns.shards[0]->counters.rejected.fetch_add(1, std::memory_order_relaxed);
    return Status::too_large(
        "value of " + std::to_string(charge) + " bytes exceeds the per-shard share (" +
        std::to_string(ns.byte_budget) + " bytes) of max_bytes of namespace '" + ns.name + "'");
  }
  Duration ttl = options.ttl.value_or(ns.policy.ttl);
  if (ttl <= Duration::zero()) return Status::invalid_argument("ttl must be > 0");
  tenant = ns.effective(tenant);
  const std::uint64_t h = internal::hash_key(impl_->options.seed, tenant.value, key);
  const TimePoint now = impl_->clock->now();
  const TimePoint expire = expiry(now, ttl, ns.policy.jitter, h);
  const auto version = static_cast<std::uint16_t>(ns.version.load(std::memory_order_acquire));
  if (ops->in_place_bytes && options.tags.empty() && !if_epoch && !out) {
    // A put of a small trivially copyable value over an untagged one:
    // rewritten in place when the shard can (docs/architecture.md).
    std::uint64_t word = 0;
    std::memcpy(&word, value, ops->in_place_bytes);
    if (ns.shard_for(h, tenant).update_in_place(h, tenant, key, word,
                                                static_cast<std::uint32_t>(charge), expire,
                                                version)) {
      return Status();
    }
  }
  Entry* e = Entry::create(ops, ns.type_index, value, nullptr, tenant, key,
                           static_cast<std::uint32_t>(charge), expire, version);
  // Without `out` the shard adopts the reference create() gave us.
  Status s = ns.shard_for(h, tenant).insert(h, e, options.tags, /*adopt=*/out == nullptr,
                                            if_epoch ? &ns.epoch : nullptr, if_epoch.value_or(0));
  if (!s.ok()) {
    if (s.code() == Code::kCancelled && out) {
      *out = e;  // the value lives on in this unstored, pinned entry
    } else {
      e->unref();
    }
    return Status(s.code(), "namespace '" + ns.name + "': " + s.message());
  }
  if (out) *out = e;
  return Status();
}

Status internal::EngineAccess::insert_negative(Engine& engine, NamespaceId id, TenantId tenant,
                                               std::string_view key, Status error) {
  EngineImpl* impl_ = engine.impl_.get();
  NamespaceState& ns = *impl_->namespaces[id.index];
  if (ns.policy.negative_ttl <= Duration::zero()) return Status();
  if (impl_->shut_down.load(std::memory_order_acquire))
    return Status::shutdown("cache is shut down");
  if (!key_ok(key)) return key_error(key);
  tenant = ns.effective(tenant);
  const std::uint64_t h = internal::hash_key(impl_->options.seed, tenant.value, key);
  Entry* e = Entry::create(nullptr, 0, nullptr, &error, tenant, key, 0,
                           expiry(impl_->clock->now(), ns.policy.negative_ttl, 0, h),
                           static_cast<std::uint16_t>(ns.version.load(std::memory_order_acquire)));
  Status s = ns.shard_for(h, tenant).insert(h, e, {}, /*adopt=*/true);
  if (!s.ok()) e->unref();
  return s;
}

Entry* internal::EngineAccess::make_unstored(Engine& engine, NamespaceId id, void* value,
                                             std::size_t charge) {
  EngineImpl* impl_ = engine.impl_.get();
  NamespaceState& ns = *impl_->namespaces[id.index];
  const internal::ValueOps* ops = ns.ops.load(std::memory_order_acquire);
  return Entry::create(ops, ns.type_index, value, nullptr, TenantId{}, {},
                       static_cast<std::uint32_t>(std::min<std::size_t>(charge, UINT32_MAX)),
                       impl_->clock->now(), 0);
}

internal::FlightTable& internal::EngineAccess::flights(Engine& engine) noexcept {
  return *engine.impl_->flights;
}

std::uint64_t internal::EngineAccess::epoch(const Engine& engine, NamespaceId id) noexcept {
  return engine.impl_->namespaces[id.index]->epoch.load(std::memory_order_seq_cst);
}

internal::AdaptiveController* internal::EngineAccess::adaptive(Engine& engine,
                                                               NamespaceId id) noexcept {
  return engine.impl_->namespaces[id.index]->adaptive.get();
}

std::size_t internal::EngineAccess::policy_memory(Engine& engine, NamespaceId id) {
  NamespaceState& ns = *engine.impl_->namespaces[id.index];
  std::size_t bytes = ns.adaptive ? ns.adaptive->memory() : 0;
  for (auto& shard : ns.shards) bytes += shard->strategy_memory();
  return bytes;
}

bool internal::EngineAccess::erase(Engine& engine, NamespaceId id, TenantId tenant,
                                   std::string_view key) {
  EngineImpl* impl_ = engine.impl_.get();
  NamespaceState& ns = *impl_->namespaces[id.index];
  ns.epoch.fetch_add(1, std::memory_order_seq_cst);
  tenant = ns.effective(tenant);
  const std::uint64_t h = internal::hash_key(impl_->options.seed, tenant.value, key);
  return ns.shard_for(h, tenant).erase(h, tenant, key);
}

Status Engine::invalidate(std::string_view ns, TenantId tenant, std::string_view key) {
  auto id = find(ns);
  if (!id.ok()) return id.status();
  EngineAccess::erase(*this, *id, tenant, key);
  return Status();
}

Status Engine::invalidate_namespace(std::string_view ns) {
  auto id = find(ns);
  if (!id.ok()) return id.status();
  NamespaceState& state = *impl_->namespaces[id->index];
  state.epoch.fetch_add(1, std::memory_order_seq_cst);
  const std::uint32_t v = state.version.fetch_add(1, std::memory_order_acq_rel) + 1;
  // Entries carry 16 bits of the version. Every 32,768 bumps, reclaim old
  // entries now, so no entry is ever 65,536 versions old and mistaken for new.
  if ((v & 0x7fff) == 0) {
    for (auto& shard : state.shards) {
      shard->remove_if([v](const Entry& e) { return e.version() != static_cast<std::uint16_t>(v); },
                       EvictionCause::kExplicit);
    }
  }
  return Status();
}

std::uint64_t Engine::invalidate_tenant(TenantId tenant) {
  std::uint64_t n = 0;
  for (auto& ns : impl_->namespaces) ns->epoch.fetch_add(1, std::memory_order_seq_cst);
  for (auto& ns : impl_->namespaces) {
    for (auto& shard : ns->shards) {
      n += shard->remove_if([tenant](const Entry& e) { return e.tenant() == tenant; },
                            EvictionCause::kExplicit);
    }
  }
  return n;
}

std::uint64_t Engine::invalidate_tag(std::string_view tag) {
  std::uint64_t n = 0;
  const std::string t(tag);
  for (auto& ns : impl_->namespaces) ns->epoch.fetch_add(1, std::memory_order_seq_cst);
  for (auto& ns : impl_->namespaces) {
    for (auto& shard : ns->shards) n += shard->remove_tag(t);
  }
  return n;
}

std::uint64_t Engine::clear_expired() {
  std::lock_guard lock(impl_->sweep_mu);
  return impl_->sweep();
}

std::uint64_t Engine::size() const {
  std::uint64_t n = 0;
  for (auto& ns : impl_->namespaces) {
    for (auto& shard : ns->shards) n += shard->entries();
  }
  return n;
}

void Engine::set_scope_label(std::string label) {
  std::lock_guard lock(impl_->label_mu);
  impl_->scope_label = std::move(label);
}

void Engine::shutdown() {
  if (impl_->shut_down.exchange(true)) return;
  impl_->stop_sweeper();
  for (auto& ns : impl_->namespaces) {
    ns->epoch.fetch_add(1, std::memory_order_seq_cst);
    for (auto& shard : ns->shards) {
      shard->remove_if([](const Entry&) { return true; }, EvictionCause::kExplicit);
    }
  }
}

bool Engine::is_shut_down() const noexcept {
  return impl_->shut_down.load(std::memory_order_acquire);
}

void internal::EngineAccess::record(Engine& engine, NamespaceId id, internal::LoadEvent event,
                                    std::uint64_t n) noexcept {
  engine.impl_->namespaces[id.index]->load_events.add(static_cast<std::size_t>(event), n);
}

void internal::EngineAccess::record_load_latency(Engine& engine, NamespaceId id,
                                                 Duration latency) noexcept {
  engine.impl_->namespaces[id.index]->latency.record(latency);
}

}  // namespace callcache
