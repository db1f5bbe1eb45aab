// SeenSet: de-duplication with TTL (virtual time), LRU capacity bound,
// concurrent inserts (run under TSan in CI).
#include "callcache/seen_set.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace callcache {
namespace seen_set_test {

using std::chrono::seconds;

std::unique_ptr<SeenSet> make(const Clock& clock, std::size_t capacity, Duration ttl,
                              bool refresh = true) {
  SeenSetOptions o;
  o.capacity = capacity;
  o.ttl = ttl;
  o.refresh_on_repeat = refresh;
  o.clock = &clock;
  auto s = SeenSet::create(o);
  EXPECT_TRUE(s.ok());
  return std::move(s).value();
}

TEST(SeenSet, FirstSightingIsNewRepeatsAreNot) {
  ManualClock clock;
  auto s = make(clock, 10, seconds(60));
  EXPECT_TRUE(s->insert_if_new("chat1:100"));
  EXPECT_FALSE(s->insert_if_new("chat1:100"));
  EXPECT_TRUE(s->insert_if_new("chat1:101"));
  EXPECT_TRUE(s->insert_if_new(std::int64_t{42}));
  EXPECT_FALSE(s->insert_if_new(std::int64_t{42}));
  EXPECT_TRUE(s->contains("42"));
  auto st = s->stats();
  EXPECT_EQ(st.inserted, 3u);
  EXPECT_EQ(st.duplicates, 2u);
  EXPECT_EQ(st.size, 3u);
  EXPECT_TRUE(s->erase("42"));
  EXPECT_FALSE(s->erase("42"));
  EXPECT_TRUE(s->insert_if_new(std::int64_t{42}));
}

TEST(SeenSet, IdsAreForgottenAfterTheTtlAndRepeatsRefreshIt) {
  ManualClock clock;
  auto s = make(clock, 10, seconds(10));
  EXPECT_TRUE(s->insert_if_new("a"));
  clock.advance(seconds(9));
  EXPECT_FALSE(s->insert_if_new("a"));  // refreshed at 9 s
  clock.advance(seconds(9));
  EXPECT_FALSE(s->insert_if_new("a"));  // 9 s after the refresh: still known
  EXPECT_TRUE(s->contains("a"));
  clock.advance(seconds(10));
  EXPECT_FALSE(s->contains("a"));
  EXPECT_TRUE(s->insert_if_new("a"));  // forgotten: new again
  EXPECT_EQ(s->stats().expired, 1u);
}

TEST(SeenSet, WithoutRefreshTheTtlRunsFromTheFirstSighting) {
  ManualClock clock;
  auto s = make(clock, 10, seconds(10), /*refresh=*/false);
  EXPECT_TRUE(s->insert_if_new("a"));
  clock.advance(seconds(9));
  EXPECT_FALSE(s->insert_if_new("a"));
  clock.advance(seconds(1));
  EXPECT_TRUE(s->insert_if_new("a"));
}

TEST(SeenSet, FullSetEvictsTheLeastRecentlySeen) {
  ManualClock clock;
  auto s = make(clock, 3, seconds(60));
  EXPECT_TRUE(s->insert_if_new("a"));
  EXPECT_TRUE(s->insert_if_new("b"));
  EXPECT_TRUE(s->insert_if_new("c"));
  EXPECT_FALSE(s->insert_if_new("a"));  // a is now the most recent
  EXPECT_TRUE(s->insert_if_new("d"));   // evicts b
  EXPECT_FALSE(s->contains("b"));
  EXPECT_TRUE(s->contains("a"));
  EXPECT_TRUE(s->contains("c"));
  EXPECT_EQ(s->size(), 3u);
  auto st = s->stats();
  EXPECT_EQ(st.evicted, 1u);
  EXPECT_EQ(st.capacity, 3u);
}

TEST(SeenSet, CleanupDropsOnlyExpiredIds) {
  ManualClock clock;
  auto s = make(clock, 100, seconds(10));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(s->insert_if_new(std::int64_t{i}));
  clock.advance(seconds(5));
  for (int i = 50; i < 80; ++i) ASSERT_TRUE(s->insert_if_new(std::int64_t{i}));
  clock.advance(seconds(5));
  EXPECT_EQ(s->cleanup_expired(), 50u);
  EXPECT_EQ(s->size(), 30u);
  EXPECT_EQ(s->stats().to_json(),
            "{\"inserted\":80,\"duplicates\":0,\"evicted\":0,\"expired\":50,\"size\":30,"
            "\"capacity\":100}");
}

TEST(SeenSet, BadOptionsAreRefused) {
  SeenSetOptions o;
  o.capacity = 0;
  EXPECT_EQ(SeenSet::create(o).status().message(), "seen set: capacity must be at least 1");
  o.capacity = 1;
  o.ttl = Duration::zero();
  EXPECT_EQ(SeenSet::create(o).status().code(), Code::kInvalidArgument);
}

TEST(SeenSetConcurrency, EachIdIsNewExactlyOnceAcrossThreads) {
  ManualClock clock;
  auto s = make(clock, 100'000, seconds(60));
  constexpr int kThreads = 4, kIds = 20'000;
  std::atomic<int> firsts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIds; ++i) {
        if (s->insert_if_new(std::int64_t{i})) firsts.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(firsts.load(), kIds);
  auto st = s->stats();
  EXPECT_EQ(st.duplicates, static_cast<std::uint64_t>((kThreads - 1) * kIds));
}

}  // namespace seen_set_test
}  // namespace callcache
