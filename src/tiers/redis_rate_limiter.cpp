// The Redis-backed RateLimiter (callcache/redis_backend.h).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "callcache/redis_backend.h"
#include "redis_pool.h"

namespace callcache {
namespace {

using tiers::Args;
using tiers::RedisPool;
using tiers::RedisScript;

// KEYS: n rule keys, then penalty keys.
// ARGV: 1 = n, 2 = max wait µs (-1 = unbounded), 3.. = per rule: interval µs,
// tolerance µs. Times are µs on Redis's clock.
// Returns {admitted, wait µs, own wait µs of each key...}.
const char* const kReserveScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local maxw = tonumber(ARGV[2])
local wait = 0
local tats = {}
local out = {0, 0}
for i = 1, #KEYS do
  local v = tonumber(redis.call('GET', KEYS[i]) or '0')
  local w
  if i <= n then
    if v < now then v = now end
    tats[i] = v
    w = v - tonumber(ARGV[2 + 2 * i]) - now
  else
    w = v - now
  end
  if w < 0 then w = 0 end
  out[2 + i] = w
  if w > wait then wait = w end
end
out[2] = wait
if maxw >= 0 and wait > maxw then return out end
local start = now + wait
for i = 1, n do
  local tat = tats[i]
  if tat < start then tat = start end
  local nt = tat + tonumber(ARGV[1 + 2 * i])
  redis.call('SET', KEYS[i], string.format('%.0f', nt), 'PX', math.ceil((nt - now) / 1000) + 1)
end
out[1] = 1
return out
)lua";

// KEYS: 1 = penalty key. ARGV: 1 = retry_after µs. Extends, never shortens.
const char* const kPenalizeScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local d = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < now + d then
  redis.call('SET', KEYS[1], string.format('%.0f', now + d), 'PX', math.ceil(d / 1000) + 1)
end
return 1
)lua";

std::int64_t to_us(Duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

struct Counters {
  std::atomic<std::uint64_t> calls{0}, waits{0}, refusals{0}, penalties{0};
  std::atomic<std::int64_t> total_wait_ns{0}, max_wait_ns{0};
};

class RedisRateLimiter final : public RateLimiter {
 public:
  RedisRateLimiter(RedisRateLimiterOptions options, std::unique_ptr<RateLimiter> fallback)
      : options_(std::move(options)),
        pool_(options_.redis),
        reserve_script_(kReserveScript),
        penalize_script_(kPenalizeScript),
        fallback_(std::move(fallback)),
        counters_(options_.rules.size() + 1) {
    base_ = options_.redis.prefix + ":rl:";
  }

  Status acquire(const CallAttributes& call, Duration max_wait) override {
    auto r = reserve(call, max_wait);
    if (!r.ok()) return r.status();
    if (*r > Duration::zero()) std::this_thread::sleep_for(*r);
    return Status();
  }

  TryAcquireResult try_acquire(const CallAttributes& call) override {
    Outcome o = run(call, Duration::zero(), /*try_only=*/true);
    if (o.fallback) return fallback_->try_acquire(call);
    return TryAcquireResult{o.admitted, o.wait, o.binding_rule};
  }

  Result<Duration> reserve(const CallAttributes& call, Duration max_wait) override {
    Outcome o = run(call, max_wait, /*try_only=*/false);
    if (o.fallback) return fallback_->reserve(call, max_wait);
    if (!o.admitted) {
      return Status::deadline_exceeded("rate limit: the call would wait " +
                                       std::to_string(std::chrono::duration<double>(o.wait).count()) +
                                       " s, more than allowed");
    }
    return o.wait;
  }

  Status acquire_async(const CallAttributes& call, Duration max_wait, Callback done) override {
    Scheduler* s = options_.scheduler;
    if (!s) return Status::invalid_argument("acquire_async: the rate limiter has no scheduler");
    auto r = reserve(call, max_wait);
    Status st = r.ok() ? Status() : r.status();
    Duration delay = r.ok() ? *r : Duration::zero();
    auto id = s->schedule_after(delay, [done = std::move(done), st]() mutable { done(st); });
    if (id == 0) return Status::shutdown("acquire_async: the scheduler is shut down");
    return Status();
  }

  Status penalize(const CallAttributes& call, KeyScope scope, Duration retry_after) override {
    if (retry_after < Duration::zero()) {
      return Status::invalid_argument("penalize: retry_after must be >= 0");
    }
    if (!names_scope(call, scope)) {
      return Status::invalid_argument("penalize: the call does not name every attribute of the scope");
    }
    counters_.back().penalties.fetch_add(1, std::memory_order_relaxed);
    std::string key = penalty_key(call, scope);
    std::string us = std::to_string(std::max<std::int64_t>(1, to_us(retry_after)));
    // Penalties also go to the fallback, so an outage does not forget them.
    (void)fallback_->penalize(call, scope, retry_after);
    auto r = pool_.eval(penalize_script_, {key}, {us});
    if (!r.ok()) {
      note_failure(r.status());
      return Status();  // recorded locally; the fallback honours it
    }
    note_success();
    return Status();
  }

  RateLimiterStats stats() const override {
    RateLimiterStats out;
    for (std::size_t i = 0; i <= options_.rules.size(); ++i) {
      const Counters& c = counters_[i];
      RuleStats r;
      r.name = i < options_.rules.size() ? options_.rules[i].name : "penalty";
      r.calls = c.calls.load(std::memory_order_relaxed);
      r.waits = c.waits.load(std::memory_order_relaxed);
      r.total_wait = Duration(c.total_wait_ns.load(std::memory_order_relaxed));
      r.max_wait = Duration(c.max_wait_ns.load(std::memory_order_relaxed));
      r.deadline_refusals = c.refusals.load(std::memory_order_relaxed);
      r.penalties = c.penalties.load(std::memory_order_relaxed);
      out.rules.push_back(std::move(r));
    }
    return out;
  }

  std::size_t sweep_idle() override { return fallback_->sweep_idle(); }
  const std::vector<Rule>& rules() const override { return options_.rules; }

 private:
  struct Outcome {
    bool fallback = false;
    bool admitted = false;
    Duration wait{0};
    std::size_t binding_rule = 0;  // the row with the longest own wait (not admitted)
  };

  static bool names_scope(const CallAttributes& call, KeyScope scope) {
    using namespace key_scope;
    return !(((scope & kMethod) && call.method.empty()) ||
             ((scope & kAccount) && call.account.empty()) || ((scope & kBot) && call.bot.empty()) ||
             ((scope & kChat) && !call.chat));
  }

  std::string penalty_key(const CallAttributes& call, KeyScope scope) const {
    std::string key = base_ + "p:";
    append_scope_key(key, std::to_string(scope), scope, call);
    return key;
  }

  Outcome run(const CallAttributes& call, Duration max_wait, bool try_only) {
    if (in_backoff()) return Outcome{true};
    std::vector<std::string> keys;
    std::vector<std::size_t> rows;
    std::vector<std::string> argv_store = {"0", "-1"};
    for (std::size_t i = 0; i < options_.rules.size(); ++i) {
      const Rule& rule = options_.rules[i];
      if (!rule_matches(rule, call)) continue;
      std::string key = base_ + "r:";
      append_scope_key(key, rule.name, rule.key, call);
      keys.push_back(std::move(key));
      rows.push_back(i);
      Duration t = emission_interval(rule);
      argv_store.push_back(std::to_string(std::max<std::int64_t>(1, to_us(t))));
      argv_store.push_back(std::to_string(to_us(t) * static_cast<std::int64_t>(rule.burst - 1)));
    }
    std::size_t n = keys.size();
    // Every penalty scope the call names (as the local limiter checks them).
    for (KeyScope scope = 0; scope <= key_scope::kAll; ++scope) {
      if (names_scope(call, scope)) keys.push_back(penalty_key(call, scope));
    }
    argv_store[0] = std::to_string(n);
    argv_store[1] = try_only ? "0" : max_wait == kNoDeadline ? "-1" : std::to_string(to_us(max_wait));
    Args k(keys.begin(), keys.end());
    Args a(argv_store.begin(), argv_store.end());
    auto r = pool_.eval(reserve_script_, k, a);
    if (!r.ok() || (*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2 + keys.size()) {
      note_failure(r.ok() ? Status::io_error("rate limit script: unexpected reply") : r.status());
      return Outcome{true};
    }
    note_success();
    const redisReply* rep = r->get();
    Outcome o;
    o.admitted = rep->element[0]->integer == 1;
    o.wait = std::chrono::microseconds(rep->element[1]->integer);
    bool penalty_counted = false;
    Duration longest{0};
    for (std::size_t j = 0; j < keys.size(); ++j) {
      auto own = std::chrono::microseconds(rep->element[2 + j]->integer);
      std::size_t row = j < n ? rows[j] : options_.rules.size();
      if (!o.admitted && own > longest) {
        longest = own;
        o.binding_rule = row;
      }
      if (j >= n) {
        if (own <= Duration::zero() || penalty_counted) continue;
        penalty_counted = true;
      }
      Counters& c = counters_[row];
      if (o.admitted) {
        c.calls.fetch_add(1, std::memory_order_relaxed);
        if (own > Duration::zero()) {
          auto ns = std::chrono::duration_cast<Duration>(own).count();
          c.waits.fetch_add(1, std::memory_order_relaxed);
          c.total_wait_ns.fetch_add(ns, std::memory_order_relaxed);
          std::int64_t prev = c.max_wait_ns.load(std::memory_order_relaxed);
          while (prev < ns && !c.max_wait_ns.compare_exchange_weak(prev, ns)) {
          }
        }
      } else if (try_only ? own > Duration::zero() : own > max_wait) {
        c.refusals.fetch_add(1, std::memory_order_relaxed);
      }
    }
    return o;
  }

  bool in_backoff() {
    std::lock_guard l(mu_);
    return down_ && std::chrono::steady_clock::now() < retry_at_;
  }

  void note_failure(const Status& s) {
    bool first;
    {
      std::lock_guard l(mu_);
      first = !down_;
      down_ = true;
      retry_at_ = std::chrono::steady_clock::now() + options_.retry_after_failure;
    }
    if (first) {
      log("redis rate limiter: Redis is failing (" + s.to_string() +
          "); pacing with an in-process limiter until it answers");
    }
  }

  void note_success() {
    bool recovered;
    {
      std::lock_guard l(mu_);
      recovered = down_;
      down_ = false;
    }
    if (recovered) log("redis rate limiter: Redis answers again; pacing is shared again");
  }

  void log(const std::string& m) {
    if (options_.log) {
      options_.log(m);
    } else {
      std::fprintf(stderr, "callcache: %s\n", m.c_str());
    }
  }

  RedisRateLimiterOptions options_;
  RedisPool pool_;
  RedisScript reserve_script_, penalize_script_;
  std::unique_ptr<RateLimiter> fallback_;
  std::string base_;
  std::vector<Counters> counters_;  // one per rule, then the penalty row
  std::mutex mu_;                   // guards down_, retry_at_
  bool down_ = false;
  std::chrono::steady_clock::time_point retry_at_{};
};

}  // namespace

Result<std::unique_ptr<RateLimiter>> make_redis_rate_limiter(RedisRateLimiterOptions options) {
  if (Status s = validate_rules(options.rules); !s.ok()) return s;
  if (options.redis.pool_size == 0) return Status::invalid_argument("redis: pool_size must be > 0");
  if (options.redis.prefix.empty()) return Status::invalid_argument("redis: prefix is empty");
  RateLimiterOptions local;
  local.rules = options.rules;
  auto fallback = make_local_rate_limiter(std::move(local));
  if (!fallback.ok()) return fallback.status();
  return std::unique_ptr<RateLimiter>(
      std::make_unique<RedisRateLimiter>(std::move(options), std::move(*fallback)));
}

}  // namespace callcache
