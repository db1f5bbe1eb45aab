// StateStore: idle TTL on a manual clock, never evicted before its TTL,
// refusal when full, background sweep, concurrent use (TSan in CI).
#include "callcache/state_store.h"

#include <gtest/gtest.h>

#include <thread>

namespace callcache {
namespace state_store_test {

using std::chrono::minutes;
using std::chrono::seconds;

struct Dialogue {
  int step = 0;
  std::string draft;
};

template <class T = std::string>
std::unique_ptr<StateStore<T>> make(const Clock& clock, std::size_t max, Duration ttl,
                                    Scheduler* scheduler = nullptr) {
  StateStoreOptions o;
  o.name = "dialogues";
  o.max_states = max;
  o.idle_ttl = ttl;
  o.clock = &clock;
  o.scheduler = scheduler;
  auto s = StateStore<T>::create(std::move(o));
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return std::move(s).value();
}

TEST(StateStore, PutGetUpdateUpsertErase) {
  ManualClock clock;
  auto s = make<Dialogue>(clock, 10, minutes(5));
  ASSERT_TRUE(s->put("user1", Dialogue{1, "hello"}).ok());
  auto d = s->get("user1");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->step, 1);
  EXPECT_EQ(d->draft, "hello");
  ASSERT_TRUE(s->update("user1", [](Dialogue& x) { x.step = 2; }).ok());
  EXPECT_EQ(s->get("user1")->step, 2);
  EXPECT_EQ(s->update("nobody", [](Dialogue&) {}).code(), Code::kNotFound);
  ASSERT_TRUE(s->upsert("user2", [](Dialogue& x) { x.step += 10; }).ok());
  ASSERT_TRUE(s->upsert("user2", [](Dialogue& x) { x.step += 10; }).ok());
  EXPECT_EQ(s->get("user2")->step, 20);
  EXPECT_FALSE(s->get("user3").has_value());
  EXPECT_TRUE(s->erase("user1"));
  EXPECT_FALSE(s->erase("user1"));
  EXPECT_FALSE(s->contains("user1"));
  auto st = s->stats();
  EXPECT_EQ(st.created, 2u);
  EXPECT_EQ(st.updated, 2u);
  EXPECT_EQ(st.erased, 1u);
  EXPECT_EQ(st.active, 1u);
}

TEST(StateStore, IdleTtlIsRefreshedByEveryAccess) {
  ManualClock clock;
  auto s = make(clock, 10, seconds(10));
  ASSERT_TRUE(s->put("u", "step-1").ok());
  clock.advance(seconds(9));
  EXPECT_EQ(s->get("u"), "step-1");  // restarts the TTL
  clock.advance(seconds(9));
  EXPECT_TRUE(s->contains("u"));
  ASSERT_TRUE(s->update("u", [](std::string& v) { v = "step-2"; }).ok());
  clock.advance(seconds(9));
  EXPECT_EQ(s->get("u"), "step-2");
  clock.advance(seconds(10));
  EXPECT_FALSE(s->contains("u"));
  EXPECT_EQ(s->get("u"), std::nullopt);
  EXPECT_EQ(s->stats().expired, 1u);
}

TEST(StateStore, NeverEvictsBeforeTheTtlAndRefusesWhenFull) {
  ManualClock clock;
  auto s = make(clock, 2, minutes(10));
  ASSERT_TRUE(s->put("a", "1").ok());
  clock.advance(minutes(5));
  ASSERT_TRUE(s->put("b", "2").ok());
  Status full = s->put("c", "3");
  EXPECT_EQ(full.code(), Code::kResourceExhausted);
  EXPECT_NE(full.message().find("state store 'dialogues': full with 2 live states"), std::string::npos)
      << full.message();
  EXPECT_NE(full.message().find("'c' refused"), std::string::npos);
  EXPECT_EQ(s->upsert("c", [](std::string&) { FAIL() << "must not run"; }).code(),
            Code::kResourceExhausted);
  // Existing states are intact and can still be replaced when full.
  EXPECT_EQ(s->get("a"), "1");  // (refreshes a)
  EXPECT_TRUE(s->put("b", "22").ok());
  EXPECT_EQ(s->stats().refusals, 2u);
  // Only once a state has been idle for its whole TTL does it make room.
  clock.advance(minutes(9));
  EXPECT_EQ(s->put("c", "3").code(), Code::kResourceExhausted);
  clock.advance(minutes(1));  // a and b idle for 10 min now
  EXPECT_TRUE(s->put("c", "3").ok());
  EXPECT_EQ(s->size(), 1u);
  EXPECT_EQ(s->stats().expired, 2u);
}

TEST(StateStore, CleanupAndBackgroundSweep) {
  ManualClock clock;
  ManualScheduler sched(clock);
  {
    StateStoreOptions o;
    o.max_states = 1000;
    o.idle_ttl = minutes(5);
    o.scheduler = &sched;
    o.sweep_interval = minutes(1);
    auto s = std::move(StateStore<int>::create(std::move(o))).value();
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(s->put("u" + std::to_string(i), i).ok());
    clock.advance(minutes(3));
    ASSERT_TRUE(s->put("late", 1).ok());
    EXPECT_EQ(s->cleanup_expired(), 0u);
    sched.advance(minutes(2));  // sweeps at 4 and 5 min: the first 100 expire at 5 min
    EXPECT_EQ(s->size(), 1u);
    auto st = s->stats();
    EXPECT_EQ(st.expired, 100u);
    EXPECT_GE(st.sweeps, 3u);
    sched.advance(minutes(3));
    EXPECT_EQ(s->size(), 0u);
    EXPECT_EQ(sched.pending(), 1u);
  }
  EXPECT_EQ(sched.pending(), 0u);  // the destroyed store cancelled its sweep
  sched.advance(minutes(5));
}

TEST(StateStore, BadOptionsAreRefused) {
  StateStoreOptions o;
  o.max_states = 0;
  EXPECT_EQ(StateStore<int>::create(o).status().message(),
            "state store 'state': max_states must be at least 1");
  o.max_states = 1;
  o.idle_ttl = Duration::zero();
  EXPECT_EQ(StateStore<int>::create(o).status().code(), Code::kInvalidArgument);
}

TEST(StateStore, StatsRender) {
  ManualClock clock;
  auto s = make(clock, 3, minutes(1));
  ASSERT_TRUE(s->put("a", "x").ok());
  EXPECT_EQ(s->stats().to_json(),
            "{\"active\":1,\"created\":1,\"updated\":0,\"expired\":0,\"refusals\":0,\"erased\":0,"
            "\"sweeps\":0,\"capacity\":3}");
  EXPECT_NE(s->stats().to_prometheus("dialogues").find("callcache_state_active{store=\"dialogues\"} 1\n"),
            std::string::npos);
}

TEST(StateStoreConcurrency, ConcurrentUpsertsLoseNothing) {
  ManualClock clock;
  ManualScheduler sched(clock);
  StateStoreOptions o;
  o.max_states = 64;
  o.idle_ttl = std::chrono::hours(24 * 365);  // the ticker below races ahead of the threads
  o.scheduler = &sched;
  o.sweep_interval = seconds(1);
  auto s = std::move(StateStore<int>::create(std::move(o))).value();
  constexpr int kThreads = 4, kRounds = 5000, kUsers = 16;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        ASSERT_TRUE(s->upsert("user" + std::to_string((i + t) % kUsers), [](int& v) { ++v; }).ok());
      }
    });
  }
  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    while (!stop.load()) sched.advance(std::chrono::milliseconds(100));
  });
  for (auto& th : threads) th.join();
  stop = true;
  ticker.join();
  int total = 0;
  for (int u = 0; u < kUsers; ++u) total += s->get("user" + std::to_string(u)).value_or(0);
  EXPECT_EQ(total, kThreads * kRounds);
}

}  // namespace state_store_test
}  // namespace callcache
