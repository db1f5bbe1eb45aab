// callcache/account_locks.h — one task per account at a time.
//
// Two tasks driving one user account at once (two workers reacting with the
// same session) is what gets accounts flagged. AccountLocks lets a task claim
// one or several accounts for as long as an RAII guard lives:
//
//   auto guard = locks->acquire("acc-17", "likebot-task-3");
//   if (!guard.ok()) return guard.status();   // kBusy names the holder
//   ... drive the account ...                 // released when `guard` dies
//
// Modes:
//  - strict: a second acquirer fails at once with kBusy naming the holding
//    task, or (with a wait timeout) waits up to the timeout, then kTimeout.
//  - warn: a second acquirer proceeds; the conflict is logged through the log
//    callback and counted (for adopting locks in code that is not ready).
// Waiting blocks the calling thread (acquire_all) or not (acquire_all_async,
// which completes through a Scheduler). Acquiring several accounts is
// all-or-nothing: the accounts are taken in one step, in sorted order, never
// one by one, so tasks acquiring overlapping sets in any order cannot deadlock.
//
// Locks are not re-entrant: a task acquiring an account it already holds is a
// conflict like any other.
//
// This header is the interface; make_local_account_locks() builds the
// in-process implementation (a Redis one, shared by processes, implements
// the same interface).
//
// Thread-safety: all AccountLocks members may be called from any thread. A
// guard is a move-only value used by one thread at a time; it must not
// outlive the AccountLocks that issued it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache {

enum class LockMode : std::uint8_t {
  kStrict,  // conflicts fail (at once or after the wait timeout)
  kWarn,    // conflicts proceed, are logged and counted
};

// One task holding one account.
struct LockHolder {
  std::string account;
  std::string task;
  TimePoint since{};  // on the locks' clock
};

struct AccountLockStats {
  std::uint64_t acquisitions = 0;  // successful acquire calls (a multi-account call counts once)
  std::uint64_t conflicts = 0;     // acquire calls that found an account held (any mode)
  std::uint64_t waits = 0;         // strict acquire calls that waited for a holder
  std::uint64_t timeouts = 0;      // strict acquire calls that gave up after waiting
  std::uint64_t refusals = 0;      // strict acquire calls that failed at once (no wait allowed)
  Duration total_wait{0};          // time strict acquirers spent waiting (successful or not)
  std::uint64_t held = 0;          // account holds now (warn mode may count two on one account)

  // {"acquisitions":N,...,"total_wait_seconds":X,"held":N}
  std::string to_json() const;
  // e.g. callcache_account_lock_conflicts_total 2
  std::string to_prometheus() const;
};

class AccountLocks;

// Releases its accounts when destroyed (or on release()). Move-only.
class AccountLockGuard {
 public:
  AccountLockGuard() = default;  // holds nothing
  AccountLockGuard(AccountLockGuard&& other) noexcept;
  AccountLockGuard& operator=(AccountLockGuard&& other) noexcept;
  AccountLockGuard(const AccountLockGuard&) = delete;
  AccountLockGuard& operator=(const AccountLockGuard&) = delete;
  ~AccountLockGuard();

  // Releases now (no-op when empty). Waiters may proceed.
  void release() noexcept;
  bool holds() const noexcept { return owner_ != nullptr; }
  // The accounts held, sorted and without duplicates.
  const std::vector<std::string>& accounts() const noexcept { return accounts_; }

 private:
  friend class AccountLocks;
  AccountLockGuard(AccountLocks* owner, std::vector<std::string> accounts, std::uint64_t token)
      : owner_(owner), accounts_(std::move(accounts)), token_(token) {}

  AccountLocks* owner_ = nullptr;
  std::vector<std::string> accounts_;
  std::uint64_t token_ = 0;
};

class AccountLocks {
 public:
  using LogFn = std::function<void(std::string_view message)>;
  // Use the configured wait timeout.
  static constexpr std::optional<Duration> kDefaultWait = std::nullopt;

  virtual ~AccountLocks() = default;

  // Claims `account` for `task`. See acquire_all().
  Result<AccountLockGuard> acquire(std::string_view account, std::string_view task,
                                   std::optional<Duration> wait_timeout = kDefaultWait) {
    return acquire_all({std::string(account)}, task, wait_timeout);
  }

  // Claims every account in `accounts` for `task`, all or none.
  // Strict mode: if any is held, waits up to `wait_timeout` (default: the
  // configured one; zero = do not wait) for all of them to be free at once;
  // returns kBusy (no wait allowed) or kTimeout, naming an account and the
  // task holding it. Warn mode: always succeeds; each conflict is logged and
  // counted. Blocks the calling thread while waiting (on the locks' clock).
  // REQUIRES: `accounts` non-empty with non-empty names, `task` non-empty
  // (kInvalidArgument otherwise). Duplicates are ignored.
  virtual Result<AccountLockGuard> acquire_all(std::vector<std::string> accounts,
                                               std::string_view task,
                                               std::optional<Duration> wait_timeout = kDefaultWait) = 0;

  // Completion-callback form of acquire_all(), no thread parked: `done`
  // receives the guard (or kBusy / kTimeout, as acquire_all() would return)
  // on the Scheduler, never inside this call. A waiting acquirer is granted
  // its accounts, all at once, as soon as they are all free. Guards handed to
  // callbacks still queued on the Scheduler count as live guards: drain the
  // Scheduler before destroying the locks.
  // Returns an error without calling `done` for bad arguments
  // (kInvalidArgument, as acquire_all()) or when the locks have no Scheduler
  // (kInvalidArgument) or it is shut down (kShutdown).
  using GuardCallback = std::function<void(Result<AccountLockGuard>)>;
  virtual Status acquire_all_async(std::vector<std::string> accounts, std::string_view task,
                                   std::optional<Duration> wait_timeout, GuardCallback done) = 0;

  // The task holding `account` (the first one, in warn mode), or nullopt.
  virtual std::optional<LockHolder> holder(std::string_view account) const = 0;
  // Every hold, sorted by account then by since.
  virtual std::vector<LockHolder> holders() const = 0;
  virtual AccountLockStats stats() const = 0;
  virtual LockMode mode() const = 0;
  // Replaces the callback that receives conflict messages (warn mode).
  // nullptr = write them to stderr. Safe to call at any time; the callback
  // runs on the acquiring thread, never under the locks' internal mutex.
  virtual void set_log(LogFn log) = 0;

 protected:
  // Builds a guard that calls release(accounts, token) once.
  AccountLockGuard make_guard(std::vector<std::string> accounts, std::uint64_t token) {
    return AccountLockGuard(this, std::move(accounts), token);
  }
  // Releases the holds a guard made. Called exactly once per guard.
  virtual void release(const std::vector<std::string>& accounts, std::uint64_t token) noexcept = 0;

 private:
  friend class AccountLockGuard;
};

struct AccountLockOptions {
  LockMode mode = LockMode::kStrict;
  // Strict mode: how long an acquirer waits by default for held accounts;
  // zero = fail at once with kBusy. Must be >= 0.
  Duration wait_timeout{0};
  // Time source for `since` and waits; nullptr = default_clock(). Must
  // outlive the locks.
  const Clock* clock = nullptr;
  // See AccountLocks::set_log().
  AccountLocks::LogFn log;
  // Runs acquire_all_async() callbacks and wait timeouts; nullptr = no async
  // form. Must outlive the locks and use `clock` (nullptr clock = its clock).
  Scheduler* scheduler = nullptr;
};

// The in-process implementation. kInvalidArgument naming the option when
// the options are bad.
Result<std::unique_ptr<AccountLocks>> make_local_account_locks(AccountLockOptions options);

const char* lock_mode_name(LockMode mode) noexcept;

}  // namespace callcache
