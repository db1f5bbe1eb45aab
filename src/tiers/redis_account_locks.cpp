// The Redis-backed AccountLocks (callcache/redis_backend.h).
//
// A hold is one key per account whose value names the holder:
// "<token> <since-unix-ms> <task>". Every change goes through a Lua script
// that compares the stored value with ours first, so nothing we do can touch
// another holder's lock, even after our lease lapsed.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "callcache/redis_backend.h"
#include "redis_pool.h"
#include "stored_record.h"

namespace callcache {
namespace {

using tiers::Args;
using tiers::LockValue;
using tiers::RedisPool;
using tiers::RedisScript;

// KEYS: lock keys. ARGV: 1 = our value, 2 = lease ms, 3 = "strict" | "warn".
// strict: all or nothing; returns {1} or {0, index, holder value}.
// warn: takes the free keys; returns {1, index, holder value, ...} listing
// the held ones.
const char* const kAcquireScript = R"lua(
if ARGV[3] == 'strict' then
  for i = 1, #KEYS do
    local v = redis.call('GET', KEYS[i])
    if v then return {0, i, v} end
  end
  for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
  return {1}
end
local out = {1}
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v then
    table.insert(out, i)
    table.insert(out, v)
  else
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
  end
end
return out
)lua";

// KEYS: lock keys. ARGV: 1 = our value. Deletes only our own holds.
const char* const kReleaseScript = R"lua(
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
return n
)lua";

// KEYS: lock keys. ARGV: 1 = our value, 2 = lease ms. Extends our own holds;
// returns how many keys are no longer ours.
const char* const kRenewScript = R"lua(
local lost = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  else
    lost = lost + 1
  end
end
return lost
)lua";

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class RedisAccountLocks final : public AccountLocks {
 public:
  explicit RedisAccountLocks(RedisAccountLockOptions options)
      : options_(std::move(options)),
        clock_(options_.locks.clock ? options_.locks.clock : &default_clock()),
        pool_(options_.redis),
        acquire_script_(kAcquireScript),
        release_script_(kReleaseScript),
        renew_script_(kRenewScript),
        rng_(std::random_device{}()) {
    base_ = options_.redis.prefix + ":lock:";
    lease_ms_ = std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease).count());
    renewer_ = std::thread([this] { renew_loop(); });
  }

  ~RedisAccountLocks() override {
    {
      std::lock_guard l(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    renewer_.join();
  }

  Result<AccountLockGuard> acquire_all(std::vector<std::string> accounts, std::string_view task,
                                       std::optional<Duration> wait_timeout) override {
    if (Status s = check(accounts, task); !s.ok()) return s;
    return acquire_impl(std::move(accounts), task, wait_timeout.value_or(options_.locks.wait_timeout),
                        /*count=*/true);
  }

  // Polls Redis on the Scheduler (every 10-50 ms) until the accounts are free
  // or the wait timeout passes; never parks a thread.
  Status acquire_all_async(std::vector<std::string> accounts, std::string_view task,
                           std::optional<Duration> wait_timeout, GuardCallback done) override {
    if (Status s = check(accounts, task); !s.ok()) return s;
    Scheduler* sched = options_.locks.scheduler;
    if (!sched) return Status::invalid_argument("acquire_all_async: the locks have no scheduler");
    auto st = std::make_shared<AsyncAttempt>();
    st->accounts = std::move(accounts);
    st->task = std::string(task);
    st->wait = wait_timeout.value_or(options_.locks.wait_timeout);
    st->start = std::chrono::steady_clock::now();
    st->done = std::move(done);
    if (sched->schedule_after(Duration::zero(), [this, st] { attempt_async(st); }) == 0) {
      return Status::shutdown("acquire_all_async: the scheduler is shut down");
    }
    return Status();
  }

 private:
  struct AsyncAttempt {
    std::vector<std::string> accounts;
    std::string task;
    Duration wait{};
    std::chrono::steady_clock::time_point start;
    GuardCallback done;
    bool conflicted = false;
    Duration poll = std::chrono::milliseconds(10);
  };

  static Status check(const std::vector<std::string>& accounts, std::string_view task) {
    if (accounts.empty()) return Status::invalid_argument("account locks: no accounts given");
    if (task.empty()) return Status::invalid_argument("account locks: task name is empty");
    for (const auto& a : accounts) {
      if (a.empty()) return Status::invalid_argument("account locks: empty account name");
    }
    return Status();
  }

  void attempt_async(const std::shared_ptr<AsyncAttempt>& st) {
    auto r = acquire_impl(st->accounts, st->task, Duration::zero(), /*count=*/false);
    auto now = std::chrono::steady_clock::now();
    if (r.ok() || r.status().code() != Code::kBusy) {
      if (r.ok()) acquisitions_.fetch_add(1, std::memory_order_relaxed);
      if (st->conflicted) {
        total_wait_ns_.fetch_add((now - st->start).count(), std::memory_order_relaxed);
      }
      st->done(std::move(r));
      return;
    }
    if (!st->conflicted) {
      st->conflicted = true;
      conflicts_.fetch_add(1, std::memory_order_relaxed);
      if (st->wait > Duration::zero()) waits_.fetch_add(1, std::memory_order_relaxed);
    }
    if (st->wait <= Duration::zero()) {
      refusals_.fetch_add(1, std::memory_order_relaxed);
      st->done(std::move(r));
      return;
    }
    if (now - st->start >= st->wait) {
      timeouts_.fetch_add(1, std::memory_order_relaxed);
      total_wait_ns_.fetch_add((now - st->start).count(), std::memory_order_relaxed);
      st->done(Status::timeout(r.status().message() + " (waited " +
                               std::to_string(std::chrono::duration<double>(st->wait).count()) +
                               " s)"));
      return;
    }
    Duration delay = std::min<Duration>(st->poll, st->wait - (now - st->start));
    st->poll = std::min<Duration>(st->poll * 2, std::chrono::milliseconds(50));
    if (options_.locks.scheduler->schedule_after(delay, [this, st] { attempt_async(st); }) == 0) {
      st->done(Status::shutdown("account locks: the scheduler shut down while waiting"));
    }
  }

  // One acquisition, polling while `wait` allows. `count` = update the
  // conflict/wait/refusal/timeout counters (the async form counts itself).
  Result<AccountLockGuard> acquire_impl(std::vector<std::string> accounts, std::string_view task,
                                        Duration wait, bool count) {
    std::sort(accounts.begin(), accounts.end());
    accounts.erase(std::unique(accounts.begin(), accounts.end()), accounts.end());
    std::vector<std::string> keys;
    for (const auto& a : accounts) keys.push_back(base_ + a);
    std::string value = tiers::format_lock_value(new_token(), unix_ms(), task);

    const bool strict = options_.locks.mode == LockMode::kStrict;
    auto start = std::chrono::steady_clock::now();
    auto deadline = start + wait;
    bool counted_conflict = false, counted_wait = false;
    Duration poll = std::chrono::milliseconds(10);
    for (;;) {
      Args k(keys.begin(), keys.end());
      auto r = pool_.eval(acquire_script_, k, {value, lease_ms_, strict ? "strict" : "warn"});
      if (!r.ok()) {
        return Status::unavailable("account locks: Redis cannot be reached, so no lock is "
                                   "assumed: " + r.status().to_string());
      }
      const redisReply* rep = r->get();
      if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
        return Status::io_error("account locks: unexpected reply from the acquire script");
      }
      if (rep->element[0]->integer == 1) {
        std::vector<std::string> mine = accounts;
        if (rep->elements > 1) {
          // Warn mode: some accounts were held by others.
          conflicts_.fetch_add(1, std::memory_order_relaxed);
          std::vector<std::string> held_by_others;
          for (std::size_t i = 1; i + 1 < rep->elements; i += 2) {
            auto idx = static_cast<std::size_t>(rep->element[i]->integer) - 1;
            LockValue p =
                tiers::parse_lock_value({rep->element[i + 1]->str, rep->element[i + 1]->len});
            emit("account '" + accounts[idx] + "' is already held by task '" + p.task +
                 "'; task '" + std::string(task) + "' proceeds anyway (warn mode)");
            held_by_others.push_back(keys[idx]);
          }
          std::erase_if(keys, [&](const std::string& k) {
            return std::find(held_by_others.begin(), held_by_others.end(), k) !=
                   held_by_others.end();
          });
        }
        if (counted_wait) {
          total_wait_ns_.fetch_add((std::chrono::steady_clock::now() - start).count(),
                                   std::memory_order_relaxed);
        }
        if (count) acquisitions_.fetch_add(1, std::memory_order_relaxed);
        std::uint64_t id;
        {
          std::lock_guard l(mu_);
          id = ++next_id_;
          holds_[id] = Hold{keys, value};
        }
        return make_guard(std::move(mine), id);
      }
      // Strict conflict.
      auto idx = static_cast<std::size_t>(rep->element[1]->integer) - 1;
      LockValue p = tiers::parse_lock_value({rep->element[2]->str, rep->element[2]->len});
      if (!counted_conflict) {
        counted_conflict = true;
        if (count) conflicts_.fetch_add(1, std::memory_order_relaxed);
      }
      std::string who = "account '" + accounts[idx] + "' is held by task '" + p.task + "'";
      if (wait <= Duration::zero()) {
        if (count) refusals_.fetch_add(1, std::memory_order_relaxed);
        return Status::busy(who);
      }
      if (!counted_wait) {
        counted_wait = true;
        if (count) waits_.fetch_add(1, std::memory_order_relaxed);
      }
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        if (count) {
          timeouts_.fetch_add(1, std::memory_order_relaxed);
          total_wait_ns_.fetch_add((now - start).count(), std::memory_order_relaxed);
        }
        return Status::timeout(who + " (waited " +
                               std::to_string(std::chrono::duration<double>(wait).count()) + " s)");
      }
      std::this_thread::sleep_for(std::min<Duration>(poll, deadline - now));
      poll = std::min<Duration>(poll * 2, std::chrono::milliseconds(50));
    }
  }

 public:
  std::optional<LockHolder> holder(std::string_view account) const override {
    auto r = const_cast<RedisPool&>(pool_).command({"GET", base_ + std::string(account)});
    if (!r.ok() || (*r)->type != REDIS_REPLY_STRING) return std::nullopt;
    return to_holder(std::string(account), {(*r)->str, (*r)->len});
  }

  std::vector<LockHolder> holders() const override {
    std::vector<LockHolder> out;
    auto& pool = const_cast<RedisPool&>(pool_);
    std::string cursor = "0";
    std::string pattern = base_ + "*";
    do {
      auto r = pool.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "200"});
      if (!r.ok() || (*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2) break;
      cursor.assign((*r)->element[0]->str, (*r)->element[0]->len);
      const redisReply* keys = (*r)->element[1];
      for (std::size_t i = 0; i < keys->elements; ++i) {
        std::string key(keys->element[i]->str, keys->element[i]->len);
        auto v = pool.command({"GET", key});
        if (!v.ok() || (*v)->type != REDIS_REPLY_STRING) continue;
        out.push_back(to_holder(key.substr(base_.size()), {(*v)->str, (*v)->len}));
      }
    } while (cursor != "0");
    std::sort(out.begin(), out.end(), [](const LockHolder& a, const LockHolder& b) {
      return a.account != b.account ? a.account < b.account : a.since < b.since;
    });
    return out;
  }

  AccountLockStats stats() const override {
    AccountLockStats s;
    s.acquisitions = acquisitions_.load(std::memory_order_relaxed);
    s.conflicts = conflicts_.load(std::memory_order_relaxed);
    s.waits = waits_.load(std::memory_order_relaxed);
    s.timeouts = timeouts_.load(std::memory_order_relaxed);
    s.refusals = refusals_.load(std::memory_order_relaxed);
    s.total_wait = Duration(total_wait_ns_.load(std::memory_order_relaxed));
    std::lock_guard l(mu_);
    for (const auto& [id, h] : holds_) s.held += h.keys.size();
    return s;
  }

  LockMode mode() const override { return options_.locks.mode; }

  void set_log(LogFn log) override {
    std::lock_guard l(log_mu_);
    options_.locks.log = std::move(log);
  }

 protected:
  void release(const std::vector<std::string>&, std::uint64_t token) noexcept override {
    Hold h;
    {
      std::lock_guard l(mu_);
      auto it = holds_.find(token);
      if (it == holds_.end()) return;
      h = std::move(it->second);
      holds_.erase(it);
    }
    if (h.keys.empty()) return;
    Args k(h.keys.begin(), h.keys.end());
    // If Redis is unreachable the lease expires the hold.
    (void)pool_.eval(release_script_, k, {h.value});
  }

 private:
  struct Hold {
    std::vector<std::string> keys;
    std::string value;
  };

  LockHolder to_holder(std::string account, std::string_view value) const {
    LockValue p = tiers::parse_lock_value(value);
    const auto age = tiers::lock_age(p.since_ms, unix_ms());
    return LockHolder{std::move(account), p.task, clock_->now() - age};
  }

  std::string new_token() {
    std::lock_guard l(rng_mu_);
    char buf[33];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng_()),
                  static_cast<unsigned long long>(rng_()));
    return buf;
  }

  void emit(const std::string& m) {
    LogFn log;
    {
      std::lock_guard l(log_mu_);
      log = options_.locks.log;
    }
    if (log) {
      log(m);
    } else {
      std::fprintf(stderr, "callcache: %s\n", m.c_str());
    }
  }

  void renew_loop() {
    auto period = std::max<Duration>(options_.lease / 3, std::chrono::milliseconds(10));
    std::unique_lock l(mu_);
    while (!stop_) {
      wake_.wait_for(l, period, [this] { return stop_; });
      if (stop_) break;
      std::vector<std::pair<std::uint64_t, Hold>> snapshot(holds_.begin(), holds_.end());
      l.unlock();
      for (auto& [id, h] : snapshot) {
        if (h.keys.empty()) continue;
        Args k(h.keys.begin(), h.keys.end());
        auto r = pool_.eval(renew_script_, k, {h.value, lease_ms_});
        if (r.ok() && (*r)->type == REDIS_REPLY_INTEGER && (*r)->integer > 0) {
          emit("a lease of task '" + tiers::parse_lock_value(h.value).task +
               "' was lost (expired before renewal); another task may hold the account now");
          std::lock_guard g(mu_);
          if (auto it = holds_.find(id); it != holds_.end()) it->second.keys.clear();
        }
      }
      l.lock();
    }
  }

  RedisAccountLockOptions options_;
  const Clock* clock_;
  mutable RedisPool pool_;
  mutable RedisScript acquire_script_, release_script_, renew_script_;
  std::string base_;
  std::string lease_ms_;

  std::mutex rng_mu_;  // guards rng_
  std::mt19937_64 rng_;
  std::mutex log_mu_;  // guards options_.locks.log

  mutable std::mutex mu_;  // guards holds_, next_id_, stop_
  std::condition_variable wake_;
  std::map<std::uint64_t, Hold> holds_;
  std::uint64_t next_id_ = 0;
  bool stop_ = false;
  std::thread renewer_;

  std::atomic<std::uint64_t> acquisitions_{0}, conflicts_{0}, waits_{0}, timeouts_{0},
      refusals_{0};
  std::atomic<std::int64_t> total_wait_ns_{0};
};

}  // namespace

Result<std::unique_ptr<AccountLocks>> make_redis_account_locks(RedisAccountLockOptions options) {
  if (options.lease < std::chrono::milliseconds(30)) {
    return Status::invalid_argument("redis account locks: lease must be >= 30ms");
  }
  if (options.locks.wait_timeout < Duration::zero()) {
    return Status::invalid_argument("redis account locks: wait_timeout must be >= 0");
  }
  if (options.redis.pool_size == 0) return Status::invalid_argument("redis: pool_size must be > 0");
  return std::unique_ptr<AccountLocks>(std::make_unique<RedisAccountLocks>(std::move(options)));
}

}  // namespace callcache
