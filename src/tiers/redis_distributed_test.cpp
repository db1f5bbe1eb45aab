// Distributed primitives over a real redis-server: the shared rate limiter,
// account locks, and two real processes sharing one Redis (label "redis").
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <cstdlib>
#include <thread>

#include "callcache/redis_backend.h"
#include "callcache/tiered_cache.h"
#include "redis_fixture.h"
#include "redis_pool.h"
#include "test_util.h"

namespace callcache {
namespace redis_distributed_test {

using namespace std::chrono_literals;
using tiers::testing::ChildGuard;
using tiers::testing::read_line;
using tiers::testing::spawn_self;

CallAttributes call_of(std::string_view bot, std::string_view method = {},
                       std::optional<std::int64_t> chat = {}) {
  CallAttributes c;
  c.bot = bot;
  c.method = method;
  c.chat = chat;
  return c;
}

RedisOptions options_for(const std::string& url) {
  RedisOptions o;
  EXPECT_TRUE(parse_redis_url(url, o).ok());
  o.connect_timeout = 500ms;
  o.command_timeout = 500ms;
  return o;
}

Rule per_bot(std::uint64_t limit, Duration period = 1s) {
  Rule r;
  r.name = "per_bot";
  r.limit = limit;
  r.period = period;
  r.key = key_scope::kBot;
  return r;
}

Rule per_chat() {
  Rule r;
  r.name = "per_chat";
  r.limit = 1;
  r.period = 1s;
  r.key = key_scope::kBot | key_scope::kChat;
  return r;
}

std::unique_ptr<RateLimiter> limiter(const std::string& url, std::vector<Rule> rules,
                                     std::function<void(std::string_view)> log = {}) {
  RedisRateLimiterOptions o;
  o.redis = options_for(url);
  o.rules = std::move(rules);
  o.log = std::move(log);
  auto r = make_redis_rate_limiter(std::move(o));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(*r);
}

std::unique_ptr<AccountLocks> locks(const std::string& url, Duration lease = 10s,
                                    LockMode mode = LockMode::kStrict) {
  RedisAccountLockOptions o;
  o.redis = options_for(url);
  o.lease = lease;
  o.locks.mode = mode;
  auto r = make_redis_account_locks(std::move(o));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(*r);
}

using RedisRateLimiterTest = testing::RedisTest;
using RedisLocksTest = testing::RedisTest;

TEST_F(RedisRateLimiterTest, TwoInstancesShareOneLimit) {
  auto a = limiter(redis_.url(), {per_bot(5)});
  auto b = limiter(redis_.url(), {per_bot(5)});  // another pool: as another process
  CallAttributes call = call_of("bot-1", "sendMessage");
  EXPECT_TRUE(a->try_acquire(call).admitted);
  auto second = b->try_acquire(call);
  EXPECT_FALSE(second.admitted);
  EXPECT_GT(second.wait, 150ms);
  EXPECT_LE(second.wait, 200ms);
  // Another bot is a different key.
  EXPECT_TRUE(b->try_acquire(call_of("bot-2", "sendMessage")).admitted);
  // A reservation queues behind the first call's slot.
  auto w = b->reserve(call, 1s);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_GT(*w, 150ms);
  auto next = a->reserve(call, 1s);
  ASSERT_TRUE(next.ok());
  EXPECT_GT(*next, 350ms);  // behind both
  EXPECT_EQ(a->reserve(call, 10ms).status().code(), Code::kDeadlineExceeded);
  auto st = a->stats();
  ASSERT_EQ(st.rules.size(), 2u);
  EXPECT_EQ(st.rules[0].name, "per_bot");
  EXPECT_EQ(st.rules[0].calls, 2u);
  EXPECT_EQ(st.rules[0].deadline_refusals, 1u);
  EXPECT_EQ(st.rules[1].name, "penalty");
}

TEST_F(RedisRateLimiterTest, ACallReservesEveryRuleOrNone) {
  auto a = limiter(redis_.url(), {per_bot(2), per_chat()});
  CallAttributes chat1 = call_of("b", "sendMessage", 1);
  CallAttributes chat2 = call_of("b", "sendMessage", 2);
  EXPECT_TRUE(a->try_acquire(chat1).admitted);
  // chat 1 must wait for per_chat: refused, and per_bot's slot is not consumed...
  EXPECT_FALSE(a->try_acquire(chat1).admitted);
  // ... so chat 2 still gets per_bot's second slot (2/s burst 1: 500 ms apart).
  auto r = a->try_acquire(chat2);
  EXPECT_FALSE(r.admitted);
  EXPECT_GT(r.wait, 400ms);
  EXPECT_LE(r.wait, 500ms);
  EXPECT_EQ(r.binding_rule, 0u);  // per_bot held chat 2 back
  auto st = a->stats();
  EXPECT_EQ(st.rules[1].deadline_refusals, 1u);  // per_chat refused chat 1
}

TEST_F(RedisRateLimiterTest, PenaltiesAreSharedAndScoped) {
  auto a = limiter(redis_.url(), {per_bot(1000)});
  auto b = limiter(redis_.url(), {per_bot(1000)});
  CallAttributes c1 = call_of("b", "sendMessage", 7);
  CallAttributes c2 = call_of("b", "sendMessage", 8);
  ASSERT_TRUE(a->penalize(c1, key_scope::kBot | key_scope::kChat, 2s).ok());
  auto r = b->try_acquire(c1);  // the other "process" honours it
  EXPECT_FALSE(r.admitted);
  EXPECT_EQ(r.binding_rule, 1u);  // the "penalty" row
  EXPECT_GT(r.wait, 1500ms);
  EXPECT_TRUE(b->try_acquire(c2).admitted);  // other chats keep flowing
  EXPECT_EQ(a->penalize(call_of("b"), key_scope::kChat, 1s).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(a->penalize(c1, key_scope::kBot, -1s).code(), Code::kInvalidArgument);
}

TEST_F(RedisRateLimiterTest, FallsBackToLocalPacingWhenRedisIsDown) {
  std::vector<std::string> lines;
  auto a = limiter(redis_.url(), {per_bot(5)}, [&](std::string_view m) { lines.emplace_back(m); });
  CallAttributes call = call_of("b");
  EXPECT_TRUE(a->try_acquire(call).admitted);
  redis_.stop();
  // The local fallback paces on its own: the first call passes, the next waits.
  EXPECT_TRUE(a->try_acquire(call).admitted);
  EXPECT_FALSE(a->try_acquire(call).admitted);
  EXPECT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("in-process"), std::string::npos);
}

TEST_F(RedisLocksTest, StrictConflictNamesTheHolderAcrossInstances) {
  auto a = locks(redis_.url());
  auto b = locks(redis_.url());
  auto g = a->acquire("acc-1", "task-A");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  auto busy = b->acquire("acc-1", "task-B");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), Code::kBusy);
  EXPECT_NE(busy.status().message().find("task-A"), std::string::npos);
  auto h = b->holder("acc-1");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->task, "task-A");
  EXPECT_EQ(b->holders().size(), 1u);
  EXPECT_EQ(a->stats().held, 1u);
  g->release();
  EXPECT_EQ(a->stats().held, 0u);
  EXPECT_FALSE(b->holder("acc-1"));
  auto g2 = b->acquire("acc-1", "task-B");
  EXPECT_TRUE(g2.ok());
  EXPECT_EQ(b->stats().refusals, 1u);
  EXPECT_EQ(b->stats().acquisitions, 1u);
}

TEST_F(RedisLocksTest, SeveralAccountsAreAllOrNothing) {
  auto a = locks(redis_.url());
  auto b = locks(redis_.url());
  auto g = a->acquire("acc-2", "A");
  ASSERT_TRUE(g.ok());
  auto both = b->acquire_all({"acc-2", "acc-1"}, "B");
  EXPECT_EQ(both.status().code(), Code::kBusy);
  EXPECT_FALSE(b->holder("acc-1")) << "acc-1 was taken although acc-2 was busy";
  auto two = b->acquire_all({"acc-3", "acc-1", "acc-3"}, "B");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->accounts(), (std::vector<std::string>{"acc-1", "acc-3"}));
  EXPECT_EQ(b->acquire_all({}, "B").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(b->acquire("x", "").status().code(), Code::kInvalidArgument);
}

TEST_F(RedisLocksTest, WaitingAcquirerGetsTheAccountWhenReleased) {
  auto a = locks(redis_.url());
  auto b = locks(redis_.url());
  auto g = a->acquire("acc", "A");
  ASSERT_TRUE(g.ok());
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    g->release();
  });
  auto w = b->acquire("acc", "B", 5s);
  releaser.join();
  EXPECT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_EQ(b->stats().waits, 1u);
  auto t = a->acquire("acc", "A", 100ms);
  EXPECT_EQ(t.status().code(), Code::kTimeout);
  EXPECT_NE(t.status().message().find("'B'"), std::string::npos);
}

TEST_F(RedisLocksTest, AsyncAcquireCompletesOnTheSchedulerWhenFree) {
  auto sched = make_thread_scheduler();
  RedisAccountLockOptions o;
  o.redis = options_for(redis_.url());
  o.locks.scheduler = sched.get();
  auto b = make_redis_account_locks(o).value();
  auto a = locks(redis_.url());
  auto g = a->acquire("acc", "A");
  ASSERT_TRUE(g.ok());
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<AccountLockGuard>> got;  // guarded by mu
  ASSERT_TRUE(b->acquire_all_async({"acc"}, "B", 5s, [&](Result<AccountLockGuard> r) {
                 std::lock_guard l(mu);
                 got.emplace(std::move(r));
                 cv.notify_one();
               }).ok());
  std::this_thread::sleep_for(100ms);
  {
    std::lock_guard l(mu);
    EXPECT_FALSE(got.has_value()) << "completed while the account was held";
  }
  g->release();
  std::unique_lock l(mu);
  ASSERT_TRUE(cv.wait_for(l, 5s, [&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->status().to_string();
  EXPECT_EQ(b->holder("acc")->task, "B");
  got->value().release();
  l.unlock();
  EXPECT_EQ(b->stats().waits, 1u);
  EXPECT_EQ(b->stats().acquisitions, 1u);
  // Without a scheduler the async form is refused up front.
  EXPECT_EQ(a->acquire_all_async({"x"}, "A", 0s, [](Result<AccountLockGuard>) {}).code(),
            Code::kInvalidArgument);
}

TEST_F(RedisLocksTest, LeasesAreRenewedWhileHeld) {
  auto a = locks(redis_.url(), 100ms);
  auto b = locks(redis_.url(), 100ms);
  auto g = a->acquire("acc", "A");
  ASSERT_TRUE(g.ok());
  std::this_thread::sleep_for(400ms);  // four leases: only renewal keeps it
  EXPECT_EQ(b->acquire("acc", "B").status().code(), Code::kBusy);
}

TEST_F(RedisLocksTest, ReleaseNeverFreesAnotherHoldersLock) {
  auto a = locks(redis_.url());
  auto b = locks(redis_.url());
  auto g = a->acquire("acc", "A");
  ASSERT_TRUE(g.ok());
  // A's hold vanishes (as if its lease lapsed during a long pause) and B takes over.
  tiers::RedisPool raw(options_for(redis_.url()));
  ASSERT_TRUE(raw.command({"DEL", "cc:lock:acc"}).ok());
  auto gb = b->acquire("acc", "B");
  ASSERT_TRUE(gb.ok());
  g->release();  // A's late release must compare and leave B's lock alone
  auto h = b->holder("acc");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->task, "B");
}

TEST_F(RedisLocksTest, WarnModeProceedsAndCounts) {
  auto a = locks(redis_.url());
  auto b = locks(redis_.url(), 10s, LockMode::kWarn);
  std::vector<std::string> lines;
  b->set_log([&](std::string_view m) { lines.emplace_back(m); });
  auto g = a->acquire("acc", "A");
  auto w = b->acquire_all({"acc", "free"}, "B");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(lines.size(), 1u);
  EXPECT_EQ(b->stats().conflicts, 1u);
  EXPECT_EQ(b->holder("free")->task, "B");
  w->release();
  EXPECT_EQ(b->holder("acc")->task, "A");  // B never owned it, so never freed it
}

TEST_F(RedisLocksTest, UnreachableRedisIsNeverAssumedUnlocked) {
  auto a = locks(redis_.url());
  redis_.stop();
  EXPECT_EQ(a->acquire("acc", "A").status().code(), Code::kUnavailable);
}

// ---- Two real processes -------------------------------------------------
//
// The parent re-executes this binary running only TwoProcesses.Child with
// CALLCACHE_DIST_URL and CALLCACHE_DIST_FD set; the child reports on the pipe.

constexpr const char* kUrlEnv = "CALLCACHE_DIST_URL";
constexpr const char* kFdEnv = "CALLCACHE_DIST_FD";
constexpr const char* kRoleEnv = "CALLCACHE_DIST_ROLE";
constexpr int kKeys = 10;
constexpr int kCallsEach = 10;

std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct TierHandles {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Backend> l2;
};

TierHandles open_tier(const std::string& url) {
  TierHandles h;
  EngineOptions eo;
  NamespacePolicy p;
  p.ttl = 60s;
  eo.namespaces = {{"entity", p}};
  eo.sweep_interval = Duration::zero();
  h.engine = std::move(Engine::create(eo).value());
  h.l2 = std::move(open_redis_backend(options_for(url)).value());
  return h;
}

TEST(TwoProcesses, Child) {
  const char* url = std::getenv(kUrlEnv);
  const char* fd_text = std::getenv(kFdEnv);
  const char* role = std::getenv(kRoleEnv);
  if (!url || !fd_text || !role) GTEST_SKIP() << "runs only as a child of TwoProcesses tests";
  int fd = std::atoi(fd_text);
  auto say = [fd](const std::string& line) {
    std::string l = line + "\n";
    if (::write(fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) std::_Exit(7);
  };
  if (std::string(role) == "hit") {
    auto h = open_tier(url);
    TieredCache<std::string> c(Cache<std::string>::open(*h.engine, "entity").value(), h.l2.get());
    int loads = 0;
    int found = 0;
    for (int i = 0; i < kKeys; ++i) {
      auto r = c.get_or_load(TenantId{7}, "k" + std::to_string(i), [&loads] {
        ++loads;
        return std::string("child-loaded");
      });
      if (r.ok() && **r == "v" + std::to_string(i)) ++found;
    }
    say("loads " + std::to_string(loads) + " found " + std::to_string(found));
  } else if (std::string(role) == "pace") {
    auto l = limiter(url, {per_bot(10)});
    say("ready");
    for (int i = 0; i < kCallsEach; ++i) {
      if (!l->acquire(call_of("shared-bot")).ok()) std::_Exit(8);
      say("t " + std::to_string(mono_ns()));
    }
  } else if (std::string(role) == "lock") {
    auto l = locks(url, 300ms);
    auto g = l->acquire("acc-crash", "doomed-task");
    if (!g.ok()) std::_Exit(9);
    say("locked");
    for (;;) std::this_thread::sleep_for(1s);  // until SIGKILL
  }
  std::_Exit(0);
}

class TwoProcessesTest : public testing::RedisTest {
 protected:
  // Starts the child in `role`; returns the read end of its pipe.
  int start_child(const std::string& role, std::unique_ptr<ChildGuard>& guard) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    pid_t pid = spawn_self("TwoProcesses.Child", {std::string(kUrlEnv) + "=" + redis_.url(),
                                                  std::string(kFdEnv) + "=" + std::to_string(fds[1]),
                                                  std::string(kRoleEnv) + "=" + role});
    ::close(fds[1]);
    EXPECT_GT(pid, 0);
    guard = std::make_unique<ChildGuard>(pid);
    return fds[0];
  }
};

TEST_F(TwoProcessesTest, OneFillsTheOtherHits) {
  auto h = open_tier(redis_.url());
  TieredCache<std::string> c(Cache<std::string>::open(*h.engine, "entity").value(), h.l2.get());
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(c.get_or_load(TenantId{7}, "k" + std::to_string(i), [i] {
                   return "v" + std::to_string(i);
                 }).ok());
  }
  EXPECT_EQ(c.stats().loads, static_cast<std::uint64_t>(kKeys));
  std::unique_ptr<ChildGuard> child;
  int fd = start_child("hit", child);
  std::string report = read_line(fd);
  ::close(fd);
  EXPECT_EQ(report, "loads 0 found " + std::to_string(kKeys));
  int st = child->wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST_F(TwoProcessesTest, BothPaceTogetherUnderOneLimit) {
  // 10 calls/s per bot, burst 1: 2 x 10 calls must span >= 1.9 s together
  // (each process alone would finish its 10 in 0.9 s).
  std::unique_ptr<ChildGuard> child;
  int fd = start_child("pace", child);
  ASSERT_EQ(read_line(fd), "ready");
  auto l = limiter(redis_.url(), {per_bot(10)});
  std::vector<std::int64_t> mine, theirs;
  std::thread reader([&] {
    for (int i = 0; i < kCallsEach; ++i) {
      std::string line = read_line(fd);
      if (line.rfind("t ", 0) != 0) break;
      theirs.push_back(std::stoll(line.substr(2)));
    }
  });
  for (int i = 0; i < kCallsEach; ++i) {
    ASSERT_TRUE(l->acquire(call_of("shared-bot")).ok());
    mine.push_back(mono_ns());
  }
  reader.join();
  ::close(fd);
  int st = child->wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  ASSERT_EQ(theirs.size(), static_cast<std::size_t>(kCallsEach));
  std::vector<std::int64_t> all = mine;
  all.insert(all.end(), theirs.begin(), theirs.end());
  std::sort(all.begin(), all.end());
  double span_s = static_cast<double>(all.back() - all.front()) / 1e9;
  EXPECT_GE(span_s, 1.85) << "two processes exceeded the shared limit together";
  // No window of one second holds more than the limit (+1 for wake-up jitter).
  for (std::size_t i = 0; i < all.size(); ++i) {
    auto in_window = std::upper_bound(all.begin(), all.end(), all[i] + 999'000'000) - (all.begin() + i);
    EXPECT_LE(in_window, 11) << "at call " << i;
  }
  // Both made progress interleaved (neither ran all its calls first).
  EXPECT_LT(mine.front(), theirs.back());
  EXPECT_LT(theirs.front(), mine.back());
}

TEST_F(TwoProcessesTest, ACrashedHoldersLockExpires) {
  std::unique_ptr<ChildGuard> child;
  int fd = start_child("lock", child);
  ASSERT_EQ(read_line(fd), "locked");
  ::close(fd);
  auto l = locks(redis_.url());
  auto busy = l->acquire("acc-crash", "survivor");
  EXPECT_EQ(busy.status().code(), Code::kBusy);
  EXPECT_NE(busy.status().message().find("doomed-task"), std::string::npos);
  child->kill_and_wait();  // the holder crashes: no release, no more renewals
  auto start = std::chrono::steady_clock::now();
  auto g = l->acquire("acc-crash", "survivor", 5s);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);  // one 300 ms lease, not forever
}

}  // namespace redis_distributed_test
}  // namespace callcache
