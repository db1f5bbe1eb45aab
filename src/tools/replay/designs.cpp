#include "designs.h"

#include <optional>
#include <set>

#include "callcache/cache.h"
#include "callcache/engine.h"
#include "callcache/scope.h"
#include "callcache/tiered_cache.h"

namespace callcache::replay {

Result<std::vector<Rule>> to_toolkit_rules(const std::vector<LimitRule>& rules, AccountKind kind) {
  const KeyScope who = kind == AccountKind::kBot ? key_scope::kBot : key_scope::kAccount;
  std::vector<Rule> out;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const LimitRule& lr = rules[i];
    Rule r;
    r.name = "r" + std::to_string(i) + "_" + per_name(lr.per) + "_" + lr.method;
    r.limit = 1;
    r.period = lr.interval;
    r.burst = lr.burst;
    switch (lr.per) {
      case Per::kAccount:
        r.key = who;
        break;
      case Per::kGroup:
        r.key = key_scope::kChat;
        break;
      case Per::kAccountGroup:
        r.key = who | key_scope::kChat;
        break;
      case Per::kGlobal:
        r.key = key_scope::kGlobal;
        break;
      case Per::kObject:
        return Status::invalid_argument("pacing rule " + std::to_string(i) +
                                        ": per: object cannot be paced by the client toolkit");
    }
    if (lr.method == "any") {
      // one bucket for every method
    } else if (lr.method == "default") {
      r.key |= key_scope::kMethod;
      for (const LimitRule& o : rules) {
        if (o.per == lr.per && o.method != "default" && o.method != "any")
          r.except_methods.push_back(o.method);
      }
    } else {
      r.methods = {lr.method};
    }
    out.push_back(std::move(r));
  }
  Status st = validate_rules(out);
  if (!st.ok()) return st;
  return out;
}

namespace {

using Payload = std::string;

// Calls upstream once the limiter admits the call; on FLOOD_WAIT/429 waits
// and retries. penalize=true: tell the limiter about the back-off (callcache);
// false: just sleep retry_after and retry (the seeds).
class PacedCaller {
 public:
  PacedCaller(const DesignEnv& env, std::unique_ptr<RateLimiter> limiter, bool penalize)
      : env_(env), limiter_(std::move(limiter)), penalize_(penalize) {}

  void call(std::shared_ptr<const StepCall> c, std::function<void(const Payload&)> done) {
    CallAttributes a = attributes(*c);
    auto go = [this, c, done = std::move(done)](Status st) mutable {
      if (!st.ok()) return;  // no deadline is set: cannot happen
      send(std::move(c), std::move(done));
    };
    if (!limiter_) {
      env_.scheduler->schedule_after(Duration::zero(), [go]() mutable { go(Status()); });
      return;
    }
    Status st = limiter_->acquire_async(a, RateLimiter::kNoDeadline, std::move(go));
    if (!st.ok()) std::abort();  // the limiter has our scheduler: cannot fail
  }

 private:
  CallAttributes attributes(const StepCall& c) const {
    CallAttributes a;
    a.method = c.method->name;
    if (env_.scenario->account_kind == AccountKind::kBot)
      a.bot = c.account;
    else
      a.account = c.account;
    a.chat = c.chat_id;
    return a;
  }

  void send(std::shared_ptr<const StepCall> c, std::function<void(const Payload&)> done) {
    CallKey key{c->account, c->method->name, c->group, c->object};
    env_.upstream->call(key, [this, c, done = std::move(done)](const UpstreamReply& r) mutable {
      if (r.ok) return done(r.payload);
      if (penalize_ && limiter_) {
        KeyScope scope = env_.scenario->account_kind == AccountKind::kBot
                             ? key_scope::kBot
                             : key_scope::kAccount | key_scope::kMethod;
        (void)limiter_->penalize(attributes(*c), scope, r.retry_after);
        call(std::move(c), std::move(done));
      } else {
        env_.scheduler->schedule_after(
            r.retry_after, [this, c, done]() mutable { call(std::move(c), std::move(done)); });
      }
    });
  }

  DesignEnv env_;
  std::unique_ptr<RateLimiter> limiter_;
  bool penalize_;
};

Result<std::unique_ptr<RateLimiter>> make_limiter(const DesignEnv& env,
                                                  const std::vector<LimitRule>& rules) {
  auto tk = to_toolkit_rules(rules, env.scenario->account_kind);
  if (!tk.ok()) return tk.status();
  RateLimiterOptions o;
  o.rules = std::move(*tk);
  o.clock = env.clock;
  o.scheduler = env.scheduler;
  o.shards = 1;
  return make_local_rate_limiter(std::move(o));
}

EngineOptions engine_options(const DesignEnv& env) {
  EngineOptions o;
  o.namespaces.clear();
  for (const auto& [name, d] : env.scenario->namespaces) {
    NamespacePolicy p;
    p.ttl = d.ttl;
    p.shared = d.shared;
    p.max_entries = 1 << 20;  // the replay measures calls, not eviction
    o.namespaces.push_back({name, p});
  }
  o.shards = 1;
  o.clock = env.clock;
  return o;
}

// State shared by the cached designs: a scope registry (task scope for the
// seeds, process scope for callcache), the current task's engine, and a
// typed front per namespace.
class CachedBase : public Design {
 protected:
  Status open(const DesignEnv& env, CacheScope scope) {
    ScopeOptions o;
    o.settings.scope = scope;
    o.engine = engine_options(env);
    o.scheduler = env.scheduler;
    auto reg = ScopeRegistry::create(std::move(o));
    if (!reg.ok()) return reg.status();
    registry_ = std::move(*reg);
    auto task = registry_->begin_task(env.scenario->name);
    if (!task.ok()) return task.status();
    task_.emplace(std::move(*task));
    for (const auto& [name, d] : env.scenario->namespaces) {
      auto c = Cache<Payload>::open(task_->engine(), name);
      if (!c.ok()) return c.status();
      caches_.emplace(name, std::move(*c));
    }
    return Status();
  }
  // Ends the task; in process scope, also shuts the process down (flushing
  // what on_shutdown hooks flush).
  void close() {
    caches_.clear();
    if (task_) task_->end();
    registry_->shutdown();
  }
  Engine& engine() { return task_->engine(); }

  std::unique_ptr<ScopeRegistry> registry_;
  std::optional<TaskScope> task_;
  std::map<std::string, Cache<Payload>> caches_;
  std::map<std::string, NamespaceCounters> counters_;

  // Classifies a fetch of `key` (scope-qualified) as it starts.
  void fetch_started(NamespaceCounters& n, const std::string& key) {
    if (in_flight_[key]++ > 0)
      ++n.duplicates;
    else if (!fetched_.insert(key).second)
      ++n.reloads;
  }
  void fetch_ended(const std::string& key) {
    if (--in_flight_[key] == 0) in_flight_.erase(key);
  }
  static std::string scoped_key(const NamespaceDef& d, const StepCall& c) {
    return d.name + "|" + (d.shared ? std::string() : c.account) + "|" + c.object;
  }

 private:
  std::map<std::string, int> in_flight_;
  std::set<std::string> fetched_;
};

class NoCacheDesign final : public Design {
 public:
  NoCacheDesign(const DesignEnv& env, std::unique_ptr<RateLimiter> l)
      : caller_(env, std::move(l), /*penalize=*/false) {}
  void step(std::shared_ptr<const StepCall> c, std::function<void()> done) override {
    caller_.call(std::move(c), [done = std::move(done)](const Payload&) { done(); });
  }
  std::map<std::string, NamespaceCounters> namespace_counters() const override { return {}; }

 private:
  PacedCaller caller_;
};

class SeedsDesign final : public CachedBase {
 public:
  SeedsDesign(const DesignEnv& env, std::unique_ptr<RateLimiter> l)
      : env_(env), caller_(env, std::move(l), /*penalize=*/false) {}
  Status init() { return open(env_, CacheScope::kTask); }

  void step(std::shared_ptr<const StepCall> c, std::function<void()> done) override {
    const std::string& ns = c->method->ns;
    if (ns.empty()) {
      caller_.call(std::move(c), [done = std::move(done)](const Payload&) { done(); });
      return;
    }
    NamespaceCounters& n = counters_[ns];
    ++n.requests;
    Cache<Payload>& cache = caches_.at(ns);
    TenantId tenant = tenant_from_name(c->account);
    if (cache.get(tenant, c->object)) {
      ++n.hits;
      env_.scheduler->schedule_after(Duration::zero(), std::move(done));
      return;
    }
    ++n.loads;  // the seeds re-check nothing: concurrent misses each go upstream
    std::string key = scoped_key(env_.scenario->namespaces.at(ns), *c);
    fetch_started(n, key);
    caller_.call(c, [this, &cache, tenant, c, key, done = std::move(done)](const Payload& p) {
      fetch_ended(key);
      (void)cache.put(tenant, c->object, p);
      done();
    });
  }
  std::map<std::string, NamespaceCounters> namespace_counters() const override { return counters_; }
  Status finish() override {
    close();  // the task ends: its cache is dropped
    return Status();
  }

 private:
  DesignEnv env_;
  PacedCaller caller_;
};

// The tier on the replay's virtual time line. A tier measures expiry on wall
// time; the replay's clock is virtual, so each stored value also carries its
// virtual expiry and the remaining TTL is computed from that (deterministic).
class VirtualTimeTier final : public Backend {
 public:
  VirtualTimeTier(Backend& inner, const Clock& clock) : inner_(inner), clock_(clock) {}

  std::string_view name() const noexcept override { return inner_.name(); }
  Result<std::optional<StoredValue>> get(const BackendKey& key) override {
    auto got = inner_.get(key);
    if (!got.ok() || !got->has_value()) return got;
    return on_virtual_time(std::move(**got));
  }
  Result<std::vector<std::optional<StoredValue>>> get_many(
      std::span<const BackendKey> keys) override {
    auto got = inner_.get_many(keys);
    if (!got.ok()) return got;
    for (auto& v : *got) {
      if (v) v = on_virtual_time(std::move(*v));
    }
    return got;
  }
  Status put(const BackendKey& key, std::string_view bytes, Duration ttl) override {
    return inner_.put(key, with_expiry(bytes, ttl), ttl);
  }
  Status put_many(std::span<const BackendItem> items) override {
    for (const BackendItem& i : items) {
      if (Status s = put(i.key, i.bytes, i.ttl); !s.ok()) return s;
    }
    return Status();
  }
  Status erase(const BackendKey& key) override { return inner_.erase(key); }
  Status erase_tenant(TenantId tenant) override { return inner_.erase_tenant(tenant); }
  Status erase_namespace(std::string_view ns) override { return inner_.erase_namespace(ns); }
  Result<std::uint64_t> purge_expired() override { return inner_.purge_expired(); }
  Status flush() override { return inner_.flush(); }
  Status health() override { return inner_.health(); }
  BackendStats stats() const override { return inner_.stats(); }

 private:
  std::string with_expiry(std::string_view bytes, Duration ttl) const {
    Duration expires = (clock_.now() + ttl).time_since_epoch();
    return std::string(bytes) + '\x1f' + std::to_string(expires.count());
  }
  // The value with its virtual remaining TTL, or nullopt once it is over.
  std::optional<StoredValue> on_virtual_time(StoredValue v) const {
    std::size_t sep = v.bytes.rfind('\x1f');
    if (sep == std::string::npos) return std::nullopt;
    Duration left = Duration(std::stoll(v.bytes.substr(sep + 1))) - clock_.now().time_since_epoch();
    if (left <= Duration::zero()) return std::nullopt;
    v.bytes.resize(sep);
    v.ttl_left = left;
    return v;
  }

  Backend& inner_;
  const Clock& clock_;
};

class CallcacheDesign final : public CachedBase {
 public:
  CallcacheDesign(const DesignEnv& env, std::unique_ptr<RateLimiter> l, Backend* tier)
      : env_(env), caller_(env, std::move(l), /*penalize=*/true), tier_(tier) {}
  // The library's read path: L1 → the tier (if any) → one coalesced load.
  Status init() {
    if (Status s = open(env_, CacheScope::kProcess); !s.ok()) return s;
    if (tier_) virtual_tier_.emplace(*tier_, *env_.clock);
    TiersOptions o;
    const Clock* clock = env_.clock;
    o.wall_clock_us = [clock] {
      return std::chrono::duration_cast<std::chrono::microseconds>(clock->now().time_since_epoch())
          .count();
    };
    tiers_.emplace(engine(), virtual_tier_ ? &*virtual_tier_ : nullptr, std::move(o));
    for (const auto& [name, d] : env_.scenario->namespaces) {
      auto c = TieredCache<Payload>::open(*tiers_, name);
      if (!c.ok()) return c.status();
      tiered_.emplace(name, std::move(*c));
    }
    return Status();
  }

  void step(std::shared_ptr<const StepCall> c, std::function<void()> done) override {
    const std::string& ns = c->method->ns;
    if (ns.empty()) {
      caller_.call(std::move(c), [done = std::move(done)](const Payload&) { done(); });
      return;
    }
    ++counters_[ns].requests;
    const NamespaceDef& def = env_.scenario->namespaces.at(ns);
    auto loader = [this, c, &def](LoadCompletion<Payload> complete) {
      NamespaceCounters& n = counters_[def.name];
      std::string key = scoped_key(def, *c);
      fetch_started(n, key);
      fetch_ended(key);  // single flight: a load's followers never start their own
      ++n.loads;
      caller_.call(c, [complete](const Payload& p) { complete(Result<Payload>(p)); });
    };
    auto callback = [this, c, &def, done = std::move(done)](Result<Ref<Payload>> r,
                                                            Served served) mutable {
      if (!r.ok()) failures_++;
      if (served == Served::kSecondTier) {
        NamespaceCounters& n = counters_[def.name];
        ++n.l2_hits;
        std::string key = scoped_key(def, *c);
        fetch_started(n, key);
        fetch_ended(key);
      }
      env_.scheduler->schedule_after(Duration::zero(), std::move(done));
    };
    tiered_.at(ns).get_or_load_async(tenant_from_name(c->account), c->object, std::move(loader),
                                     std::move(callback));
  }

  std::map<std::string, NamespaceCounters> namespace_counters() const override {
    auto out = counters_;
    if (!stats_) return out;
    const StatsSnapshot& s = *stats_;
    for (const NamespaceStats& ns : s.namespaces) {
      auto it = out.find(ns.name);
      if (it == out.end()) continue;
      it->second.hits = ns.hits;
      it->second.coalesced = ns.coalesced;
    }
    return out;
  }

  Status finish() override {
    if (failures_) return Status::internal(std::to_string(failures_) + " cache loads failed");
    stats_ = engine().stats();
    Status flushed;
    if (tier_) {
      registry_->on_shutdown([this, &flushed](Engine&) { flushed = tier_->flush(); });
    }
    tiered_.clear();
    close();  // the process exits: the registry flushes the tier
    return flushed;
  }

 private:
  DesignEnv env_;
  PacedCaller caller_;
  Backend* tier_;
  std::optional<VirtualTimeTier> virtual_tier_;
  std::optional<Tiers> tiers_;
  std::map<std::string, TieredCache<Payload>> tiered_;
  std::uint64_t failures_ = 0;
  std::optional<StatsSnapshot> stats_;  // taken before the process engine shuts down
};

}  // namespace

Result<std::unique_ptr<Design>> make_no_cache_design(const DesignEnv& env) {
  auto l = make_limiter(env, env.scenario->seeds_limiter);
  if (!l.ok()) return l.status();
  return std::unique_ptr<Design>(new NoCacheDesign(env, std::move(*l)));
}

Result<std::unique_ptr<Design>> make_seeds_design(const DesignEnv& env) {
  auto l = make_limiter(env, env.scenario->seeds_limiter);
  if (!l.ok()) return l.status();
  auto d = std::make_unique<SeedsDesign>(env, std::move(*l));
  Status st = d->init();
  if (!st.ok()) return st;
  return std::unique_ptr<Design>(std::move(d));
}

Result<std::unique_ptr<Design>> make_callcache_design(const DesignEnv& env, Backend* tier) {
  auto l = make_limiter(env, env.scenario->pacing);
  if (!l.ok()) return l.status();
  auto d = std::make_unique<CallcacheDesign>(env, std::move(*l), tier);
  Status st = d->init();
  if (!st.ok()) return st;
  return std::unique_ptr<Design>(std::move(d));
}

}  // namespace callcache::replay
