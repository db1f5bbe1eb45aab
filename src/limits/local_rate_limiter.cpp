#include "local_rate_limiter.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <thread>

namespace callcache::limits {
namespace {

constexpr std::int64_t kMaxNs = std::numeric_limits<std::int64_t>::max();

std::int64_t sat_add(std::int64_t a, std::int64_t b) {
  if (b > 0 && a > kMaxNs - b) return kMaxNs;
  return a + b;
}

std::int64_t ns_of(TimePoint t) { return t.time_since_epoch().count(); }

std::string seconds_text(Duration d) {
  const double s = std::chrono::duration<double>(d).count();
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3gs", s);
  return buf;
}

// The in-memory form of a key: `prefix`, then each part of `scope` as a
// varint length and its bytes (chat: 8 raw bytes, paid: 1 byte). Shorter and
// cheaper to build than append_scope_key()'s readable form, and just as
// unambiguous.
void append_varint_part(std::string& out, std::string_view v, bool lowercase = false) {
  char buf[10];
  std::size_t n = v.size(), i = 0;
  while (n >= 0x80) {
    buf[i++] = static_cast<char>((n & 0x7f) | 0x80);
    n >>= 7;
  }
  buf[i++] = static_cast<char>(n);
  out.append(buf, i);
  if (lowercase) {
    append_method(out, v);  // method names count case-insensitively
  } else {
    out.append(v);
  }
}

void append_compact_key(std::string& out, std::string_view prefix, KeyScope scope,
                        const CallAttributes& call) {
  using namespace key_scope;
  out.append(prefix);
  if (scope & kMethod) append_varint_part(out, call.method, /*lowercase=*/true);
  if (scope & kAccount) append_varint_part(out, call.account);
  if (scope & kBot) append_varint_part(out, call.bot);
  if (scope & kChat) {
    const auto chat = static_cast<std::uint64_t>(call.chat.value_or(0));
    char buf[8];
    for (int b = 0; b < 8; ++b) buf[b] = static_cast<char>((chat >> (8 * b)) & 0xff);
    out.append(buf, 8);
  }
  if (scope & kPaid) out += call.paid ? '\x01' : '\x00';
}

// Per-thread buffers for one reservation, reused so the steady state does not
// allocate. Never held across user code.
struct Scratch {
  std::vector<std::string> keys;  // capacity kept between calls
  std::vector<std::size_t> hashes;
  std::vector<std::uint32_t> stripe_of;  // stripe index of each key
  std::vector<std::size_t> owners;  // rule index, or SIZE_MAX - scope for penalties
  std::vector<std::int64_t> own_start;
  std::vector<std::int64_t> tat;  // current TAT, or INT64_MIN if absent
  std::vector<std::int64_t*> slot;  // the key's slot time in the map, or nullptr
  std::vector<std::uint32_t> stripes;
  std::size_t n = 0;

  std::string& next_key(std::size_t owner) {
    if (keys.size() == n) keys.emplace_back();
    keys[n].clear();
    if (owners.size() <= n) owners.resize(n + 1);
    owners[n] = owner;
    return keys[n++];
  }
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

constexpr std::size_t kPenaltyBase = std::numeric_limits<std::size_t>::max() - 64;

}  // namespace

LimiterCore::LimiterCore(RateLimiterOptions options)
    : clock_(options.clock ? options.clock : &default_clock()),
      sweep_interval_ns_(options.sweep_interval.count()),
      plain_rules_(std::move(options.rules)),
      rules_(plain_rules_.size()),
      shards_(options.shards) {
  for (Shard& sh : shards_) sh.rows.resize(plain_rules_.size() + 1);
  for (std::size_t i = 0; i < plain_rules_.size(); ++i) {
    CompiledRule& c = rules_[i];
    c.rule = plain_rules_[i];
    c.interval_ns = emission_interval(c.rule).count();
    c.tolerance_ns = static_cast<std::int64_t>(c.rule.burst - 1) * c.interval_ns;
    // Two bytes, little end first; the high byte is < 0x80 (fewer than 0x8000
    // rules), so no rule prefix equals a penalty prefix (0xff, scope).
    const char prefix[2] = {static_cast<char>(i & 0xff), static_cast<char>(i >> 8)};
    c.prefix.assign(prefix, 2);
    c.methods.insert(c.rule.methods.begin(), c.rule.methods.end());
    c.except_methods.insert(c.rule.except_methods.begin(), c.rule.except_methods.end());
  }
}

std::string LimiterCore::row_name(std::size_t row) const {
  return row < rules_.size() ? rules_[row].rule.name : std::string("penalty");
}

bool LimiterCore::matches(const CompiledRule& c, const CallAttributes& call) const {
  using namespace key_scope;
  const Rule& r = c.rule;
  if ((r.key & kMethod) && call.method.empty()) return false;
  if ((r.key & kAccount) && call.account.empty()) return false;
  if ((r.key & kBot) && call.bot.empty()) return false;
  if ((r.key & kChat) && !call.chat) return false;
  if (r.chat == ChatMatch::kPrivate && (!call.chat || *call.chat <= 0)) return false;
  if (r.chat == ChatMatch::kGroup && (!call.chat || *call.chat >= 0)) return false;
  if (r.paid == PaidMatch::kPaid && !call.paid) return false;
  if (r.paid == PaidMatch::kUnpaid && call.paid) return false;
  if (!c.methods.empty() && c.methods.find(call.method) == c.methods.end()) return false;
  if (!c.except_methods.empty() && c.except_methods.find(call.method) != c.except_methods.end()) {
    return false;
  }
  return true;
}

Reservation LimiterCore::reserve(const CallAttributes& call, Duration max_wait, bool try_only) {
  Scratch& s = scratch();
  s.n = 0;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    if (!matches(rules_[i], call)) continue;
    append_compact_key(s.next_key(i), rules_[i].prefix, rules_[i].rule.key, call);
  }
  if (penalties_live_.load(std::memory_order_acquire) > 0) {
    for (KeyScope scope = 0; scope <= key_scope::kAll; ++scope) {
      if (penalties_by_scope_[scope].load(std::memory_order_acquire) <= 0) continue;
      // A penalty applies to calls that name its attributes.
      using namespace key_scope;
      if (((scope & kMethod) && call.method.empty()) || ((scope & kAccount) && call.account.empty()) ||
          ((scope & kBot) && call.bot.empty()) || ((scope & kChat) && !call.chat)) {
        continue;
      }
      const char prefix[2] = {'\xff', static_cast<char>(scope)};
      append_compact_key(s.next_key(kPenaltyBase + scope), std::string_view(prefix, 2), scope, call);
    }
  }
  Reservation out;
  if (s.n == 0) {
    out.admitted = true;
    out.start = clock_->now();
    return out;
  }

  // Stripes of every key, locked in ascending order.
  s.hashes.resize(s.n);
  s.stripe_of.resize(s.n);
  s.own_start.resize(s.n);
  s.tat.resize(s.n);
  s.slot.resize(s.n);
  s.stripes.clear();
  for (std::size_t k = 0; k < s.n; ++k) {
    s.hashes[k] = StringHash{}(s.keys[k]);
    s.stripe_of[k] = static_cast<std::uint32_t>(s.hashes[k] % shards_.size());
    s.stripes.push_back(s.stripe_of[k]);
  }
  if (s.stripes.size() > 1) {
    std::sort(s.stripes.begin(), s.stripes.end());
    s.stripes.erase(std::unique(s.stripes.begin(), s.stripes.end()), s.stripes.end());
  }
  for (std::uint32_t st : s.stripes) shards_[st].mu.lock();

  const std::int64_t now = ns_of(clock_->now());
  std::int64_t start = now;
  for (std::size_t k = 0; k < s.n; ++k) {
    Shard& sh = shards_[s.stripe_of[k]];
    auto it = sh.map.find(HashedView{s.keys[k], s.hashes[k]});
    std::int64_t own = now;
    s.tat[k] = std::numeric_limits<std::int64_t>::min();
    s.slot[k] = it != sh.map.end() ? &it->second.tat_ns : nullptr;
    if (it != sh.map.end() && it->second.tat_ns > now) {
      s.tat[k] = it->second.tat_ns;
      const std::size_t owner = s.owners[k];
      if (owner >= kPenaltyBase) {
        own = it->second.tat_ns;
      } else {
        own = std::max(now, it->second.tat_ns - rules_[owner].tolerance_ns);
      }
    }
    s.own_start[k] = own;
    if (own > start) {
      start = own;
      out.binding = s.owners[k] >= kPenaltyBase ? rules_.size() : s.owners[k];
    }
  }
  out.start = TimePoint(Duration(start));
  out.wait = Duration(start - now);
  out.admitted = try_only ? start == now : out.wait <= max_wait;

  // Commit (all rules or none) and count, still under the stripe locks: each
  // key's counters live in its own stripe.
  bool penalty_counted = false;
  for (std::size_t k = 0; k < s.n; ++k) {
    const std::size_t owner = s.owners[k];
    const bool penalty = owner >= kPenaltyBase;
    Shard& sh = shards_[s.stripe_of[k]];
    RuleCounters& c = sh.rows[penalty ? rules_.size() : owner];
    const std::int64_t own_wait = s.own_start[k] - now;
    if (penalty) {
      if (own_wait <= 0 || penalty_counted) continue;
      penalty_counted = true;
    }
    if (!out.admitted) {
      if (try_only ? own_wait > 0 : Duration(own_wait) > max_wait) ++c.refusals;
      continue;
    }
    ++c.calls;
    if (own_wait > 0) {
      ++c.waits;
      c.total_wait_ns += own_wait;
      c.max_wait_ns = std::max(c.max_wait_ns, own_wait);
    }
    if (penalty) continue;
    const std::int64_t tat = sat_add(std::max(s.tat[k], start), rules_[owner].interval_ns);
    if (s.slot[k]) {
      *s.slot[k] = tat;
    } else {
      sh.map.emplace(HashedKey{s.keys[k], s.hashes[k]}, Slot{tat, static_cast<std::uint16_t>(owner)});
      ++c.keys;
    }
  }
  for (std::uint32_t st : s.stripes) {
    Shard& sh = shards_[st];
    if (now >= sh.next_sweep_ns) {
      sweep_locked(sh, now);
      sh.next_sweep_ns = sat_add(now, sweep_interval_ns_);
    }
  }
  for (auto it = s.stripes.rbegin(); it != s.stripes.rend(); ++it) shards_[*it].mu.unlock();
  return out;
}

std::size_t LimiterCore::sweep_locked(Shard& shard, std::int64_t now_ns) {
  std::size_t dropped = 0;
  for (auto it = shard.map.begin(); it != shard.map.end();) {
    if (it->second.tat_ns <= now_ns) {
      const std::uint16_t owner = it->second.owner;
      if (owner & kPenaltyOwner) {
        penalties_by_scope_[owner & key_scope::kAll].fetch_sub(1, std::memory_order_acq_rel);
        penalties_live_.fetch_sub(1, std::memory_order_acq_rel);
        --shard.rows[rules_.size()].keys;
      } else {
        --shard.rows[owner].keys;
      }
      it = shard.map.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  // Give back the bucket array once most keys are gone.
  if (dropped && shard.map.bucket_count() > 64 && shard.map.size() * 8 < shard.map.bucket_count()) {
    shard.map.rehash(0);
  }
  return dropped;
}

std::size_t LimiterCore::sweep_all() {
  std::size_t dropped = 0;
  for (Shard& sh : shards_) {
    std::lock_guard lock(sh.mu);
    const std::int64_t now = ns_of(clock_->now());
    dropped += sweep_locked(sh, now);
    sh.next_sweep_ns = sat_add(now, sweep_interval_ns_);
  }
  return dropped;
}

Status LimiterCore::penalize(const CallAttributes& call, KeyScope scope, Duration retry_after) {
  using namespace key_scope;
  if (scope & ~kAll) return Status::invalid_argument("penalize: unknown key scope bits");
  if (retry_after < Duration::zero()) {
    return Status::invalid_argument("penalize: retry_after must not be negative");
  }
  if (((scope & kMethod) && call.method.empty()) || ((scope & kAccount) && call.account.empty()) ||
      ((scope & kBot) && call.bot.empty()) || ((scope & kChat) && !call.chat)) {
    return Status::invalid_argument(
        "penalize: the call does not name every attribute of the penalized key scope");
  }
  std::string key;
  const char prefix[2] = {'\xff', static_cast<char>(scope)};
  append_compact_key(key, std::string_view(prefix, 2), scope, call);
  const std::size_t hash = StringHash{}(key);
  Shard& sh = shards_[hash % shards_.size()];
  {
    std::lock_guard lock(sh.mu);
    const std::int64_t now = ns_of(clock_->now());
    const std::int64_t until = sat_add(now, retry_after.count());
    auto it = sh.map.find(HashedView{key, hash});
    if (it != sh.map.end() && it->second.tat_ns <= now) {
      // An expired penalty not swept yet: reuse the slot as a new one.
      it->second.tat_ns = until;
    } else if (it != sh.map.end()) {
      it->second.tat_ns = std::max(it->second.tat_ns, until);
    } else if (until > now) {
      sh.map.emplace(HashedKey{std::move(key), hash},
                     Slot{until, static_cast<std::uint16_t>(kPenaltyOwner | scope)});
      ++sh.rows[rules_.size()].keys;
      penalties_by_scope_[scope].fetch_add(1, std::memory_order_acq_rel);
      penalties_live_.fetch_add(1, std::memory_order_acq_rel);
    }
    ++sh.rows[rules_.size()].penalties;
    for (std::size_t i = 0; i < rules_.size(); ++i) {
      if (rules_[i].rule.key == scope && matches(rules_[i], call)) ++sh.rows[i].penalties;
    }
  }
  return Status();
}

RateLimiterStats LimiterCore::stats() const {
  std::vector<RuleCounters> sum(rules_.size() + 1);
  for (const Shard& sh : shards_) {
    std::lock_guard lock(sh.mu);
    for (std::size_t row = 0; row < sum.size(); ++row) {
      const RuleCounters& c = sh.rows[row];
      RuleCounters& t = sum[row];
      t.calls += c.calls;
      t.waits += c.waits;
      t.total_wait_ns += c.total_wait_ns;
      t.max_wait_ns = std::max(t.max_wait_ns, c.max_wait_ns);
      t.refusals += c.refusals;
      t.penalties += c.penalties;
      t.keys += c.keys;
    }
  }
  RateLimiterStats out;
  for (std::size_t row = 0; row < sum.size(); ++row) {
    const RuleCounters& c = sum[row];
    RuleStats r;
    r.name = row_name(row);
    r.calls = c.calls;
    r.waits = c.waits;
    r.total_wait = Duration(c.total_wait_ns);
    r.max_wait = Duration(c.max_wait_ns);
    r.deadline_refusals = c.refusals;
    r.penalties = c.penalties;
    r.keys = static_cast<std::uint64_t>(std::max<std::int64_t>(0, c.keys));
    out.tracked_keys += r.keys;
    out.rules.push_back(std::move(r));
  }
  out.active_penalties = out.rules.back().keys;
  return out;
}

// ---- The RateLimiter facade ------------------------------------------------

namespace {

void sleep_until_on(const Clock& clock, TimePoint when) {
  for (;;) {
    const TimePoint now = clock.now();
    if (now >= when) return;
    // Sliced, so a virtual clock advanced by another thread is noticed.
    std::this_thread::sleep_for(std::min<Duration>(when - now, std::chrono::milliseconds(10)));
  }
}

class LocalRateLimiter final : public RateLimiter {
 public:
  LocalRateLimiter(std::shared_ptr<LimiterCore> core, Scheduler* scheduler, Duration sweep_every)
      : core_(std::move(core)), scheduler_(scheduler), sweep_every_(sweep_every) {
    if (scheduler_) schedule_sweep();
  }

  ~LocalRateLimiter() override {
    std::lock_guard lock(sweep_->mu);
    sweep_->stopped = true;
    if (sweep_->task) scheduler_->cancel(sweep_->task);
  }

  Status acquire(const CallAttributes& call, Duration max_wait) override {
    Reservation r = core_->reserve(call, max_wait, false);
    if (!r.admitted) return refusal(r, max_wait);
    if (r.wait > Duration::zero()) sleep_until_on(core_->clock(), r.start);
    return Status();
  }

  TryAcquireResult try_acquire(const CallAttributes& call) override {
    Reservation r = core_->reserve(call, Duration::zero(), true);
    return TryAcquireResult{r.admitted, r.admitted ? Duration::zero() : r.wait,
                            r.admitted ? 0 : r.binding};
  }

  Result<Duration> reserve(const CallAttributes& call, Duration max_wait) override {
    Reservation r = core_->reserve(call, max_wait, false);
    if (!r.admitted) return refusal(r, max_wait);
    return r.wait;
  }

  Status acquire_async(const CallAttributes& call, Duration max_wait, Callback done) override {
    if (!scheduler_) {
      return Status::invalid_argument("acquire_async: the rate limiter has no scheduler");
    }
    Reservation r = core_->reserve(call, max_wait, false);
    Status outcome = r.admitted ? Status() : refusal(r, max_wait);
    const TimePoint when = r.admitted ? r.start : core_->clock().now();
    auto id = scheduler_->schedule_at(
        when, [done = std::move(done), outcome = std::move(outcome)]() mutable { done(outcome); });
    if (id == 0) return Status::shutdown("acquire_async: the scheduler is shut down");
    return Status();
  }

  Status penalize(const CallAttributes& call, KeyScope scope, Duration retry_after) override {
    return core_->penalize(call, scope, retry_after);
  }

  RateLimiterStats stats() const override { return core_->stats(); }
  std::size_t sweep_idle() override { return core_->sweep_all(); }
  const std::vector<Rule>& rules() const override { return core_->rules(); }

 private:
  struct SweepState {
    std::mutex mu;  // guards stopped and task
    bool stopped = false;
    Scheduler::TaskId task = 0;
  };

  Status refusal(const Reservation& r, Duration max_wait) const {
    return Status::deadline_exceeded("rate limit '" + core_->row_name(r.binding) + "': waiting " +
                                     seconds_text(r.wait) + " would exceed the deadline of " +
                                     seconds_text(max_wait));
  }

  // The periodic sweep holds only weak references, so it never keeps a
  // destroyed limiter alive or touches it after the destructor returns.
  void schedule_sweep() {
    std::lock_guard lock(sweep_->mu);
    sweep_->task = arm_sweep(core_, sweep_, scheduler_, sweep_every_);
  }

  // REQUIRES: state->mu held.
  static Scheduler::TaskId arm_sweep(std::weak_ptr<LimiterCore> weak,
                                     std::weak_ptr<SweepState> state, Scheduler* sched,
                                     Duration every) {
    return sched->schedule_after(every, [weak, state, sched, every] {
      auto core = weak.lock();
      auto st = state.lock();
      if (!core || !st) return;
      core->sweep_all();
      std::lock_guard lock(st->mu);
      if (!st->stopped) st->task = arm_sweep(weak, state, sched, every);
    });
  }

  std::shared_ptr<LimiterCore> core_;
  Scheduler* scheduler_;
  Duration sweep_every_;
  std::shared_ptr<SweepState> sweep_ = std::make_shared<SweepState>();
};

}  // namespace
}  // namespace callcache::limits

namespace callcache {

Result<std::unique_ptr<RateLimiter>> make_local_rate_limiter(RateLimiterOptions options) {
  if (Status s = validate_rules(options.rules); !s.ok()) return s;
  if (options.shards == 0 || options.shards > 65536) {
    return Status::invalid_argument("rate limiter option shards must be between 1 and 65536, got " +
                                    std::to_string(options.shards));
  }
  if (options.rules.size() >= 0x8000) {
    return Status::invalid_argument("rate limiter: too many rules (" +
                                    std::to_string(options.rules.size()) + ")");
  }
  if (options.sweep_interval <= Duration::zero()) {
    return Status::invalid_argument("rate limiter option sweep_interval must be greater than zero");
  }
  if (options.scheduler && options.clock && &options.scheduler->clock() != options.clock) {
    return Status::invalid_argument("rate limiter: the scheduler must run on the limiter's clock");
  }
  if (options.scheduler && !options.clock) options.clock = &options.scheduler->clock();
  Scheduler* scheduler = options.scheduler;
  const Duration sweep_every = options.sweep_interval;
  auto core = std::make_shared<limits::LimiterCore>(std::move(options));
  return std::unique_ptr<RateLimiter>(
      std::make_unique<limits::LocalRateLimiter>(std::move(core), scheduler, sweep_every));
}

}  // namespace callcache
