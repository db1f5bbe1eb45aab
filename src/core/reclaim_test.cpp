// Grace periods and deferred freeing: nothing retired is freed while a read
// section that could still see it is running, everything is freed once they
// end, and reader records are recycled when threads exit.
#include "reclaim.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace callcache::internal {
namespace reclaim_test {

using namespace std::chrono_literals;

// A thread that enters a read section and stays in it until released.
class Reader {
 public:
  Reader() {
    thread_ = std::thread([this] {
      ReadSection section;
      std::unique_lock lock(mu_);
      inside_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return release_; });
    });
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return inside_; });
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      release_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  ~Reader() {
    if (thread_.joinable()) release();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool inside_ = false, release_ = false;
  std::thread thread_;
};

std::atomic<int> g_freed{0};
void count_free(void*) noexcept { g_freed.fetch_add(1); }

TEST(GracePeriods, WaitForSectionsRunningWhenRequested) {
  GracePeriods& gp = GracePeriods::global();
  Reader reader;
  const std::uint64_t n = gp.request(/*urgent=*/true);
  for (int i = 0; i < 50; ++i) {
    EXPECT_FALSE(gp.completed(n)) << "a section that started before the request is still running";
    std::this_thread::sleep_for(1ms);
  }
  reader.release();
  for (int i = 0; i < 10000 && !gp.completed(n); ++i) std::this_thread::sleep_for(100us);
  EXPECT_TRUE(gp.completed(n));
}

TEST(GracePeriods, SectionsStartedLaterDoNotDelayIt) {
  GracePeriods& gp = GracePeriods::global();
  const std::uint64_t n = gp.request(/*urgent=*/true);
  Reader later;  // enters after the request, and stays
  for (int i = 0; i < 10000 && !gp.completed(n); ++i) std::this_thread::sleep_for(100us);
  EXPECT_TRUE(gp.completed(n)) << "only sections running when it was requested count";
  later.release();
}

TEST(GracePeriods, NestedSectionsEndWithTheOutermost) {
  GracePeriods& gp = GracePeriods::global();
  std::atomic<bool> inner_done{false}, release{false};
  std::uint64_t n = 0;
  std::thread t([&] {
    ReadSection outer;
    { ReadSection inner; }
    inner_done = true;
    while (!release) std::this_thread::yield();
  });
  while (!inner_done) std::this_thread::yield();
  n = gp.request(true);
  std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(gp.completed(n)) << "the outer section is still open";
  release = true;
  t.join();
  gp.synchronize();
  EXPECT_TRUE(gp.completed(n));
}

TEST(RetireList, FreesOnlyAfterTheGracePeriod) {
  g_freed = 0;
  {
    RetireList list;
    Reader reader;
    for (int i = 0; i < 3; ++i) list.retire(nullptr, &count_free);
    list.collect(/*force=*/true);
    std::this_thread::sleep_for(5ms);
    list.collect();
    EXPECT_EQ(g_freed.load(), 0) << "a reader may still hold what was retired";
    reader.release();
    for (int i = 0; i < 10000 && g_freed.load() < 3; ++i) {
      std::this_thread::sleep_for(100us);
      list.collect();
    }
    EXPECT_EQ(g_freed.load(), 3);
    EXPECT_EQ(list.pending(), 0u);
    list.retire(nullptr, &count_free);
  }
  EXPECT_EQ(g_freed.load(), 4) << "the list frees what is left when destroyed";
}

TEST(RetireList, BatchesUntilForcedOrFull) {
  g_freed = 0;
  RetireList list;
  for (std::size_t i = 0; i + 1 < RetireList::kBatch; ++i) list.retire(nullptr, &count_free);
  list.collect();
  EXPECT_EQ(list.pending(), RetireList::kBatch - 1) << "no grace period for a partial batch";
  list.retire(nullptr, &count_free);
  for (int i = 0; i < 10000 && list.pending(); ++i) {
    list.collect();
    std::this_thread::sleep_for(100us);
  }
  EXPECT_EQ(g_freed.load(), static_cast<int>(RetireList::kBatch));
}

TEST(ReaderRecords, AreRecycledWhenThreadsExit) {
  std::vector<ReaderRecord*> seen;
  for (int i = 0; i < 8; ++i) {
    std::thread([&] { seen.push_back(&my_reader_record()); }).join();
  }
  // Threads run one after another: each finds the previous one's record free.
  for (ReaderRecord* r : seen) EXPECT_EQ(r, seen.front());
  EXPECT_EQ(seen.front()->seq.load() % 2, 0u) << "released outside any section";
}

TEST(ReaderRecords, LiveThreadsHaveDistinctRecords) {
  constexpr int kThreads = 6;
  std::vector<ReaderRecord*> records(kThreads);
  std::atomic<int> arrived{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      records[static_cast<std::size_t>(i)] = &my_reader_record();
      arrived.fetch_add(1);
      while (arrived.load() < kThreads) std::this_thread::yield();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    for (int j = i + 1; j < kThreads; ++j)
      EXPECT_NE(records[static_cast<std::size_t>(i)], records[static_cast<std::size_t>(j)]);
  }
}

}  // namespace reclaim_test
}  // namespace callcache::internal
