// StripedCounters (callcache/striped_counters.h) through its public lane,
// this_thread_lane(): threads bumping at once lose no increment (each has a
// lane no other living thread has), past kLanes threads the overflow lane
// counts too, and the lane a thread gets is the engine's for that thread.
#include "callcache/striped_counters.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <set>
#include <thread>
#include <vector>

#include "core/striped_counters.h"

namespace callcache {
namespace striped_counters_test {

TEST(StripedCounters, ConcurrentThreadsLoseNoIncrement) {
  StripedCounters<3> counters;
  constexpr std::size_t kThreads = StripedCounters<3>::kLanes + 8;  // some share the overflow lane
  constexpr std::uint64_t kEach = 20000;
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&counters, t] {
      for (std::uint64_t i = 0; i < kEach; ++i) counters.add(t % 3);
      counters.add(2, 5);
    });
  }
  for (auto& t : threads) t.join();
  std::uint64_t per[3] = {};
  for (std::size_t t = 0; t < kThreads; ++t) per[t % 3] += kEach;
  per[2] += 5 * kThreads;
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(counters.load(i), per[i]) << "counter " << i;
}

TEST(StripedCounters, LivingThreadsHaveDistinctLanesAndTheEnginesLane) {
  constexpr std::size_t kThreads = 8;
  std::vector<std::size_t> lanes(kThreads);
  std::vector<char> same_as_engine(kThreads);  // not vector<bool>: threads write their own element
  std::atomic<std::size_t> arrived{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      lanes[t] = this_thread_lane();
      same_as_engine[t] = lanes[t] == internal::reader_lane();
      arrived.fetch_add(1);
      while (arrived.load() < kThreads) std::this_thread::yield();  // all alive at once
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<std::size_t>(lanes.begin(), lanes.end()).size(), kThreads);
  for (std::size_t t = 0; t < kThreads; ++t) EXPECT_TRUE(same_as_engine[t]) << "thread " << t;
}

}  // namespace striped_counters_test
}  // namespace callcache
