// BoundedQueue: each overflow policy, close/drain, counters, and MPMC under
// concurrency (run under TSan in CI).
#include "callcache/bounded_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace callcache {
namespace bounded_queue_test {

using std::chrono::seconds;

std::unique_ptr<BoundedQueue<int>> make(OverflowPolicy policy, std::size_t capacity,
                                        const Clock& clock) {
  BoundedQueueOptions o;
  o.name = "updates";
  o.capacity = capacity;
  o.policy = policy;
  o.clock = &clock;
  auto q = BoundedQueue<int>::create(std::move(o));
  EXPECT_TRUE(q.ok());
  return std::move(q).value();
}

std::vector<int> pop_all(BoundedQueue<int>& q) {
  std::vector<int> out;
  while (auto v = q.try_pop()) out.push_back(*v);
  return out;
}

TEST(BoundedQueue, RejectRefusesWithAnErrorNamingTheQueue) {
  ManualClock clock;
  auto q = make(OverflowPolicy::kReject, 2, clock);
  EXPECT_EQ(q->push(1), PushOutcome::kEnqueued);
  EXPECT_EQ(q->push(2), PushOutcome::kEnqueued);
  PushOutcome o = q->push(3);
  EXPECT_EQ(o, PushOutcome::kRejected);
  Status s = q->to_status(o);
  EXPECT_EQ(s.code(), Code::kResourceExhausted);
  EXPECT_EQ(s.message(), "queue 'updates' is full (2 items): the new item was rejected");
  EXPECT_EQ(pop_all(*q), (std::vector<int>{1, 2}));
  auto st = q->stats();
  EXPECT_EQ(st.rejected, 1u);
  EXPECT_EQ(st.enqueued, 2u);
  EXPECT_EQ(st.dequeued, 2u);
  EXPECT_EQ(st.high_water, 2u);
  EXPECT_EQ(st.depth, 0u);
}

TEST(BoundedQueue, DropNewestKeepsTheQueuedItems) {
  ManualClock clock;
  auto q = make(OverflowPolicy::kDropNewest, 2, clock);
  ASSERT_TRUE(enqueued(q->push(1)));
  ASSERT_TRUE(enqueued(q->push(2)));
  EXPECT_EQ(q->push(3), PushOutcome::kDroppedNewest);
  EXPECT_EQ(q->to_status(PushOutcome::kDroppedNewest).code(), Code::kResourceExhausted);
  EXPECT_EQ(pop_all(*q), (std::vector<int>{1, 2}));
  EXPECT_EQ(q->stats().dropped_newest, 1u);
}

TEST(BoundedQueue, DropOldestMakesRoomForTheNewItem) {
  ManualClock clock;
  auto q = make(OverflowPolicy::kDropOldest, 2, clock);
  ASSERT_TRUE(enqueued(q->push(1)));
  ASSERT_TRUE(enqueued(q->push(2)));
  EXPECT_EQ(q->push(3), PushOutcome::kEnqueuedDroppedOldest);
  EXPECT_TRUE(q->to_status(PushOutcome::kEnqueuedDroppedOldest).ok());
  EXPECT_EQ(q->push(4), PushOutcome::kEnqueuedDroppedOldest);
  EXPECT_EQ(pop_all(*q), (std::vector<int>{3, 4}));
  auto st = q->stats();
  EXPECT_EQ(st.dropped_oldest, 2u);
  EXPECT_EQ(st.high_water, 2u);
}

TEST(BoundedQueue, BlockTimesOutOnTheQueuesClock) {
  ManualClock clock;
  auto q = make(OverflowPolicy::kBlock, 1, clock);
  ASSERT_TRUE(enqueued(q->push(1)));
  EXPECT_EQ(q->push_for(2, Duration::zero()), PushOutcome::kTimedOut);
  std::atomic<bool> done{false};
  PushOutcome outcome = PushOutcome::kEnqueued;
  const TimePoint t0 = clock.now();
  std::thread producer([&] {
    outcome = q->push_for(3, seconds(5));
    done = true;
  });
  while (!done.load()) {
    clock.advance(seconds(1));
    std::this_thread::yield();
  }
  producer.join();
  EXPECT_EQ(outcome, PushOutcome::kTimedOut);
  EXPECT_GE(clock.now() - t0, seconds(5));
  EXPECT_EQ(q->to_status(outcome).code(), Code::kTimeout);
  EXPECT_EQ(q->stats().timed_out, 2u);
  EXPECT_EQ(pop_all(*q), (std::vector<int>{1}));
}

TEST(BoundedQueue, BlockedProducerProceedsWhenAConsumerMakesRoom) {
  ManualClock clock;
  auto q = make(OverflowPolicy::kBlock, 1, clock);
  ASSERT_TRUE(enqueued(q->push(1)));
  PushOutcome outcome = PushOutcome::kTimedOut;
  std::thread producer([&] { outcome = q->push(2); });  // no timeout
  auto first = q->pop();
  producer.join();
  EXPECT_EQ(first, 1);
  EXPECT_EQ(outcome, PushOutcome::kEnqueued);
  EXPECT_EQ(q->try_pop(), 2);
}

TEST(BoundedQueue, CloseRefusesProducersAndLetsConsumersDrain) {
  ManualClock clock;
  auto q = make(OverflowPolicy::kBlock, 4, clock);
  ASSERT_TRUE(enqueued(q->push(1)));
  ASSERT_TRUE(enqueued(q->push(2)));
  q->close();
  q->close();
  EXPECT_TRUE(q->closed());
  EXPECT_EQ(q->push(3), PushOutcome::kClosed);
  EXPECT_EQ(q->to_status(PushOutcome::kClosed).code(), Code::kShutdown);
  EXPECT_EQ(q->pop(), 1);
  EXPECT_EQ(q->drain(), (std::vector<int>{2}));
  EXPECT_EQ(q->pop(), std::nullopt);  // closed and empty: does not block
  auto st = q->stats();
  EXPECT_TRUE(st.closed);
  EXPECT_EQ(st.refused_closed, 1u);
  EXPECT_EQ(st.dequeued, 2u);
}

TEST(BoundedQueue, CloseWakesBlockedConsumersAndProducers) {
  ManualClock clock;
  auto empty = make(OverflowPolicy::kBlock, 1, clock);
  auto full = make(OverflowPolicy::kBlock, 1, clock);
  ASSERT_TRUE(enqueued(full->push(1)));
  std::optional<int> got = 42;
  PushOutcome pushed = PushOutcome::kEnqueued;
  std::thread consumer([&] { got = empty->pop(); });
  std::thread producer([&] { pushed = full->push(2); });
  empty->close();
  full->close();
  consumer.join();
  producer.join();
  EXPECT_EQ(got, std::nullopt);
  EXPECT_EQ(pushed, PushOutcome::kClosed);
}

TEST(BoundedQueue, PopForTimesOut) {
  ManualClock clock;
  auto q = make(OverflowPolicy::kBlock, 1, clock);
  EXPECT_EQ(q->pop_for(Duration::zero()), std::nullopt);
  std::atomic<bool> done{false};
  std::optional<int> got = 7;
  std::thread consumer([&] {
    got = q->pop_for(seconds(2));
    done = true;
  });
  while (!done.load()) {
    clock.advance(seconds(1));
    std::this_thread::yield();
  }
  consumer.join();
  EXPECT_EQ(got, std::nullopt);
}

TEST(BoundedQueue, TryPushNeverWaitsAndKeepsTheItemWhenFull) {
  ManualClock clock;
  auto q = make(OverflowPolicy::kBlock, 1, clock);
  int a = 1, b = 2;
  EXPECT_EQ(q->try_push(a), PushOutcome::kEnqueued);
  // Full under kBlock: no wait, nothing counted, the item stays with the caller.
  EXPECT_EQ(q->try_push(b), std::nullopt);
  EXPECT_EQ(b, 2);
  EXPECT_EQ(q->stats().timed_out, 0u);
  EXPECT_EQ(q->try_pop(), 1);
  EXPECT_EQ(q->try_push(b), PushOutcome::kEnqueued);
  auto other = make(OverflowPolicy::kDropOldest, 1, clock);
  EXPECT_EQ(other->try_push(a), PushOutcome::kEnqueued);
  EXPECT_EQ(other->try_push(b), PushOutcome::kEnqueuedDroppedOldest);
  EXPECT_EQ(pop_all(*other), std::vector<int>{2});
  auto reject = make(OverflowPolicy::kReject, 1, clock);
  EXPECT_EQ(reject->try_push(a), PushOutcome::kEnqueued);
  EXPECT_EQ(reject->try_push(b), PushOutcome::kRejected);
  reject->close();
  EXPECT_EQ(reject->try_push(b), PushOutcome::kClosed);
  EXPECT_EQ(reject->stats().rejected, 1u);
  EXPECT_EQ(reject->stats().refused_closed, 1u);
}

TEST(BoundedQueue, BadOptionsAreRefused) {
  BoundedQueueOptions o;
  o.name = "q1";
  o.capacity = 0;
  auto q = BoundedQueue<int>::create(o);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().message(), "queue 'q1': capacity must be at least 1");
  EXPECT_STREQ(overflow_policy_name(OverflowPolicy::kDropOldest), "drop_oldest");
  EXPECT_STREQ(push_outcome_name(PushOutcome::kRejected), "rejected");
}

TEST(BoundedQueue, MoveOnlyItemsAndStatsRendering) {
  BoundedQueueOptions o;
  o.capacity = 2;
  auto q = std::move(BoundedQueue<std::unique_ptr<int>>::create(o)).value();
  ASSERT_TRUE(enqueued(q->push(std::make_unique<int>(5))));
  auto v = q->pop();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(**v, 5);
  auto st = q->stats();
  EXPECT_EQ(st.to_json(),
            "{\"enqueued\":1,\"dequeued\":1,\"dropped_newest\":0,\"dropped_oldest\":0,"
            "\"rejected\":0,\"timed_out\":0,\"refused_closed\":0,\"high_water\":1,\"depth\":0,"
            "\"capacity\":2,\"closed\":false}");
  EXPECT_NE(st.to_prometheus("q\"x").find("callcache_queue_enqueued_total{queue=\"q\\\"x\"} 1\n"),
            std::string::npos);
}

TEST(BoundedQueueConcurrency, ManyProducersAndConsumersDeliverEveryItemOnce) {
  BoundedQueueOptions o;
  o.capacity = 16;
  auto q = std::move(BoundedQueue<int>::create(o)).value();
  constexpr int kProducers = 4, kConsumers = 3, kPerProducer = 5000;
  std::vector<std::atomic<int>> seen(kProducers * kPerProducer);
  std::vector<std::thread> threads;
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&] {
      while (auto v = q->pop()) seen[*v].fetch_add(1);
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        ASSERT_EQ(q->push(p * kPerProducer + i), PushOutcome::kEnqueued);
      }
    });
  }
  for (auto& t : producers) t.join();
  q->close();
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << i;
  auto st = q->stats();
  EXPECT_EQ(st.enqueued, static_cast<std::uint64_t>(kProducers * kPerProducer));
  EXPECT_EQ(st.dequeued, st.enqueued);
  EXPECT_LE(st.high_water, 16u);
  EXPECT_GE(st.high_water, 1u);
}

}  // namespace bounded_queue_test
}  // namespace callcache
