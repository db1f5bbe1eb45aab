// Account locks: strict and warn modes, RAII, all-or-nothing multi-account
// acquisition without deadlock (the concurrent cases run under TSan in CI).
#include "callcache/account_locks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <stdexcept>
#include <thread>

namespace callcache {
namespace account_locks_test {

using std::chrono::seconds;

std::unique_ptr<AccountLocks> make(LockMode mode, const Clock& clock, Duration wait = Duration::zero()) {
  AccountLockOptions o;
  o.mode = mode;
  o.clock = &clock;
  o.wait_timeout = wait;
  auto r = make_local_account_locks(std::move(o));
  EXPECT_TRUE(r.ok());
  return std::move(r).value();
}

// Spins (yielding) until `pred` holds: for "the other thread is now waiting".
template <class Pred>
void wait_for(Pred pred) {
  while (!pred()) std::this_thread::yield();
}

TEST(AccountLocks, StrictRefusesAtOnceNamingTheHolder) {
  ManualClock clock;
  auto locks = make(LockMode::kStrict, clock);
  auto g1 = locks->acquire("acc1", "task-A");
  ASSERT_TRUE(g1.ok());
  clock.advance(seconds(2));
  auto g2 = locks->acquire("acc1", "task-B");
  ASSERT_FALSE(g2.ok());
  EXPECT_EQ(g2.status().code(), Code::kBusy);
  EXPECT_NE(g2.status().message().find("'acc1' is held by task 'task-A' (since 2s ago)"),
            std::string::npos)
      << g2.status().message();
  auto h = locks->holder("acc1");
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->task, "task-A");
  EXPECT_EQ(h->since, clock.now() - seconds(2));
  EXPECT_TRUE(locks->acquire("acc2", "task-B").ok());  // other accounts are free
  g1->release();
  EXPECT_FALSE(locks->holder("acc1").has_value());
  EXPECT_TRUE(locks->acquire("acc1", "task-B").ok());
  auto st = locks->stats();
  EXPECT_EQ(st.acquisitions, 3u);
  EXPECT_EQ(st.conflicts, 1u);
  EXPECT_EQ(st.refusals, 1u);
  EXPECT_EQ(st.held, 0u);  // every guard above is gone
}

TEST(AccountLocks, StrictWaitTimesOutOnTheLocksClock) {
  ManualClock clock;
  auto locks = make(LockMode::kStrict, clock, seconds(5));
  auto g1 = locks->acquire("acc1", "task-A");
  ASSERT_TRUE(g1.ok());
  Status outcome;
  std::thread t([&] { outcome = locks->acquire("acc1", "task-B").status(); });
  wait_for([&] { return locks->stats().waits == 1; });
  clock.advance(seconds(4));
  clock.advance(seconds(1));
  t.join();
  EXPECT_EQ(outcome.code(), Code::kTimeout);
  EXPECT_NE(outcome.message().find("waited 5s for account 'acc1' held by task 'task-A'"),
            std::string::npos)
      << outcome.message();
  auto st = locks->stats();
  EXPECT_EQ(st.timeouts, 1u);
  EXPECT_GE(st.total_wait, seconds(5));
}

TEST(AccountLocks, StrictWaiterGetsTheAccountWhenReleased) {
  ManualClock clock;
  auto locks = make(LockMode::kStrict, clock);
  auto g1 = locks->acquire("acc1", "task-A");
  ASSERT_TRUE(g1.ok());
  std::string holder_seen;
  std::thread t([&] {
    auto g = locks->acquire("acc1", "task-B", seconds(60));  // per-call timeout
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    holder_seen = locks->holder("acc1")->task;
  });
  wait_for([&] { return locks->stats().waits == 1; });
  g1 = Status::cancelled("dropped");  // destroys the guard: releases
  t.join();
  EXPECT_EQ(holder_seen, "task-B");
  EXPECT_EQ(locks->stats().timeouts, 0u);
}

TEST(AccountLocks, WarnModeProceedsLogsAndCounts) {
  ManualClock clock;
  auto locks = make(LockMode::kWarn, clock);
  std::vector<std::string> logged;
  locks->set_log([&](std::string_view m) { logged.emplace_back(m); });
  auto g1 = locks->acquire("acc1", "task-A");
  auto g2 = locks->acquire("acc1", "task-B");
  ASSERT_TRUE(g1.ok());
  ASSERT_TRUE(g2.ok());
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("held by task 'task-A'"), std::string::npos) << logged[0];
  EXPECT_NE(logged[0].find("task 'task-B' proceeds anyway (warn mode)"), std::string::npos);
  EXPECT_EQ(locks->holders().size(), 2u);
  EXPECT_EQ(locks->holder("acc1")->task, "task-A");
  g1->release();
  EXPECT_EQ(locks->holder("acc1")->task, "task-B");
  auto st = locks->stats();
  EXPECT_EQ(st.conflicts, 1u);
  EXPECT_EQ(st.acquisitions, 2u);
  EXPECT_EQ(st.held, 1u);
  EXPECT_EQ(locks->mode(), LockMode::kWarn);
}

TEST(AccountLocks, MultiAccountAcquisitionIsAllOrNothing) {
  ManualClock clock;
  auto locks = make(LockMode::kStrict, clock);
  auto b = locks->acquire("b", "task-A");
  ASSERT_TRUE(b.ok());
  auto all = locks->acquire_all({"c", "a", "b"}, "task-B");
  ASSERT_FALSE(all.ok());
  EXPECT_NE(all.status().message().find("'b' is held by task 'task-A'"), std::string::npos);
  EXPECT_FALSE(locks->holder("a").has_value());  // nothing partial
  EXPECT_FALSE(locks->holder("c").has_value());
  b->release();
  auto ok = locks->acquire_all({"c", "a", "b", "a"}, "task-B");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->accounts(), (std::vector<std::string>{"a", "b", "c"}));
  auto hs = locks->holders();
  ASSERT_EQ(hs.size(), 3u);
  for (const auto& h : hs) EXPECT_EQ(h.task, "task-B");
}

TEST(AccountLocks, GuardReleasesOnException) {
  ManualClock clock;
  auto locks = make(LockMode::kStrict, clock);
  try {
    auto g = locks->acquire_all({"x", "y"}, "task-A");
    ASSERT_TRUE(g.ok());
    EXPECT_TRUE(locks->holder("x").has_value());
    throw std::runtime_error("task failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(locks->holder("x").has_value());
  EXPECT_FALSE(locks->holder("y").has_value());
  EXPECT_TRUE(locks->acquire_all({"y", "x"}, "task-B").ok());
}

TEST(AccountLocks, GuardsMoveAndReleaseOnce) {
  ManualClock clock;
  auto locks = make(LockMode::kStrict, clock);
  AccountLockGuard outer;
  EXPECT_FALSE(outer.holds());
  {
    auto g = locks->acquire("acc", "task-A");
    ASSERT_TRUE(g.ok());
    outer = std::move(g.value());
    EXPECT_FALSE(g->holds());
  }
  EXPECT_TRUE(outer.holds());
  EXPECT_EQ(locks->holder("acc")->task, "task-A");
  AccountLockGuard moved(std::move(outer));
  moved.release();
  moved.release();
  EXPECT_FALSE(locks->holder("acc").has_value());
  EXPECT_EQ(locks->stats().held, 0u);
}

TEST(AccountLocks, BadArgumentsAreRefused) {
  ManualClock clock;
  auto locks = make(LockMode::kStrict, clock);
  EXPECT_EQ(locks->acquire_all({}, "t").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(locks->acquire("a", "").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(locks->acquire("", "t").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(locks->acquire("a", "t", -seconds(1)).status().code(), Code::kInvalidArgument);
  AccountLockOptions o;
  o.wait_timeout = -seconds(1);
  auto r = make_local_account_locks(std::move(o));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("wait_timeout"), std::string::npos);
}

TEST(AccountLocks, StatsRender) {
  ManualClock clock;
  auto locks = make(LockMode::kStrict, clock);
  auto g = locks->acquire("a", "t1");
  (void)locks->acquire("a", "t2");
  auto st = locks->stats();
  EXPECT_EQ(st.to_json(),
            "{\"acquisitions\":1,\"conflicts\":1,\"waits\":0,\"timeouts\":0,\"refusals\":1,"
            "\"total_wait_seconds\":0,\"held\":1}");
  EXPECT_NE(st.to_prometheus().find("callcache_account_lock_conflicts_total 1\n"), std::string::npos);
}

struct AsyncFixture {
  ManualClock clock;
  ManualScheduler sched{clock};
  std::unique_ptr<AccountLocks> locks;
  std::vector<Result<AccountLockGuard>> outcomes;

  explicit AsyncFixture(Duration wait = Duration::zero()) {
    AccountLockOptions o;
    o.scheduler = &sched;
    o.wait_timeout = wait;
    locks = std::move(make_local_account_locks(std::move(o))).value();
  }
  AccountLocks::GuardCallback record() {
    return [this](Result<AccountLockGuard> r) { outcomes.push_back(std::move(r)); };
  }
};

TEST(AccountLocksAsync, GrantsFreeAccountsOnTheSchedulerNeverInline) {
  AsyncFixture f;
  ASSERT_TRUE(f.locks->acquire_all_async({"a", "b"}, "task-A", std::nullopt, f.record()).ok());
  EXPECT_TRUE(f.outcomes.empty());
  EXPECT_EQ(f.locks->holder("a")->task, "task-A");  // reserved at once
  f.sched.run_due();
  ASSERT_EQ(f.outcomes.size(), 1u);
  ASSERT_TRUE(f.outcomes[0].ok());
  EXPECT_EQ(f.outcomes[0]->accounts(), (std::vector<std::string>{"a", "b"}));
  // Busy without a wait budget: kBusy naming the holder, on the scheduler.
  ASSERT_TRUE(f.locks->acquire_all_async({"b"}, "task-B", std::nullopt, f.record()).ok());
  f.sched.run_due();
  ASSERT_EQ(f.outcomes.size(), 2u);
  EXPECT_EQ(f.outcomes[1].status().code(), Code::kBusy);
  EXPECT_NE(f.outcomes[1].status().message().find("task 'task-A'"), std::string::npos);
  f.outcomes.clear();  // drops the guard: releases a and b
  EXPECT_FALSE(f.locks->holder("a").has_value());
}

TEST(AccountLocksAsync, WaiterIsGrantedWhenTheHolderReleases) {
  AsyncFixture f(seconds(5));
  auto held = f.locks->acquire("b", "task-A");
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(f.locks->acquire_all_async({"b", "c"}, "task-B", std::nullopt, f.record()).ok());
  f.sched.advance(seconds(2));
  EXPECT_TRUE(f.outcomes.empty());
  EXPECT_FALSE(f.locks->holder("c").has_value());  // nothing partial while waiting
  held->release();
  f.sched.run_due();
  ASSERT_EQ(f.outcomes.size(), 1u);
  ASSERT_TRUE(f.outcomes[0].ok()) << f.outcomes[0].status().to_string();
  EXPECT_EQ(f.locks->holder("b")->task, "task-B");
  EXPECT_EQ(f.locks->holder("c")->task, "task-B");
  f.sched.advance(seconds(10));  // the cancelled timeout never fires
  EXPECT_EQ(f.outcomes.size(), 1u);
  auto st = f.locks->stats();
  EXPECT_EQ(st.waits, 1u);
  EXPECT_EQ(st.timeouts, 0u);
  EXPECT_EQ(st.total_wait, seconds(2));
}

TEST(AccountLocksAsync, WaiterTimesOutInVirtualTime) {
  AsyncFixture f;
  auto held = f.locks->acquire("a", "task-A");
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(f.locks->acquire_all_async({"a"}, "task-B", seconds(3), f.record()).ok());
  f.sched.advance(seconds(2));
  EXPECT_TRUE(f.outcomes.empty());
  f.sched.advance(seconds(1));
  ASSERT_EQ(f.outcomes.size(), 1u);
  EXPECT_EQ(f.outcomes[0].status().code(), Code::kTimeout);
  EXPECT_NE(f.outcomes[0].status().message().find("waited 3s for account 'a' held by task 'task-A'"),
            std::string::npos)
      << f.outcomes[0].status().message();
  held->release();  // nobody is waiting any more
  EXPECT_FALSE(f.locks->holder("a").has_value());
  EXPECT_EQ(f.locks->stats().timeouts, 1u);
}

TEST(AccountLocksAsync, BadArgumentsAndNoSchedulerAreErrors) {
  AccountLockOptions no_sched;
  auto locks = std::move(make_local_account_locks(no_sched)).value();
  bool called = false;
  auto cb = [&](Result<AccountLockGuard>) { called = true; };
  EXPECT_EQ(locks->acquire_all_async({"a"}, "t", std::nullopt, cb).code(), Code::kInvalidArgument);
  AsyncFixture f;
  EXPECT_EQ(f.locks->acquire_all_async({}, "t", std::nullopt, cb).code(), Code::kInvalidArgument);
  EXPECT_EQ(f.locks->acquire_all_async({"a"}, "", std::nullopt, cb).code(), Code::kInvalidArgument);
  f.sched.run_due();
  EXPECT_FALSE(called);
}

TEST(AccountLocksAsyncConcurrency, AsyncAndBlockingAcquirersShareAccountsSafely) {
  ManualClock clock;
  auto sched = make_thread_scheduler(clock);  // callbacks on a real scheduler thread
  AccountLockOptions o;
  o.scheduler = sched.get();
  o.clock = &clock;
  o.wait_timeout = std::chrono::hours(1);
  auto locks = std::move(make_local_account_locks(o)).value();
  constexpr int kRounds = 200;
  std::atomic<int> in_use{0}, violations{0}, granted{0};
  std::thread blocking([&] {
    for (int i = 0; i < kRounds; ++i) {
      auto g = locks->acquire_all({"x", "y"}, "blocking");
      ASSERT_TRUE(g.ok()) << g.status().to_string();
      if (in_use.fetch_add(1) != 0) violations.fetch_add(1);
      std::this_thread::yield();
      in_use.fetch_sub(1);
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    std::atomic<bool> done{false};
    ASSERT_TRUE(locks
                    ->acquire_all_async({"y"}, "async", std::nullopt,
                                        [&](Result<AccountLockGuard> r) {
                                          if (r.ok()) {
                                            granted.fetch_add(1);
                                            if (in_use.fetch_add(1) != 0) violations.fetch_add(1);
                                            in_use.fetch_sub(1);
                                            r->release();  // before `done`: the test then ends
                                          }
                                          done = true;
                                        })
                    .ok());
    while (!done.load()) std::this_thread::yield();
  }
  blocking.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(granted.load(), kRounds);
  EXPECT_TRUE(locks->holders().empty());
}

TEST(AccountLocksConcurrency, OverlappingSetsInAnyOrderNeverDeadlockOrOverlap) {
  SteadyClock clock;
  auto locks = make(LockMode::kStrict, clock, std::chrono::hours(1));
  constexpr int kAccounts = 6, kThreads = 6, kRounds = 300;
  std::atomic<int> in_use[kAccounts] = {};
  std::atomic<int> violations{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      const std::string task = "task-" + std::to_string(t);
      for (int i = 0; i < kRounds; ++i) {
        std::vector<int> ids(kAccounts);
        for (int k = 0; k < kAccounts; ++k) ids[k] = k;
        std::shuffle(ids.begin(), ids.end(), rng);
        ids.resize(1 + rng() % 3);  // 1 to 3 accounts, in random order
        std::vector<std::string> names;
        for (int id : ids) names.push_back("acc" + std::to_string(id));
        auto g = locks->acquire_all(names, task);
        ASSERT_TRUE(g.ok()) << g.status().to_string();
        for (int id : ids) {
          if (in_use[id].fetch_add(1) != 0) violations.fetch_add(1);
        }
        std::this_thread::yield();
        for (int id : ids) in_use[id].fetch_sub(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(violations.load(), 0);
  auto st = locks->stats();
  EXPECT_EQ(st.acquisitions, static_cast<std::uint64_t>(kThreads * kRounds));
  EXPECT_EQ(st.timeouts, 0u);
  EXPECT_EQ(st.held, 0u);
  EXPECT_TRUE(locks->holders().empty());
}

}  // namespace account_locks_test
}  // namespace callcache
