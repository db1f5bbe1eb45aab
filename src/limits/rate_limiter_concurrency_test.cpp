// Concurrent callers of one rate limiter: reservations stay atomic across
// rules and never overbook a key (run under ThreadSanitizer in CI).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "callcache/rate_limiter.h"

namespace callcache {
namespace rate_limiter_concurrency_test {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kThreads = 4;

std::unique_ptr<RateLimiter> make(std::vector<Rule> rules, const Clock& clock) {
  RateLimiterOptions o;
  o.rules = std::move(rules);
  o.clock = &clock;
  o.shards = 4;  // few stripes: keys of one call often share or cross stripes
  return std::move(make_local_rate_limiter(std::move(o))).value();
}

CallAttributes send(std::int64_t chat) {
  CallAttributes c;
  c.method = "sendMessage";
  c.bot = "bot";
  c.chat = chat;
  return c;
}

TEST(RateLimiterConcurrency, BlockingAcquireReturnsWhenTheClockReachesTheSlot) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  ASSERT_TRUE(rl->acquire(send(9)).ok());
  const TimePoint slot = clock.now() + seconds(1);
  TimePoint returned_at{};
  std::thread t([&] {
    ASSERT_TRUE(rl->acquire(send(9)).ok());
    returned_at = clock.now();
  });
  clock.advance(milliseconds(400));
  clock.advance(milliseconds(600));
  t.join();
  EXPECT_GE(returned_at, slot);
}

TEST(RateLimiterConcurrency, RefusedCallsNeverLeakCapacityOfOtherRules) {
  ManualClock clock;  // frozen: nothing frees up during the test
  Rule bot;
  bot.name = "bot";
  bot.limit = 10;
  bot.burst = 10;
  bot.key = key_scope::kBot;
  Rule chat;
  chat.name = "chat";
  chat.key = key_scope::kBot | key_scope::kChat;
  auto rl = make({bot, chat}, clock);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 2000; ++i) {
        if (rl->try_acquire(send(1 + rng() % 5)).admitted) admitted.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(admitted.load(), 5);  // one per chat
  // The bot rule lent exactly 5 of its burst of 10: 5 new chats pass, the 6th does not.
  for (int c = 100; c < 105; ++c) EXPECT_TRUE(rl->try_acquire(send(c)).admitted) << c;
  EXPECT_FALSE(rl->try_acquire(send(105)).admitted);
  auto st = rl->stats();
  EXPECT_EQ(st.rules[0].calls, 10u);
  EXPECT_EQ(st.rules[1].calls, 10u);
}

TEST(RateLimiterConcurrency, ConcurrentReservationsNeverOverbookAnyKey) {
  ManualClock clock;
  auto rl = make(telegram_bot_preset(), clock);
  const TimePoint t0 = clock.now();
  std::mutex mu;  // guards starts
  std::map<std::int64_t, std::vector<TimePoint>> starts;  // chat -> start times
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      for (int i = 0; i < 300; ++i) {
        std::int64_t chat = static_cast<std::int64_t>(rng() % 40) - 20;
        if (chat == 0) chat = 21;
        auto w = rl->reserve(send(chat));
        ASSERT_TRUE(w.ok());
        std::lock_guard lock(mu);
        starts[chat].push_back(t0 + *w);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<TimePoint> all;
  for (auto& [chat, times] : starts) {
    std::sort(times.begin(), times.end());
    const Duration gap = chat > 0 ? Duration(seconds(1)) : Duration(seconds(3));
    for (std::size_t i = 1; i < times.size(); ++i) {
      ASSERT_GE(times[i] - times[i - 1], gap) << "chat " << chat;
    }
    all.insert(all.end(), times.begin(), times.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * 300));
  const Duration bot_gap = emission_interval(telegram_bot_preset()[0]);
  for (std::size_t i = 1; i < all.size(); ++i) ASSERT_GE(all[i] - all[i - 1], bot_gap);
}

TEST(RateLimiterConcurrency, PenaltiesSweepsAndStatsRaceSafelyWithAcquires) {
  ManualClock clock;
  ManualScheduler sched(clock);
  RateLimiterOptions o;
  o.rules = telegram_bot_preset();
  o.scheduler = &sched;
  o.sweep_interval = std::chrono::milliseconds(50);
  auto rl = std::move(make_local_rate_limiter(std::move(o))).value();
  std::atomic<bool> stop{false};
  std::atomic<int> async_done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 3000; ++i) {
        std::int64_t chat = static_cast<std::int64_t>(rng() % 1000) + 1;
        (void)rl->try_acquire(send(chat));
        if (i % 100 == 0) {
          ASSERT_TRUE(rl->acquire_async(send(chat), seconds(1), [&](Status) { async_done++; }).ok());
        }
        if (i % 50 == 0) {
          ASSERT_TRUE(rl->penalize(send(chat), key_scope::kBot | key_scope::kChat, seconds(2)).ok());
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) {
      (void)rl->stats().to_json();
      (void)rl->sweep_idle();
      std::this_thread::yield();
    }
  });
  std::thread ticker([&] {
    while (!stop.load()) {
      sched.advance(std::chrono::milliseconds(7));
      std::this_thread::yield();
    }
  });
  threads[0].join();
  threads[1].join();
  stop = true;
  threads[2].join();
  ticker.join();
  sched.advance(seconds(5));
  EXPECT_EQ(async_done.load(), 60);
  sched.advance(seconds(60));
  EXPECT_EQ(rl->stats().tracked_keys, 0u);
}

}  // namespace rate_limiter_concurrency_test
}  // namespace callcache
