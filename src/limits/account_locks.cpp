// The in-process AccountLocks: one mutex over a map of holds. Acquisition is
// all-or-nothing under that mutex (a caller never holds some accounts while
// waiting for others), so overlapping multi-account acquisitions cannot
// deadlock whatever their order.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <list>
#include <map>
#include <memory>
#include <mutex>

#include "callcache/account_locks.h"
#include "render_util.h"

namespace callcache {

// ---- Guard -------------------------------------------------------------------

AccountLockGuard::AccountLockGuard(AccountLockGuard&& other) noexcept
    : owner_(other.owner_), accounts_(std::move(other.accounts_)), token_(other.token_) {
  other.owner_ = nullptr;
}

AccountLockGuard& AccountLockGuard::operator=(AccountLockGuard&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = other.owner_;
    accounts_ = std::move(other.accounts_);
    token_ = other.token_;
    other.owner_ = nullptr;
  }
  return *this;
}

AccountLockGuard::~AccountLockGuard() { release(); }

void AccountLockGuard::release() noexcept {
  if (!owner_) return;
  owner_->release(accounts_, token_);
  owner_ = nullptr;
}

const char* lock_mode_name(LockMode mode) noexcept {
  return mode == LockMode::kStrict ? "strict" : "warn";
}

namespace {

std::string ago(TimePoint since, TimePoint now) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3gs ago", std::chrono::duration<double>(now - since).count());
  return buf;
}

std::string seconds_text(Duration d) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3gs", std::chrono::duration<double>(d).count());
  return buf;
}

// An asynchronous acquirer waiting for its accounts (strict mode).
struct Waiter {
  std::uint64_t id = 0;
  std::vector<std::string> accounts;  // sorted, unique
  std::string task;
  AccountLocks::GuardCallback done;
  TimePoint started{};
  Duration budget{0};
  Scheduler::TaskId timeout_task = 0;
};

// State shared by the locks and their scheduled timeout tasks, which hold it
// weakly so a task never touches destroyed state.
struct LockCore {
  LockCore(const AccountLockOptions& o)
      : mode(o.mode),
        wait_timeout(o.wait_timeout),
        clock(o.clock ? o.clock : o.scheduler ? &o.scheduler->clock() : &default_clock()),
        scheduler(o.scheduler),
        log(o.log) {}

  struct Hold {
    LockHolder who;
    std::uint64_t token;
  };

  // REQUIRES: mu held.
  const LockHolder* first_held(const std::vector<std::string>& accounts) const {
    for (const auto& a : accounts) {
      auto it = holds.find(a);
      if (it != holds.end() && !it->second.empty()) return &it->second.front().who;
    }
    return nullptr;
  }

  // REQUIRES: mu held. Records holds of `accounts` for `task`; returns their token.
  std::uint64_t take(const std::vector<std::string>& accounts, std::string_view task) {
    const std::uint64_t token = ++last_token;
    const TimePoint now = clock->now();
    for (const auto& a : accounts) holds[a].push_back(Hold{LockHolder{a, std::string(task), now}, token});
    ++stats.acquisitions;
    stats.held += accounts.size();
    return token;
  }

  // REQUIRES: mu held.
  Status busy_status(const LockHolder& h) const {
    return Status::busy("account '" + h.account + "' is held by task '" + h.task + "' (since " +
                        ago(h.since, clock->now()) + ")");
  }
  Status timeout_status(Duration budget, const LockHolder& h) const {
    return Status::timeout("waited " + seconds_text(budget) + " for account '" + h.account +
                           "' held by task '" + h.task + "' (since " + ago(h.since, clock->now()) +
                           ")");
  }

  // Logs outside mu (the callback may be slow or call back into the locks).
  void emit(const std::string& message) {
    std::lock_guard log_lock(log_mu);
    if (log) {
      log(message);
    } else {
      std::fprintf(stderr, "callcache: %s\n", message.c_str());
    }
  }

  const LockMode mode;
  const Duration wait_timeout;
  const Clock* clock;
  Scheduler* const scheduler;

  mutable std::mutex mu;  // guards holds, last_token, stats, waiters, last_waiter
  std::condition_variable cv;  // signalled on every release (blocking waiters)
  std::map<std::string, std::vector<Hold>, std::less<>> holds;  // absent = free
  std::uint64_t last_token = 0;
  AccountLockStats stats;
  std::list<Waiter> waiters;  // asynchronous acquirers, in arrival order
  std::uint64_t last_waiter = 0;

  std::mutex log_mu;  // guards log (and serialises log calls)
  AccountLocks::LogFn log;
};

class LocalAccountLocks final : public AccountLocks {
 public:
  explicit LocalAccountLocks(const AccountLockOptions& o) : core_(std::make_shared<LockCore>(o)) {}

  ~LocalAccountLocks() override {
    std::list<Waiter> orphans;
    {
      std::lock_guard lock(core_->mu);
      for (auto& w : core_->waiters) {
        if (w.timeout_task) core_->scheduler->cancel(w.timeout_task);
      }
      orphans.swap(core_->waiters);
    }
    for (auto& w : orphans) {
      w.done(Status::shutdown("account locks destroyed while task '" + w.task + "' waited"));
    }
  }

  Result<AccountLockGuard> acquire_all(std::vector<std::string> accounts, std::string_view task,
                                       std::optional<Duration> wait_timeout) override {
    Duration budget{};
    if (Status s = check(accounts, task, wait_timeout, budget); !s.ok()) return s;
    LockCore& c = *core_;
    std::unique_lock lock(c.mu);
    const TimePoint started = c.clock->now();
    const LockHolder* busy = c.first_held(accounts);
    if (busy) ++c.stats.conflicts;
    if (busy && c.mode == LockMode::kWarn) {
      std::string message = warn_message(*busy, task, started);
      lock.unlock();
      c.emit(message);
      lock.lock();
      busy = nullptr;
    }
    if (busy) {
      if (budget == Duration::zero()) {
        ++c.stats.refusals;
        return c.busy_status(*busy);
      }
      ++c.stats.waits;
      const TimePoint deadline =
          budget >= TimePoint::max() - started ? TimePoint::max() : started + budget;
      for (;;) {
        const TimePoint now = c.clock->now();
        if (now >= deadline) break;
        // Sliced, so a virtual clock advanced by another thread is noticed.
        c.cv.wait_for(lock, std::min<Duration>(deadline - now, std::chrono::milliseconds(10)));
        busy = c.first_held(accounts);
        if (!busy) break;
      }
      c.stats.total_wait += c.clock->now() - started;
      busy = c.first_held(accounts);
      if (busy) {
        ++c.stats.timeouts;
        return c.timeout_status(budget, *busy);
      }
    }
    const std::uint64_t token = c.take(accounts, task);
    return make_guard(std::move(accounts), token);
  }

  Status acquire_all_async(std::vector<std::string> accounts, std::string_view task,
                           std::optional<Duration> wait_timeout, GuardCallback done) override {
    Duration budget{};
    if (Status s = check(accounts, task, wait_timeout, budget); !s.ok()) return s;
    LockCore& c = *core_;
    if (!c.scheduler) return Status::invalid_argument("account lock: acquire_all_async needs a scheduler");
    std::unique_lock lock(c.mu);
    const TimePoint now = c.clock->now();
    const LockHolder* busy = c.first_held(accounts);
    if (busy) ++c.stats.conflicts;
    if (busy && c.mode == LockMode::kWarn) {
      std::string message = warn_message(*busy, task, now);
      lock.unlock();
      c.emit(message);
      lock.lock();
      busy = nullptr;
    }
    if (!busy) {
      const std::uint64_t token = c.take(accounts, task);
      lock.unlock();
      return deliver(std::move(done), make_guard(std::move(accounts), token));
    }
    if (budget == Duration::zero()) {
      ++c.stats.refusals;
      Status refused = c.busy_status(*busy);
      lock.unlock();
      return deliver(std::move(done), std::move(refused));
    }
    ++c.stats.waits;
    Waiter& w = c.waiters.emplace_back();
    w.id = ++c.last_waiter;
    w.accounts = std::move(accounts);
    w.task = std::string(task);
    w.done = std::move(done);
    w.started = now;
    w.budget = budget;
    if (budget < TimePoint::max() - now) {
      std::weak_ptr<LockCore> weak = core_;
      w.timeout_task = c.scheduler->schedule_at(now + budget, [weak, id = w.id] { time_out(weak, id); });
      if (w.timeout_task == 0) {
        c.waiters.pop_back();
        return Status::shutdown("account lock: the scheduler is shut down");
      }
    }
    return Status();
  }

  std::optional<LockHolder> holder(std::string_view account) const override {
    std::lock_guard lock(core_->mu);
    auto it = core_->holds.find(account);
    if (it == core_->holds.end() || it->second.empty()) return std::nullopt;
    return it->second.front().who;
  }

  std::vector<LockHolder> holders() const override {
    std::lock_guard lock(core_->mu);
    std::vector<LockHolder> out;
    for (const auto& [account, list] : core_->holds) {
      for (const auto& h : list) out.push_back(h.who);
    }
    return out;
  }

  AccountLockStats stats() const override {
    std::lock_guard lock(core_->mu);
    return core_->stats;
  }

  LockMode mode() const override { return core_->mode; }

  void set_log(LogFn log) override {
    std::lock_guard lock(core_->log_mu);
    core_->log = std::move(log);
  }

 protected:
  void release(const std::vector<std::string>& accounts, std::uint64_t token) noexcept override {
    struct Grant {
      std::vector<std::string> accounts;
      std::uint64_t token;
      GuardCallback done;
    };
    std::vector<Grant> grants;
    LockCore& c = *core_;
    {
      std::lock_guard lock(c.mu);
      for (const auto& a : accounts) {
        auto it = c.holds.find(a);
        if (it == c.holds.end()) continue;
        auto& list = it->second;
        list.erase(std::remove_if(list.begin(), list.end(),
                                  [&](const LockCore::Hold& h) { return h.token == token; }),
                   list.end());
        if (list.empty()) c.holds.erase(it);
        --c.stats.held;
      }
      // Asynchronous waiters whose accounts are now all free, oldest first.
      for (auto it = c.waiters.begin(); it != c.waiters.end();) {
        if (c.first_held(it->accounts)) {
          ++it;
          continue;
        }
        if (it->timeout_task) c.scheduler->cancel(it->timeout_task);
        c.stats.total_wait += c.clock->now() - it->started;
        const std::uint64_t t = c.take(it->accounts, it->task);
        grants.push_back(Grant{std::move(it->accounts), t, std::move(it->done)});
        it = c.waiters.erase(it);
      }
    }
    c.cv.notify_all();
    for (auto& g : grants) (void)deliver(std::move(g.done), make_guard(std::move(g.accounts), g.token));
  }

 private:
  Status check(std::vector<std::string>& accounts, std::string_view task,
               std::optional<Duration> wait_timeout, Duration& budget) const {
    if (accounts.empty()) return Status::invalid_argument("account lock: no account given");
    if (task.empty()) return Status::invalid_argument("account lock: the task id must not be empty");
    for (const auto& a : accounts) {
      if (a.empty()) return Status::invalid_argument("account lock: an account name is empty");
    }
    budget = wait_timeout.value_or(core_->wait_timeout);
    if (budget < Duration::zero()) {
      return Status::invalid_argument("account lock: wait timeout must not be negative");
    }
    std::sort(accounts.begin(), accounts.end());
    accounts.erase(std::unique(accounts.begin(), accounts.end()), accounts.end());
    return Status();
  }

  static std::string warn_message(const LockHolder& busy, std::string_view task, TimePoint now) {
    return "account '" + busy.account + "' is held by task '" + busy.task + "' (since " +
           ago(busy.since, now) + "); task '" + std::string(task) + "' proceeds anyway (warn mode)";
  }

  // Runs done(outcome) on the scheduler now. std::function needs a copyable
  // callable, so the (move-only) outcome travels in a shared_ptr.
  Status deliver(GuardCallback done, Result<AccountLockGuard> outcome) {
    auto payload = std::make_shared<std::pair<GuardCallback, Result<AccountLockGuard>>>(
        std::move(done), std::move(outcome));
    auto id = core_->scheduler->schedule_at(core_->clock->now(), [payload] {
      payload->first(std::move(payload->second));
    });
    if (id == 0) return Status::shutdown("account lock: the scheduler is shut down");
    return Status();
  }

  // A waiter's timeout: runs on the scheduler, holding the core weakly.
  static void time_out(const std::weak_ptr<LockCore>& weak, std::uint64_t id) {
    auto core = weak.lock();
    if (!core) return;
    GuardCallback done;
    Status outcome;
    {
      std::lock_guard lock(core->mu);
      auto it = std::find_if(core->waiters.begin(), core->waiters.end(),
                             [id](const Waiter& w) { return w.id == id; });
      if (it == core->waiters.end()) return;  // granted meanwhile
      const LockHolder* busy = core->first_held(it->accounts);
      outcome = busy ? core->timeout_status(it->budget, *busy)
                     : Status::timeout("waited " + seconds_text(it->budget) + " for the accounts");
      ++core->stats.timeouts;
      core->stats.total_wait += core->clock->now() - it->started;
      done = std::move(it->done);
      core->waiters.erase(it);
    }
    done(std::move(outcome));
  }

  std::shared_ptr<LockCore> core_;
};

}  // namespace

Result<std::unique_ptr<AccountLocks>> make_local_account_locks(AccountLockOptions options) {
  if (options.wait_timeout < Duration::zero()) {
    return Status::invalid_argument("account lock option wait_timeout must not be negative");
  }
  if (options.scheduler && options.clock && &options.scheduler->clock() != options.clock) {
    return Status::invalid_argument("account locks: the scheduler must run on the locks' clock");
  }
  return std::unique_ptr<AccountLocks>(std::make_unique<LocalAccountLocks>(options));
}

std::string AccountLockStats::to_json() const {
  return "{\"acquisitions\":" + std::to_string(acquisitions) +
         ",\"conflicts\":" + std::to_string(conflicts) + ",\"waits\":" + std::to_string(waits) +
         ",\"timeouts\":" + std::to_string(timeouts) + ",\"refusals\":" + std::to_string(refusals) +
         ",\"total_wait_seconds\":" + limits::seconds_number(total_wait) +
         ",\"held\":" + std::to_string(held) + "}";
}

std::string AccountLockStats::to_prometheus() const {
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, const std::string& v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " " + v + "\n";
  };
  metric("callcache_account_lock_acquisitions_total", "counter", "Successful acquisitions.",
         std::to_string(acquisitions));
  metric("callcache_account_lock_conflicts_total", "counter", "Acquisitions that found an account held.",
         std::to_string(conflicts));
  metric("callcache_account_lock_waits_total", "counter", "Strict acquisitions that waited.",
         std::to_string(waits));
  metric("callcache_account_lock_timeouts_total", "counter", "Strict acquisitions that timed out.",
         std::to_string(timeouts));
  metric("callcache_account_lock_refusals_total", "counter", "Strict acquisitions refused at once.",
         std::to_string(refusals));
  metric("callcache_account_lock_wait_seconds_total", "counter", "Time spent waiting.",
         limits::seconds_number(total_wait));
  metric("callcache_account_lock_held", "gauge", "Account holds now.", std::to_string(held));
  return out;
}

}  // namespace callcache
