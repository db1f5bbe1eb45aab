// get_or_load: single flight (blocking and callback forms), failures,
// negative caching, load timeouts, stale serving and early refresh.
// Virtual time throughout (ManualClock + ManualScheduler); real threads only
// where concurrency itself is under test.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "callcache/cache.h"
#include "eventually.h"

namespace callcache {
namespace load_test {

using testing::eventually;

using namespace std::chrono_literals;
using StrCache = Cache<std::string>;

const TenantId kAlice = tenant_from_name("alice");
const TenantId kBob = tenant_from_name("bob");

NamespaceStats stats_of(const Engine& engine, const std::string& ns) {
  for (auto& s : engine.stats().namespaces) {
    if (s.name == ns) return s;
  }
  ADD_FAILURE() << "no namespace " << ns;
  return {};
}

// One engine in virtual time with a namespace per behaviour under test.
class LoadingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ns = [](std::string name, NamespacePolicy p) { return NamespaceSpec{std::move(name), p}; };
    NamespacePolicy plain;
    plain.ttl = 10s;
    NamespacePolicy neg = plain;
    neg.negative_ttl = 5s;
    NamespacePolicy swr = plain;
    swr.stale_ttl = 20s;
    NamespacePolicy ahead = plain;
    ahead.refresh_ahead = 2s;
    NamespacePolicy slow = plain;
    slow.load_timeout = 1s;
    NamespacePolicy shared = plain;
    shared.shared = true;
    EngineOptions o;
    o.namespaces = {ns("plain", plain), ns("neg", neg),   ns("swr", swr),
                    ns("ahead", ahead), ns("slow", slow), ns("shared", shared)};
    o.clock = &clock_;
    o.scheduler = &sched_;
    o.sweep_interval = Duration::zero();
    engine_ = Engine::create(std::move(o)).value();
  }

  StrCache cache(const char* ns) { return StrCache::open(*engine_, ns).value(); }

  ManualClock clock_;
  ManualScheduler sched_{clock_};
  std::unique_ptr<Engine> engine_;
};

TEST_F(LoadingTest, MissLoadsAndStoresThenHitsWithoutCallingTheLoader) {
  auto c = cache("plain");
  int calls = 0;
  auto loader = [&calls] {
    ++calls;
    return Result<std::string>(std::string("v1"));
  };
  auto r = c.get_or_load(kAlice, "k", loader);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(**r, "v1");
  auto again = c.get_or_load(kAlice, "k", loader);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(**again, "v1");
  EXPECT_EQ(calls, 1);
  auto s = stats_of(*engine_, "plain");
  EXPECT_EQ(s.loads, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.load_latency.count, 1u);
  EXPECT_EQ(*c.get(kAlice, "k").value(), "v1");  // stored for plain reads too
  EXPECT_FALSE(c.get(kBob, "k"));                // and only for its tenant
}

TEST_F(LoadingTest, LoaderMayReturnLoadedWithTtlOverrideAndTags) {
  auto c = cache("plain");
  int calls = 0;
  auto loader = [&calls] {
    ++calls;
    return Loaded<std::string>{"v", 1s, {"chat:1"}};
  };
  ASSERT_TRUE(c.get_or_load(kAlice, "k", loader).ok());
  EXPECT_EQ(engine_->invalidate_tag("chat:1"), 1u);
  ASSERT_TRUE(c.get_or_load(kAlice, "k", loader).ok());
  EXPECT_EQ(calls, 2);
  clock_.advance(2s);  // past the 1 s override, well within the namespace's 10 s
  ASSERT_TRUE(c.get_or_load(kAlice, "k", loader).ok());
  EXPECT_EQ(calls, 3);
}

// A value the namespace cannot hold is not cached, but every waiter still
// gets it (and the next call loads again). `shards` = 4 gives each shard 25
// of the namespace's 100 bytes.
void too_large_values_reach_their_waiters(ManualClock& clock, ManualScheduler& sched,
                                          std::size_t shards) {
  NamespacePolicy p;
  p.ttl = 10s;
  p.max_bytes = 100;
  EngineOptions o;
  o.namespaces = {{"small", p}};
  o.shards = shards;
  o.clock = &clock;
  o.scheduler = &sched;
  o.sweep_interval = Duration::zero();
  auto engine = Engine::create(std::move(o)).value();
  auto c = StrCache::open(*engine, "small").value();
  for (std::size_t size : {std::size_t{80}, std::size_t{500}}) {
    SCOPED_TRACE("shards " + std::to_string(shards) + ", value of " + std::to_string(size));
    const std::string key = "big" + std::to_string(size);
    std::vector<std::string> got;
    std::optional<LoadCompletion<std::string>> pending;
    auto loader = [&](LoadCompletion<std::string> done) { pending = done; };
    auto cb = [&](Result<Ref<std::string>> r) {
      got.push_back(r.ok() ? **r : r.status().to_string());
    };
    c.get_or_load_async(kAlice, key, loader, cb);
    c.get_or_load_async(kAlice, key, loader, cb);
    ASSERT_TRUE(pending);
    (*pending)(std::string(size, 'x'));
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0], std::string(size, 'x'));
    EXPECT_EQ(got[1], std::string(size, 'x'));
    EXPECT_EQ(c.get(kAlice, key).has_value(), size * shards <= 100);
  }
}

TEST_F(LoadingTest, ValueTooLargeToCacheStillReachesItsWaiters) {
  too_large_values_reach_their_waiters(clock_, sched_, 1);
}

// Disabled until Engine::insert stops consuming a value that a shard's share
// of max_bytes rejects (/work/notes/loading-requests.md #5): the waiters get
// a moved-from value today.
TEST_F(LoadingTest, ValueOverAShardsShareStillReachesItsWaiters) {
  too_large_values_reach_their_waiters(clock_, sched_, 4);
}

// The engine goes away while a load is pending and its timeout timer sits
// on an external scheduler: the waiter hears kShutdown, the timer and the
// loader's late answer find nothing to touch.
TEST_F(LoadingTest, EngineDestroyedDuringALoadFailsItsWaitersAndLeavesNoDanglingWork) {
  NamespacePolicy p;
  p.ttl = 10s;
  p.load_timeout = 1s;
  EngineOptions o;
  o.namespaces = {{"n", p}};
  o.clock = &clock_;
  o.scheduler = &sched_;
  o.sweep_interval = Duration::zero();
  auto engine = Engine::create(std::move(o)).value();
  auto c = StrCache::open(*engine, "n").value();
  std::optional<LoadCompletion<std::string>> pending;
  std::optional<Status> got;
  c.get_or_load_async(
      kAlice, "k", [&](LoadCompletion<std::string> done) { pending = done; },
      [&](Result<Ref<std::string>> r) { got = r.status(); });
  EXPECT_EQ(sched_.pending(), 1u);  // the load-timeout timer
  engine.reset();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code(), Code::kShutdown);
  sched_.advance(2s);                          // the timer fires into a closed table
  EXPECT_FALSE((*pending)(std::string("v")));  // and so does the late answer
}

TEST_F(LoadingTest, LoadLatencyPercentilesAreMeasuredOnTheEngineClock) {
  auto c = cache("plain");
  for (int i = 0; i < 100; ++i) {
    Duration took = i < 90 ? Duration(10ms) : i < 99 ? Duration(100ms) : Duration(1s);
    ASSERT_TRUE(c.get_or_load(kAlice, "k" + std::to_string(i), [&] {
                   clock_.advance(took);
                   return Result<std::string>(std::string("v"));
                 }).ok());
  }
  auto lat = stats_of(*engine_, "plain").load_latency;
  EXPECT_EQ(lat.count, 100u);
  EXPECT_NEAR(lat.p50_ms, 10, 1);
  EXPECT_NEAR(lat.p90_ms, 10, 1);
  EXPECT_NEAR(lat.p99_ms, 100, 10);
  EXPECT_NEAR(lat.max_ms, 1000, 0.001);
}

TEST_F(LoadingTest, EmptyKeyIsRejected) {
  auto c = cache("plain");
  auto r = c.get_or_load(kAlice, "", [] { return Result<std::string>(std::string("v")); });
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

// N threads ask for one missing key while its loader runs: the loader runs
// once, everyone gets its value, N-1 callers are counted as coalesced.
TEST_F(LoadingTest, ConcurrentBlockingCallersShareOneLoad) {
  constexpr int kThreads = 16;
  auto c = cache("plain");
  std::atomic<int> calls{0};
  auto loader = [&] {
    calls.fetch_add(1);
    // Hold the load open until every other caller has joined it.
    EXPECT_TRUE(
        eventually([&] { return stats_of(*engine_, "plain").coalesced == kThreads - 1; }, 20s));
    return Result<std::string>(std::string("shared"));
  };
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto r = c.get_or_load(kAlice, "k", loader);
      if (r.ok() && **r == "shared") ok.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(ok.load(), kThreads);
  auto s = stats_of(*engine_, "plain");
  EXPECT_EQ(s.coalesced, static_cast<std::uint64_t>(kThreads - 1));
  EXPECT_EQ(s.loads, 1u);
}

// A single-threaded event loop: tasks run in order on the thread calling run().
class EventLoop {
 public:
  void post(std::function<void()> f) { q_.push_back(std::move(f)); }
  std::size_t run() {
    std::size_t n = 0;
    while (!q_.empty()) {
      auto f = std::move(q_.front());
      q_.pop_front();
      f();
      ++n;
    }
    return n;
  }

 private:
  std::deque<std::function<void()>> q_;
};

// N callbacks on one event loop: nothing parks the (only) thread; the async
// loader completes later from the loop; one load, N-1 coalesced.
TEST_F(LoadingTest, CallbacksOnAnEventLoopShareOneLoad) {
  constexpr int kCallers = 50;
  auto c = cache("plain");
  EventLoop loop;
  int calls = 0;
  std::vector<std::string> got;
  for (int i = 0; i < kCallers; ++i) {
    loop.post([&] {
      c.get_or_load_async(
          kAlice, "k",
          [&](LoadCompletion<std::string> done) {
            ++calls;
            // The "response" arrives after every caller has asked.
            loop.post([done] { done(std::string("from-upstream")); });
          },
          [&](Result<Ref<std::string>> r) {
            got.push_back(r.ok() ? **r : r.status().to_string());
          });
    });
  }
  loop.run();
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kCallers));
  for (auto& g : got) EXPECT_EQ(g, "from-upstream");
  EXPECT_EQ(stats_of(*engine_, "plain").coalesced, static_cast<std::uint64_t>(kCallers - 1));
  // A later caller is served inline from the cache.
  bool inline_hit = false;
  c.get_or_load_async(
      kAlice, "k", [&](LoadCompletion<std::string>) { ++calls; },
      [&](Result<Ref<std::string>> r) { inline_hit = r.ok() && **r == "from-upstream"; });
  EXPECT_TRUE(inline_hit);
  EXPECT_EQ(calls, 1);
}

TEST_F(LoadingTest, BlockingAndCallbackCallersJoinTheSameFlight) {
  auto c = cache("plain");
  std::optional<LoadCompletion<std::string>> pending;
  int calls = 0;
  std::optional<Result<Ref<std::string>>> async_result;
  c.get_or_load_async(
      kAlice, "k",
      [&](LoadCompletion<std::string> done) {
        ++calls;
        pending = done;
      },
      [&](Result<Ref<std::string>> r) { async_result.emplace(std::move(r)); });
  std::optional<Result<Ref<std::string>>> blocking_result;
  std::thread follower([&] {
    blocking_result.emplace(c.get_or_load(kAlice, "k", [&] {
      ++calls;
      return Result<std::string>(std::string("wrong"));
    }));
  });
  ASSERT_TRUE(eventually([&] { return stats_of(*engine_, "plain").coalesced == 1; }, 20s));
  ASSERT_TRUE(pending);
  EXPECT_TRUE((*pending)(std::string("right")));
  follower.join();
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(async_result && async_result->ok());
  ASSERT_TRUE(blocking_result && blocking_result->ok());
  EXPECT_EQ(***async_result, "right");
  EXPECT_EQ(***blocking_result, "right");
}

TEST_F(LoadingTest, FailureReachesEveryWaiterAndIsNotCachedWithoutNegativeTtl) {
  auto c = cache("plain");
  std::optional<LoadCompletion<std::string>> pending;
  int calls = 0;
  std::vector<Status> got;
  auto loader = [&](LoadCompletion<std::string> done) {
    ++calls;
    pending = done;
  };
  auto callback = [&](Result<Ref<std::string>> r) { got.push_back(r.status()); };
  for (int i = 0; i < 5; ++i) c.get_or_load_async(kAlice, "k", loader, callback);
  ASSERT_TRUE(pending);
  (*pending)(Status::not_found("peer @nobody does not exist"));
  ASSERT_EQ(got.size(), 5u);
  for (auto& s : got) EXPECT_EQ(s, Status::not_found("peer @nobody does not exist"));
  // Retrying calls the loader again.
  c.get_or_load_async(kAlice, "k", loader, callback);
  EXPECT_EQ(calls, 2);
  (*pending)(std::string("found"));
  ASSERT_EQ(got.size(), 6u);
  EXPECT_TRUE(got[5].ok());
  auto s = stats_of(*engine_, "plain");
  EXPECT_EQ(s.load_failures, 1u);
  EXPECT_EQ(s.negative_hits, 0u);
}

TEST_F(LoadingTest, BlockingWaitersAllSeeTheLeadersFailureThenARetryLoadsAgain) {
  constexpr int kThreads = 8;
  auto c = cache("plain");
  std::atomic<int> calls{0};
  auto failing = [&]() -> Result<std::string> {
    calls.fetch_add(1);
    EXPECT_TRUE(
        eventually([&] { return stats_of(*engine_, "plain").coalesced == kThreads - 1; }, 20s));
    throw std::runtime_error("CHANNEL_PRIVATE");
  };
  std::vector<std::thread> threads;
  std::vector<Status> got(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { got[i] = c.get_or_load(kAlice, "k", failing).status(); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  for (auto& s : got) {
    EXPECT_EQ(s.code(), Code::kLoadFailed);
    EXPECT_EQ(s, got[0]);  // the same error, message included
  }
  EXPECT_NE(got[0].message().find("CHANNEL_PRIVATE"), std::string::npos);
  auto retry = c.get_or_load(kAlice, "k", [&] {
    calls.fetch_add(1);
    return Result<std::string>(std::string("public now"));
  });
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(stats_of(*engine_, "plain").load_failures, 1u);
}

TEST_F(LoadingTest, WaitTimeoutDoesNotApplyToTheBlockingLeader) {
  auto c = cache("plain");
  LoadOptions o;
  o.wait_timeout = 10ms;
  auto r = c.get_or_load(
      kAlice, "k",
      [this] {
        sched_.advance(1s);  // time passes while the leader loads
        return Result<std::string>(std::string("v"));
      },
      o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(**r, "v");
}

TEST_F(LoadingTest, ThrowingLoaderBecomesLoadFailedForAllWaiters) {
  auto c = cache("plain");
  auto r = c.get_or_load(
      kAlice, "k", []() -> Result<std::string> { throw std::runtime_error("FLOOD_WAIT_30"); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kLoadFailed);
  EXPECT_NE(r.status().message().find("FLOOD_WAIT_30"), std::string::npos);
  // Async loaders that throw instead of completing fail the same way.
  std::optional<Status> got;
  c.get_or_load_async(
      kAlice, "k2", [](LoadCompletion<std::string>) { throw 42; },
      [&](Result<Ref<std::string>> res) { got = res.status(); });
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code(), Code::kLoadFailed);
  // And nothing was stored: the next call loads.
  int calls = 0;
  ASSERT_TRUE(c.get_or_load(kAlice, "k", [&] {
                 ++calls;
                 return Result<std::string>(std::string("ok"));
               }).ok());
  EXPECT_EQ(calls, 1);
}

TEST_F(LoadingTest, DroppedCompletionFailsTheFlightInsteadOfWedgingTheKey) {
  auto c = cache("plain");
  std::optional<Status> got;
  c.get_or_load_async(
      kAlice, "k", [](LoadCompletion<std::string>) { /* forgets to call done */ },
      [&](Result<Ref<std::string>> r) { got = r.status(); });
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code(), Code::kLoadFailed);
}

TEST_F(LoadingTest, NegativeTtlRemembersTheSameErrorWithoutCallingTheLoader) {
  auto c = cache("neg");
  int calls = 0;
  auto loader = [&]() -> Result<std::string> {
    ++calls;
    return Status::not_found("USERNAME_NOT_OCCUPIED");
  };
  auto first = c.get_or_load(kAlice, "@ghost", loader);
  ASSERT_FALSE(first.ok());
  clock_.advance(4s);
  auto second = c.get_or_load(kAlice, "@ghost", loader);
  EXPECT_EQ(second.status(), first.status());
  std::optional<Status> async_status;
  c.get_or_load_async(
      kAlice, "@ghost", [&](LoadCompletion<std::string>) { ++calls; },
      [&](Result<Ref<std::string>> r) { async_status = r.status(); });
  EXPECT_EQ(async_status, first.status());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(stats_of(*engine_, "neg").negative_hits, 2u);
  EXPECT_FALSE(c.get(kAlice, "@ghost"));  // a remembered failure is not a value
  clock_.advance(2s);                     // negative_ttl (5 s) over
  EXPECT_FALSE(c.get_or_load(kAlice, "@ghost", loader).ok());
  EXPECT_EQ(calls, 2);
}

TEST_F(LoadingTest, LoadTimeoutFailsAllWaitersFreesTheKeyAndDiscardsTheLateResult) {
  auto c = cache("slow");
  std::vector<LoadCompletion<std::string>> pending;
  std::vector<Status> got;
  auto loader = [&](LoadCompletion<std::string> done) { pending.push_back(done); };
  auto callback = [&](Result<Ref<std::string>> r) { got.push_back(r.status()); };
  c.get_or_load_async(kAlice, "k", loader, callback);
  c.get_or_load_async(kAlice, "k", loader, callback);
  std::optional<Result<Ref<std::string>>> blocked;
  std::thread follower([&] {
    blocked.emplace(
        c.get_or_load(kAlice, "k", [] { return Result<std::string>(std::string("x")); }));
  });
  ASSERT_TRUE(eventually([&] { return stats_of(*engine_, "slow").coalesced == 2; }, 20s));
  sched_.advance(999ms);
  EXPECT_TRUE(got.empty());
  sched_.advance(1ms);
  follower.join();
  ASSERT_EQ(got.size(), 2u);
  for (auto& s : got) EXPECT_EQ(s.code(), Code::kTimeout);
  ASSERT_TRUE(blocked);
  EXPECT_EQ(blocked->status().code(), Code::kTimeout);
  EXPECT_EQ(stats_of(*engine_, "slow").load_timeouts, 1u);
  // The key is free: a new caller starts a new load.
  c.get_or_load_async(kAlice, "k", loader, callback);
  ASSERT_EQ(pending.size(), 2u);
  // The first loader finally answers: discarded, nothing stored.
  EXPECT_FALSE(pending[0](std::string("late")));
  EXPECT_FALSE(c.get(kAlice, "k"));
  EXPECT_EQ(got.size(), 2u);
  EXPECT_TRUE(pending[1](std::string("fresh")));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[2].ok());
  EXPECT_EQ(*c.get(kAlice, "k").value(), "fresh");
}

TEST_F(LoadingTest, TimeoutsAreNotNegativelyCached) {
  NamespacePolicy p;
  p.ttl = 10s;
  p.load_timeout = 1s;
  p.negative_ttl = 1h;
  EngineOptions o;
  o.namespaces = {{"n", p}};
  o.clock = &clock_;
  o.scheduler = &sched_;
  o.sweep_interval = Duration::zero();
  auto engine = Engine::create(std::move(o)).value();
  auto c = StrCache::open(*engine, "n").value();
  int calls = 0;
  std::optional<LoadCompletion<std::string>> keep;
  auto loader = [&](LoadCompletion<std::string> done) {
    ++calls;
    keep = done;
  };
  c.get_or_load_async(kAlice, "k", loader, [](Result<Ref<std::string>>) {});
  sched_.advance(1s);
  c.get_or_load_async(kAlice, "k", loader, [](Result<Ref<std::string>>) {});
  EXPECT_EQ(calls, 2);
  (*keep)(std::string("v"));
}

TEST_F(LoadingTest, CallerThatGivesUpDoesNotCancelTheLoadForOthers) {
  auto c = cache("plain");
  std::optional<LoadCompletion<std::string>> pending;
  std::optional<Result<Ref<std::string>>> patient;
  c.get_or_load_async(
      kAlice, "k", [&](LoadCompletion<std::string> done) { pending = done; },
      [&](Result<Ref<std::string>> r) { patient.emplace(std::move(r)); });
  LoadOptions impatient;
  impatient.wait_timeout = 100ms;
  std::optional<Result<Ref<std::string>>> gave_up;
  std::thread follower([&] {
    gave_up.emplace(c.get_or_load(
        kAlice, "k", [] { return Result<std::string>(std::string("x")); }, impatient));
  });
  ASSERT_TRUE(eventually([&] { return stats_of(*engine_, "plain").coalesced == 1; }, 20s));
  sched_.advance(100ms);
  follower.join();
  ASSERT_TRUE(gave_up);
  EXPECT_EQ(gave_up->status().code(), Code::kDeadlineExceeded);
  EXPECT_FALSE(patient);
  EXPECT_TRUE((*pending)(std::string("v")));
  ASSERT_TRUE(patient && patient->ok());
  EXPECT_EQ(***patient, "v");
  EXPECT_EQ(*c.get(kAlice, "k").value(), "v");
}

TEST_F(LoadingTest, SharedNamespaceCoalescesAcrossTenants) {
  auto c = cache("shared");
  std::optional<LoadCompletion<std::string>> pending;
  int calls = 0;
  int delivered = 0;
  auto loader = [&](LoadCompletion<std::string> done) {
    ++calls;
    pending = done;
  };
  auto cb = [&](Result<Ref<std::string>> r) { delivered += r.ok(); };
  c.get_or_load_async(kAlice, "@durov", loader, cb);
  c.get_or_load_async(kBob, "@durov", loader, cb);
  (*pending)(std::string("channel"));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(delivered, 2);
}

// ---- Stale serving --------------------------------------------------------

class StaleTest : public LoadingTest {
 protected:
  // Loader whose answers are numbered: "v1", "v2", ...; fails while `fail`.
  std::function<Result<std::string>()> counting_loader() {
    return [this]() -> Result<std::string> {
      int n = ++calls_;
      if (fail_) return Status::unavailable("upstream 502");
      return "v" + std::to_string(n);
    };
  }
  std::atomic<int> calls_{0};
  std::atomic<bool> fail_{false};
};

TEST_F(StaleTest, StaleReadsReturnTheOldValueAndTriggerExactlyOneRefresh) {
  auto c = cache("swr");
  auto loader = counting_loader();
  ASSERT_EQ(**c.get_or_load(kAlice, "k", loader), "v1");
  clock_.advance(15s);  // ttl 10 s over, stale_ttl 20 s not
  for (int i = 0; i < 5; ++i) {
    auto r = c.get_or_load(kAlice, "k", loader);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(**r, "v1");
  }
  // The refresh runs on the scheduler, not on the readers' thread.
  EXPECT_EQ(calls_.load(), 1);
  EXPECT_EQ(sched_.run_due(), 1u);
  EXPECT_EQ(calls_.load(), 2);
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v2");
  EXPECT_EQ(sched_.pending(), 0u);
  auto s = stats_of(*engine_, "swr");
  EXPECT_EQ(s.stale_hits, 5u);
  EXPECT_EQ(s.refreshes, 1u);
  EXPECT_EQ(s.loads, 2u);
}

TEST_F(StaleTest, StaleIfErrorKeepsServingTheOldValueWhenTheRefreshFails) {
  auto c = cache("swr");
  auto loader = counting_loader();
  ASSERT_TRUE(c.get_or_load(kAlice, "k", loader).ok());
  clock_.advance(15s);
  fail_ = true;
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v1");
  sched_.run_due();  // refresh fails
  EXPECT_EQ(calls_.load(), 2);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v1");
  // Within the 1 s cooldown after a failed refresh no new refresh starts.
  EXPECT_EQ(sched_.run_due(), 0u);
  EXPECT_EQ(calls_.load(), 2);
  auto s = stats_of(*engine_, "swr");
  EXPECT_EQ(s.refresh_failures, 1u);
  EXPECT_EQ(s.stale_hits, 4u);
  // After it, the next stale read tries again — and succeeds.
  clock_.advance(1s);
  fail_ = false;
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v1");
  sched_.run_due();
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v3");
}

// A refresh whose value may not be kept (Retain::kNone, e.g. an upstream
// error page) is a failed refresh: the stale value stays, the next waits.
TEST_F(StaleTest, ARefreshYieldingAValueItMayNotKeepLeavesTheStaleOne) {
  auto c = cache("swr");
  int calls = 0;
  auto loader = [&calls]() -> Loaded<std::string> {
    ++calls;
    if (calls == 1) return {"v1", std::nullopt, {}};
    return {"error page", std::nullopt, {}, Retain::kNone};
  };
  ASSERT_EQ(**c.get_or_load(kAlice, "k", loader), "v1");
  clock_.advance(15s);
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v1");
  EXPECT_EQ(sched_.run_due(), 1u);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v1");
  EXPECT_EQ(sched_.run_due(), 0u);  // cooling down
  EXPECT_EQ(stats_of(*engine_, "swr").refresh_failures, 1u);
}

// The callback form says how each call was served.
TEST_F(StaleTest, TheCallbackSaysHowEachCallWasServed) {
  auto c = cache("swr");
  auto n = cache("neg");
  std::vector<Served> how;
  auto record = [&how](Result<Ref<std::string>>, Served s) { how.push_back(s); };
  std::optional<LoadCompletion<std::string>> pending;
  auto held = [&pending](LoadCompletion<std::string> done) { pending = done; };
  c.get_or_load_async(kAlice, "k", held, record);  // leads
  c.get_or_load_async(kAlice, "k", held, record);  // joins
  (*pending)(std::string("v"));
  c.get_or_load_async(kAlice, "k", held, record);  // fresh
  clock_.advance(15s);
  c.get_or_load_async(kAlice, "k", held, record);  // stale (a refresh starts)
  n.get_or_load_async(
      kAlice, "e",
      [](LoadCompletion<std::string> done) { done(Status::not_found("no such chat")); }, record);
  n.get_or_load_async(kAlice, "e", held, record);  // remembered failure
  EXPECT_EQ(how, (std::vector<Served>{Served::kLoaded, Served::kCoalesced, Served::kHit,
                                      Served::kStale, Served::kLoaded, Served::kNegative}));
}

TEST_F(StaleTest, PastStaleTtlCallersWaitForAFreshLoad) {
  auto c = cache("swr");
  auto loader = counting_loader();
  ASSERT_TRUE(c.get_or_load(kAlice, "k", loader).ok());
  clock_.advance(30s);  // ttl 10 s + stale_ttl 20 s over
  auto r = c.get_or_load(kAlice, "k", loader);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, "v2");  // loaded inline, no stale value returned
  EXPECT_EQ(sched_.pending(), 0u);
  EXPECT_EQ(stats_of(*engine_, "swr").stale_hits, 0u);
}

TEST_F(StaleTest, FailedLoadPastStaleTtlIsAnError) {
  auto c = cache("swr");
  auto loader = counting_loader();
  ASSERT_TRUE(c.get_or_load(kAlice, "k", loader).ok());
  clock_.advance(31s);
  fail_ = true;
  EXPECT_EQ(c.get_or_load(kAlice, "k", loader).status().code(), Code::kUnavailable);
}

TEST_F(StaleTest, RefreshAheadRefreshesAHotKeyBeforeItExpires) {
  auto c = cache("ahead");
  auto loader = counting_loader();
  ASSERT_EQ(**c.get_or_load(kAlice, "k", loader), "v1");
  clock_.advance(7s);  // not yet in the 2 s window
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v1");
  EXPECT_EQ(sched_.pending(), 0u);
  clock_.advance(2s);  // 1 s before expiry
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v1");
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v1");
  EXPECT_EQ(sched_.run_due(), 1u);  // one refresh for two reads
  EXPECT_EQ(calls_.load(), 2);
  clock_.advance(5s);  // the original would have expired; the refreshed one has not
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v2");
  auto s = stats_of(*engine_, "ahead");
  EXPECT_EQ(s.refreshes, 1u);
  EXPECT_EQ(s.misses, 1u);
}

TEST_F(StaleTest, RefreshRunsOnTheCallerSuppliedExecutor) {
  auto c = cache("swr");
  auto loader = counting_loader();
  ASSERT_TRUE(c.get_or_load(kAlice, "k", loader).ok());
  clock_.advance(15s);
  std::vector<std::function<void()>> tasks;
  LoadOptions o;
  o.executor = [&](std::function<void()> t) { tasks.push_back(std::move(t)); };
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader, o), "v1");
  EXPECT_EQ(sched_.pending(), 0u);
  ASSERT_EQ(tasks.size(), 1u);
  tasks[0]();
  EXPECT_EQ(**c.get_or_load(kAlice, "k", loader), "v2");
}

TEST_F(StaleTest, AMissDuringARefreshJoinsIt) {
  auto c = cache("swr");
  std::optional<LoadCompletion<std::string>> pending;
  int calls = 0;
  auto loader = [&](LoadCompletion<std::string> done) {
    ++calls;
    if (calls == 1) {
      done(std::string("v1"));
    } else {
      pending = done;
    }
  };
  c.get_or_load_async(kAlice, "k", loader, [](Result<Ref<std::string>>) {});
  clock_.advance(15s);
  std::optional<std::string> stale;
  c.get_or_load_async(kAlice, "k", loader, [&](Result<Ref<std::string>> r) { stale = **r; });
  EXPECT_EQ(stale, "v1");  // async loaders are started inline; refresh now in flight
  ASSERT_TRUE(pending);
  clock_.advance(20s);  // the stale window closes while the refresh runs
  std::optional<std::string> fresh;
  c.get_or_load_async(kAlice, "k", loader, [&](Result<Ref<std::string>> r) { fresh = **r; });
  EXPECT_FALSE(fresh);
  (*pending)(std::string("v2"));
  EXPECT_EQ(fresh, "v2");
  EXPECT_EQ(calls, 2);
}

// ---- Stress: loads, invalidation and eviction on the same keys ------------

// Mixed blocking and callback loads on few keys of two tenants, against an
// invalidating thread and a namespace far smaller than the key set. Every
// answer must be the value of the key asked for.
NamespaceStats stress(NamespacePolicy p) {
  EngineOptions o;
  o.namespaces = {{"n", p}};
  o.shards = 1;
  o.sweep_interval = Duration::zero();
  auto engine = Engine::create(std::move(o)).value();
  auto c = StrCache::open(*engine, "n").value();
  constexpr int kThreads = 6;
  constexpr int kOps = 20000;
  constexpr int kKeys = 24;
  std::atomic<int> wrong{0}, errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::uint64_t x = 0x9e3779b97f4a7c15ULL * (t + 1);
      for (int i = 0; i < kOps; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        std::string key = "k" + std::to_string(x % kKeys);
        TenantId tenant{1 + (x >> 32) % 2};
        auto check = [&, key](const Result<Ref<std::string>>& r) {
          if (!r.ok()) {
            errors.fetch_add(1);
          } else if (**r != key) {
            wrong.fetch_add(1);
          }
        };
        if (t % 2 == 0) {
          check(c.get_or_load(tenant, key, [key] { return Result<std::string>(key); }));
        } else {
          c.get_or_load_async(
              tenant, key, [key](LoadCompletion<std::string> done) { done(key); }, check);
        }
      }
    });
  }
  std::thread invalidator([&] {
    std::uint64_t i = 0;
    while (!stop.load()) {
      std::string key = "k" + std::to_string(i++ % kKeys);
      (void)engine->invalidate("n", TenantId{1}, key);
      if (i % 64 == 0) (void)engine->invalidate_namespace("n");
      if (i % 97 == 0) engine->invalidate_tenant(TenantId{2});
      std::this_thread::yield();
    }
  });
  for (auto& th : threads) th.join();
  stop = true;
  invalidator.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  auto s = stats_of(*engine, "n");
  EXPECT_LE(s.entries, p.max_entries);
  EXPECT_GE(s.loads, static_cast<std::uint64_t>(kKeys));
  return s;
}

TEST(LoadingStress, ConcurrentLoadsInvalidationAndEvictionStayConsistent) {
  NamespacePolicy p;
  p.ttl = 1h;
  p.max_entries = 8;  // far fewer than keys: constant eviction
  stress(p);
}

// The same with entries going stale within milliseconds: background
// refreshes (on the engine's scheduler thread for blocking loads, inline for
// callback loads) race the readers, the invalidations and the evictions.
TEST(LoadingStress, WithStaleServingAndBackgroundRefreshes) {
  NamespacePolicy p;
  p.ttl = 1ms;
  p.stale_ttl = 1h;
  p.max_entries = 32;
  auto s = stress(p);
  ::testing::Test::RecordProperty("refreshes", std::to_string(s.refreshes));
  ::testing::Test::RecordProperty("stale_hits", std::to_string(s.stale_hits));
}

}  // namespace load_test
}  // namespace callcache
