// The single-flight table on its own (no engine): entries are opaque
// pointers here.
#include "core/flight.h"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>
#include <vector>

namespace callcache::internal {
namespace flight_test {

Entry* fake_entry(int& storage) { return reinterpret_cast<Entry*>(&storage); }

FlightKey key(std::string k, std::uint64_t tenant = 1, std::uint32_t ns = 0) {
  return FlightKey{ns, tenant, std::move(k)};
}

TEST(FlightTable, FirstJoinLeadsLaterJoinsWaitAndAllGetTheOutcome) {
  FlightTable table;
  int value = 0;
  std::vector<Entry*> got;
  auto waiter = [&](Entry* e, const Status& s, bool) {
    EXPECT_TRUE(s.ok());
    got.push_back(e);
  };
  auto a = table.join(key("k"), waiter);
  auto b = table.join(key("k"), waiter);
  auto c = table.join(key("k"), waiter);
  EXPECT_TRUE(a.leader);
  EXPECT_FALSE(b.leader);
  EXPECT_FALSE(c.leader);
  EXPECT_EQ(a.flight, b.flight);
  EXPECT_EQ(table.in_flight(), 1u);
  ASSERT_TRUE(table.claim(*a.flight));
  table.finish(*a.flight, fake_entry(value), Status());
  EXPECT_EQ(got, std::vector<Entry*>(3, fake_entry(value)));
  EXPECT_EQ(table.in_flight(), 0u);
  // The key is free again: the next join leads a new flight.
  auto d = table.join(key("k"), nullptr);
  EXPECT_TRUE(d.leader);
  EXPECT_NE(d.flight, a.flight);
}

TEST(FlightTable, KeysOfOtherTenantsAndNamespacesAreSeparateFlights) {
  FlightTable table;
  EXPECT_TRUE(table.join(key("k", 1, 0), nullptr).leader);
  EXPECT_TRUE(table.join(key("k", 2, 0), nullptr).leader);
  EXPECT_TRUE(table.join(key("k", 1, 1), nullptr).leader);
  EXPECT_FALSE(table.join(key("k", 2, 0), nullptr).leader);
  EXPECT_EQ(table.in_flight(), 3u);
}

TEST(FlightTable, ClaimSucceedsOnceSoATimeoutAndALateCompletionCannotBothWin) {
  FlightTable table;
  std::vector<Status> got;
  auto j = table.join(key("k"), [&](Entry*, const Status& s, bool) { got.push_back(s); });
  ASSERT_TRUE(table.claim(*j.flight));   // e.g. the timeout
  EXPECT_FALSE(table.claim(*j.flight));  // the late loader
  table.finish(*j.flight, nullptr, Status::timeout("t"));
  EXPECT_FALSE(table.claim(*j.flight));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].code(), Code::kTimeout);
}

TEST(FlightTable, WaitersMayJoinWhileTheCompleterStoresTheValue) {
  FlightTable table;
  int value = 0;
  int delivered = 0;
  auto j = table.join(key("k"), nullptr);
  ASSERT_TRUE(table.claim(*j.flight));
  auto late = table.join(key("k"), [&](Entry* e, const Status&, bool) {
    EXPECT_EQ(e, fake_entry(value));
    ++delivered;
  });
  EXPECT_FALSE(late.leader);
  table.finish(*j.flight, fake_entry(value), Status());
  EXPECT_EQ(delivered, 1);
}

TEST(FlightTable, RefreshStartsOnlyWhenNoFlightAndNoCooldown) {
  FlightTable table;
  TimePoint t0(std::chrono::seconds(10));
  auto r = table.start_refresh(key("k"), t0);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->is_refresh());
  EXPECT_FALSE(table.start_refresh(key("k"), t0));  // one refresh at a time
  auto follower = table.join(key("k"), nullptr);    // a miss joins the refresh
  EXPECT_FALSE(follower.leader);
  ASSERT_TRUE(table.claim(*r));
  table.finish(*r, nullptr, Status::load_failed("upstream down"));
  table.set_cooldown(key("k"), t0, t0 + std::chrono::seconds(5));
  EXPECT_FALSE(table.start_refresh(key("k"), t0 + std::chrono::seconds(4)));
  EXPECT_TRUE(table.start_refresh(key("k"), t0 + std::chrono::seconds(5)));
}

TEST(FlightTable, ClearedCooldownAllowsRefresh) {
  FlightTable table;
  TimePoint t0(std::chrono::seconds(10));
  table.set_cooldown(key("k"), t0, t0 + std::chrono::seconds(5));
  EXPECT_FALSE(table.start_refresh(key("k"), t0));
  table.clear_cooldown(key("k"));
  EXPECT_TRUE(table.start_refresh(key("k"), t0));
}

TEST(FlightTable, PruningExpiredCooldownsKeepsTheActiveOnes) {
  FlightTable table(1);
  TimePoint t0(std::chrono::seconds(10));
  table.set_cooldown(key("long"), t0, t0 + std::chrono::hours(10));
  for (int i = 0; i < 3000; ++i) {
    table.set_cooldown(key("k" + std::to_string(i)), t0 + std::chrono::seconds(i),
                       t0 + std::chrono::seconds(i + 1));
  }
  EXPECT_FALSE(table.start_refresh(key("long"), t0 + std::chrono::seconds(3000)));
  EXPECT_FALSE(table.start_refresh(key("k2999"), t0 + std::chrono::seconds(2999)));
}

// Many threads race on the same keys round after round: each round has
// exactly one leader per key and every joiner gets that round's outcome.
TEST(FlightTable, ConcurrentJoinsElectOneLeaderPerKey) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 200;
  constexpr int kKeys = 4;
  FlightTable table(4);
  std::atomic<int> leaders{0};
  std::atomic<int> delivered{0};
  std::barrier sync(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      int value = t;
      for (int round = 0; round < kRounds; ++round) {
        std::vector<std::shared_ptr<Flight>> led;
        for (int k = 0; k < kKeys; ++k) {
          auto j = table.join(key("key" + std::to_string(k)), [&](Entry* e, const Status& s, bool) {
            EXPECT_TRUE(s.ok());
            EXPECT_NE(e, nullptr);
            delivered.fetch_add(1);
          });
          if (j.leader) {
            leaders.fetch_add(1);
            led.push_back(j.flight);
          }
        }
        sync.arrive_and_wait();  // everyone joined this round's flights
        for (auto& f : led) {
          ASSERT_TRUE(table.claim(*f));
          table.finish(*f, fake_entry(value), Status());
        }
        sync.arrive_and_wait();  // every flight of this round finished
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(leaders.load(), kRounds * kKeys);
  EXPECT_EQ(delivered.load(), kRounds * kKeys * kThreads);
  EXPECT_EQ(table.in_flight(), 0u);
}

}  // namespace flight_test
}  // namespace callcache::internal
