#include "post_write.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace callcache::gateway::logic {
namespace post_write_test {

using namespace std::chrono_literals;

TEST(PostWriteState, WindowOpensAndCloses) {
  ManualClock clock;
  PostWriteState s;
  EXPECT_FALSE(s.bypassing("a", clock.now()));
  s.mark("a", clock.now() + 3s);
  EXPECT_TRUE(s.bypassing("a", clock.now()));
  EXPECT_FALSE(s.bypassing("b", clock.now()));
  clock.advance(2999ms);
  EXPECT_TRUE(s.bypassing("a", clock.now()));
  clock.advance(1ms);
  EXPECT_FALSE(s.bypassing("a", clock.now()));
  EXPECT_LE(s.size(), 1u);  // purged lazily
}

TEST(PostWriteState, LaterMarksExtendEarlierOnesNeverShorten) {
  ManualClock clock;
  PostWriteState s;
  const TimePoint t0 = clock.now();
  s.mark("a", t0 + 5s);
  s.mark("a", t0 + 2s);
  clock.advance(4s);
  EXPECT_TRUE(s.bypassing("a", clock.now()));
  s.mark(std::vector<std::string>{"a", "b"}, clock.now() + 10s);
  clock.advance(9s);
  EXPECT_TRUE(s.bypassing("a", clock.now()));
  EXPECT_TRUE(s.bypassing("b", clock.now()));
}

TEST(PostWriteState, MemoryIsBounded) {
  ManualClock clock;
  PostWriteState s(160);  // 10 per shard
  for (int i = 0; i < 10000; ++i) {
    s.mark("scope-" + std::to_string(i), clock.now() + std::chrono::seconds(1 + i));
  }
  EXPECT_LE(s.size(), 160u);
  // The newest windows (ending last) are the ones kept.
  EXPECT_TRUE(s.bypassing("scope-9999", clock.now()));
  EXPECT_FALSE(s.bypassing("scope-0", clock.now()));
}

TEST(PostWriteState, ExpiredWindowsGoFirstWhenFull) {
  ManualClock clock;
  PostWriteState s(16);  // 1 per shard
  s.mark("old", clock.now() + 1s);
  clock.advance(5s);
  for (int i = 0; i < 64; ++i) s.mark("new-" + std::to_string(i), clock.now() + 10s);
  EXPECT_LE(s.size(), 16u);
  EXPECT_FALSE(s.bypassing("old", clock.now()));
}

TEST(PostWriteState, ConcurrentMarksAndReads) {
  ManualClock clock;
  PostWriteState s(1024);
  std::atomic<bool> stop{false};
  std::atomic<long> hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        std::string id = "t" + std::to_string(t) + "-" + std::to_string(i % 300);
        s.mark(id, clock.now() + 1h);
        if (s.bypassing(id, clock.now())) hits.fetch_add(1);
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) (void)s.size();
  });
  for (int t = 0; t < 4; ++t) threads[t].join();
  stop = true;
  threads.back().join();
  // A scope just marked with a window an hour long is always seen, unless
  // the bound evicted it in between (1200 ids over 1024 slots).
  EXPECT_GT(hits.load(), 4 * 5000 * 3 / 4);
  EXPECT_LE(s.size(), 1024u + 16u);
}

}  // namespace post_write_test
}  // namespace callcache::gateway::logic
