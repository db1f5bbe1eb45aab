// The in-process AccountLocks: one mutex over a map of holds. Acquisition is
// all-or-nothing under that mutex (a caller never holds some accounts while
// waiting for others), so overlapping multi-account acquisitions cannot
// deadlock whatever their order.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <map>
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

class LocalAccountLocks final : public AccountLocks {
 public:
  explicit LocalAccountLocks(AccountLockOptions o)
      : mode_(o.mode),
        wait_timeout_(o.wait_timeout),
        clock_(o.clock ? o.clock : &default_clock()),
        log_(std::move(o.log)) {}

  ~LocalAccountLocks() override = default;

  Result<AccountLockGuard> acquire_all(std::vector<std::string> accounts, std::string_view task,
                                       std::optional<Duration> wait_timeout) override {
    if (accounts.empty()) return Status::invalid_argument("account lock: no account given");
    if (task.empty()) return Status::invalid_argument("account lock: the task id must not be empty");
    for (const auto& a : accounts) {
      if (a.empty()) return Status::invalid_argument("account lock: an account name is empty");
    }
    const Duration budget = wait_timeout.value_or(wait_timeout_);
    if (budget < Duration::zero()) {
      return Status::invalid_argument("account lock: wait timeout must not be negative");
    }
    std::sort(accounts.begin(), accounts.end());
    accounts.erase(std::unique(accounts.begin(), accounts.end()), accounts.end());

    std::unique_lock lock(mu_);
    const TimePoint started = clock_->now();
    const LockHolder* busy = first_held(accounts);
    if (busy) ++stats_.conflicts;
    if (busy && mode_ == LockMode::kWarn) {
      std::string message = "account '" + busy->account + "' is held by task '" + busy->task +
                            "' (since " + ago(busy->since, started) + "); task '" +
                            std::string(task) + "' proceeds anyway (warn mode)";
      emit(lock, message);
      busy = nullptr;
    }
    if (busy) {
      if (budget == Duration::zero()) {
        ++stats_.refusals;
        return Status::busy("account '" + busy->account + "' is held by task '" + busy->task +
                            "' (since " + ago(busy->since, started) + ")");
      }
      ++stats_.waits;
      const TimePoint deadline =
          budget >= TimePoint::max() - started ? TimePoint::max() : started + budget;
      for (;;) {
        const TimePoint now = clock_->now();
        if (now >= deadline) break;
        // Sliced, so a virtual clock advanced by another thread is noticed.
        cv_.wait_for(lock, std::min<Duration>(deadline - now, std::chrono::milliseconds(10)));
        busy = first_held(accounts);
        if (!busy) break;
      }
      stats_.total_wait += clock_->now() - started;
      busy = first_held(accounts);
      if (busy) {
        ++stats_.timeouts;
        return Status::timeout("waited " + seconds_text(budget) + " for account '" + busy->account +
                               "' held by task '" + busy->task + "' (since " +
                               ago(busy->since, clock_->now()) + ")");
      }
    }
    const std::uint64_t token = ++last_token_;
    const TimePoint now = clock_->now();
    for (const auto& a : accounts) {
      holds_[a].push_back(Hold{LockHolder{a, std::string(task), now}, token});
    }
    ++stats_.acquisitions;
    stats_.held += accounts.size();
    return make_guard(std::move(accounts), token);
  }

  std::optional<LockHolder> holder(std::string_view account) const override {
    std::lock_guard lock(mu_);
    auto it = holds_.find(account);
    if (it == holds_.end() || it->second.empty()) return std::nullopt;
    return it->second.front().who;
  }

  std::vector<LockHolder> holders() const override {
    std::lock_guard lock(mu_);
    std::vector<LockHolder> out;
    for (const auto& [account, list] : holds_) {
      for (const auto& h : list) out.push_back(h.who);
    }
    return out;
  }

  AccountLockStats stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

  LockMode mode() const override { return mode_; }

  void set_log(LogFn log) override {
    std::lock_guard lock(log_mu_);
    log_ = std::move(log);
  }

 protected:
  void release(const std::vector<std::string>& accounts, std::uint64_t token) noexcept override {
    {
      std::lock_guard lock(mu_);
      for (const auto& a : accounts) {
        auto it = holds_.find(a);
        if (it == holds_.end()) continue;
        auto& list = it->second;
        list.erase(std::remove_if(list.begin(), list.end(),
                                  [&](const Hold& h) { return h.token == token; }),
                   list.end());
        if (list.empty()) holds_.erase(it);
        --stats_.held;
      }
    }
    cv_.notify_all();
  }

 private:
  struct Hold {
    LockHolder who;
    std::uint64_t token;
  };

  // REQUIRES: mu_ held.
  const LockHolder* first_held(const std::vector<std::string>& accounts) const {
    for (const auto& a : accounts) {
      auto it = holds_.find(a);
      if (it != holds_.end() && !it->second.empty()) return &it->second.front().who;
    }
    return nullptr;
  }

  // Logs outside mu_ (the callback may be slow or call back into us).
  void emit(std::unique_lock<std::mutex>& lock, const std::string& message) {
    lock.unlock();
    {
      std::lock_guard log_lock(log_mu_);
      if (log_) {
        log_(message);
      } else {
        std::fprintf(stderr, "callcache: %s\n", message.c_str());
      }
    }
    lock.lock();
  }

  const LockMode mode_;
  const Duration wait_timeout_;
  const Clock* clock_;

  mutable std::mutex mu_;  // guards holds_, last_token_, stats_
  std::condition_variable cv_;  // signalled on every release
  std::map<std::string, std::vector<Hold>, std::less<>> holds_;  // absent = free
  std::uint64_t last_token_ = 0;
  AccountLockStats stats_;

  std::mutex log_mu_;  // guards log_ (and serialises log calls)
  LogFn log_;
};

}  // namespace

Result<std::unique_ptr<AccountLocks>> make_local_account_locks(AccountLockOptions options) {
  if (options.wait_timeout < Duration::zero()) {
    return Status::invalid_argument("account lock option wait_timeout must not be negative");
  }
  return std::unique_ptr<AccountLocks>(std::make_unique<LocalAccountLocks>(std::move(options)));
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
