#include "callcache/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace callcache {
namespace clock_test {

using namespace std::chrono_literals;

TEST(ManualClock, MovesOnlyWhenTold) {
  ManualClock clock;
  TimePoint t0 = clock.now();
  EXPECT_EQ(clock.now(), t0);
  clock.advance(5s);
  EXPECT_EQ(clock.now() - t0, 5s);
}

TEST(ManualScheduler, RunsTasksInDeadlineOrderAtTheirTime) {
  ManualClock clock;
  ManualScheduler sched(clock);
  std::vector<int> order;
  std::vector<TimePoint> at;
  TimePoint t0 = clock.now();
  sched.schedule_after(3s, [&] {
    order.push_back(3);
    at.push_back(clock.now());
  });
  sched.schedule_after(1s, [&] {
    order.push_back(1);
    at.push_back(clock.now());
  });
  auto id = sched.schedule_after(2s, [&] { order.push_back(2); });
  EXPECT_TRUE(sched.cancel(id));
  EXPECT_FALSE(sched.cancel(id));
  EXPECT_EQ(sched.advance(500ms), 0u);
  EXPECT_EQ(sched.advance(10s), 2u);
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
  EXPECT_EQ(at[0] - t0, 1s);
  EXPECT_EQ(at[1] - t0, 3s);
  EXPECT_EQ(clock.now() - t0, 10500ms);
}

TEST(ManualScheduler, TaskScheduledByTaskRunsIfDue) {
  ManualClock clock;
  ManualScheduler sched(clock);
  int runs = 0;
  sched.schedule_after(1s, [&] {
    ++runs;
    sched.schedule_after(1s, [&] { ++runs; });
  });
  EXPECT_EQ(sched.advance(5s), 2u);
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(sched.pending(), 0u);
}

TEST(CoarseClock, AdvancesWithRealTime) {
  CoarseClock clock(1ms);
  TimePoint a = clock.now();
  std::this_thread::sleep_for(20ms);
  EXPECT_GT(clock.now(), a);
}

TEST(ThreadScheduler, RunsDueTaskAndDropsCancelled) {
  SteadyClock clock;
  auto sched = make_thread_scheduler(clock);
  std::atomic<int> ran{0};
  sched->schedule_after(1ms, [&] { ran.fetch_add(1); });
  auto id = sched->schedule_after(1h, [&] { ran.fetch_add(100); });
  EXPECT_TRUE(sched->cancel(id));
  for (int i = 0; i < 2000 && ran.load() == 0; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(ran.load(), 1);
}

}  // namespace clock_test
}  // namespace callcache
