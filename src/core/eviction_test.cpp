// Eviction order and exact bounds for every policy.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "callcache/cache.h"

namespace callcache {
namespace eviction_test {

using namespace std::chrono_literals;

std::unique_ptr<Engine> make(EvictionPolicy pol, std::uint64_t max_entries, std::uint64_t max_bytes,
                             std::size_t shards, const Clock* clock) {
  NamespacePolicy p;
  p.max_entries = max_entries;
  p.max_bytes = max_bytes;
  p.eviction = pol;
  p.ttl = 1h;
  EngineOptions o;
  o.namespaces = {{"ns", p}};
  o.shards = shards;
  o.clock = clock;
  o.sweep_interval = Duration::zero();
  return Engine::create(o).value();
}

class PerPolicy : public ::testing::TestWithParam<EvictionPolicy> {
 protected:
  ManualClock clock;
};

TEST_P(PerPolicy, NeverExceedsEntryOrByteBoundsAfterAnyInsert) {
  for (std::size_t shards : {1u, 4u}) {
    auto engine = make(GetParam(), 100, 5000, shards, &clock);
    auto cache = Cache<std::string>::open(*engine, "ns").value();
    std::mt19937_64 rng(42);
    for (int i = 0; i < 5000; ++i) {
      std::string key = "k" + std::to_string(rng() % 400);
      std::string value(rng() % 120, 'v');
      (void)cache.put(TenantId{rng() % 3 + 1}, key, value);
      if (rng() % 2) (void)cache.get(TenantId{1}, key);
      auto s = engine->stats().total;
      ASSERT_LE(s.entries, 100u);
      ASSERT_LE(s.bytes, 5000u);
    }
  }
}

// Charges of 65535 bytes and more are kept outside the entry header: the
// byte count must still add and take back exactly what each value weighs.
TEST_P(PerPolicy, LargeValuesAreChargedExactly) {
  auto engine = make(GetParam(), 100, 300000, 1, &clock);
  auto cache = Cache<std::string>::open(*engine, "ns").value();
  ASSERT_TRUE(cache.put(TenantId{1}, "a", std::string(70000, 'a')).ok());
  ASSERT_TRUE(cache.put(TenantId{1}, "b", std::string(65535, 'b')).ok());
  ASSERT_TRUE(cache.put(TenantId{1}, "c", std::string(65534, 'c')).ok());
  EXPECT_EQ(engine->stats().total.bytes, 70000u + 65535u + 65534u);
  ASSERT_TRUE(cache.put(TenantId{1}, "a", std::string(100, 'a')).ok());  // an update
  EXPECT_EQ(engine->stats().total.bytes, 100u + 65535u + 65534u);
  EXPECT_TRUE(cache.erase(TenantId{1}, "b"));
  EXPECT_EQ(engine->stats().total.bytes, 100u + 65534u);
  // 200000 more bytes do not fit beside the rest: the bound evicts exactly.
  ASSERT_TRUE(cache.put(TenantId{1}, "d", std::string(200000, 'd')).ok());
  const auto s = engine->stats().total;
  EXPECT_LE(s.bytes, 300000u);
  EXPECT_EQ(s.bytes, 200000u + (cache.get(TenantId{1}, "a") ? 100u : 0u) +
                         (cache.get(TenantId{1}, "c") ? 65534u : 0u));
  auto d = cache.get(TenantId{1}, "d");
  ASSERT_TRUE(d);
  EXPECT_EQ((*d)->size(), 200000u);
}

TEST_P(PerPolicy, PutThenGetHitsInAFullCache) {
  auto engine = make(GetParam(), 50, 0, 1, &clock);
  auto cache = Cache<int>::open(*engine, "ns").value();
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(cache.put(TenantId{1}, "k" + std::to_string(i), i).ok());
    ASSERT_TRUE(cache.get(TenantId{1}, "k" + std::to_string(i))) << i;
  }
  EXPECT_EQ(engine->stats().total.evicted(EvictionCause::kSize), 450u);
}

INSTANTIATE_TEST_SUITE_P(Policies, PerPolicy,
                         ::testing::Values(EvictionPolicy::kLru, EvictionPolicy::kS3Fifo,
                                           EvictionPolicy::kWTinyLfu, EvictionPolicy::kAdaptive),
                         [](const auto& info) {
                           return std::string(eviction_policy_name(info.param));
                         });

TEST(Lru, EvictsLeastRecentlyUsedExactlyWhenSingleThreaded) {
  ManualClock clock;
  auto engine = make(EvictionPolicy::kLru, 3, 0, 1, &clock);
  auto cache = Cache<int>::open(*engine, "ns").value();
  ASSERT_TRUE(cache.put(TenantId{1}, "a", 1).ok());
  ASSERT_TRUE(cache.put(TenantId{1}, "b", 2).ok());
  ASSERT_TRUE(cache.put(TenantId{1}, "c", 3).ok());
  ASSERT_TRUE(cache.get(TenantId{1}, "a"));  // a is now most recent
  ASSERT_TRUE(cache.put(TenantId{1}, "d", 4).ok());
  EXPECT_FALSE(cache.get(TenantId{1}, "b"));
  EXPECT_TRUE(cache.get(TenantId{1}, "a"));
  EXPECT_TRUE(cache.get(TenantId{1}, "c"));
  EXPECT_TRUE(cache.get(TenantId{1}, "d"));
}

// A hot working set survives a long one-time scan under S3-FIFO but not LRU.
double hot_hit_ratio_after_scan(EvictionPolicy pol) {
  ManualClock clock;
  auto engine = make(pol, 1000, 0, 1, &clock);
  auto cache = Cache<int>::open(*engine, "ns").value();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 500; ++i) {
      std::string k = "hot" + std::to_string(i);
      if (!cache.get(TenantId{1}, k)) (void)cache.put(TenantId{1}, k, i);
    }
  }
  for (int i = 0; i < 10000; ++i) (void)cache.put(TenantId{1}, "scan" + std::to_string(i), i);
  int hits = 0;
  for (int i = 0; i < 500; ++i)
    hits += cache.get(TenantId{1}, "hot" + std::to_string(i)).has_value();
  return hits / 500.0;
}

// Every key is read twice, 30 new keys apart, in a 100-entry cache: LRU
// keeps every key until its second read; the paper's 10-entry small queue
// evicts them all first. The small queue's floor must keep them.
double reuse_at_distance_hit_ratio(EvictionPolicy pol) {
  ManualClock clock;
  auto engine = make(pol, 100, 0, 1, &clock);
  auto cache = Cache<int>::open(*engine, "ns").value();
  int hits = 0, reads = 0;
  for (int t = 0; t < 20000; ++t) {
    for (int k : {t, t - 30}) {
      if (k < 0) continue;
      std::string key = "k" + std::to_string(k);
      ++reads;
      if (cache.get(TenantId{1}, key)) {
        ++hits;
      } else {
        (void)cache.put(TenantId{1}, key, k);
      }
    }
  }
  return static_cast<double>(hits) / reads;
}

TEST(S3Fifo, SmallCachesKeepShortReuseDistances) {
  double lru = reuse_at_distance_hit_ratio(EvictionPolicy::kLru);
  double s3 = reuse_at_distance_hit_ratio(EvictionPolicy::kS3Fifo);
  EXPECT_GT(lru, 0.49);
  EXPECT_GT(s3, 0.9 * lru) << "lru " << lru << " s3fifo " << s3;
}

TEST(S3Fifo, ResistsScans) {
  EXPECT_GE(hot_hit_ratio_after_scan(EvictionPolicy::kS3Fifo), 0.9);
  EXPECT_LE(hot_hit_ratio_after_scan(EvictionPolicy::kLru), 0.1);
}

TEST(WTinyLfu, ResistsScans) {
  // Keys read three times outrank keys written once: the scan passes
  // through the window and is refused by the frequency filter.
  EXPECT_GE(hot_hit_ratio_after_scan(EvictionPolicy::kWTinyLfu), 0.9);
}

// A loop over more keys than the cache holds: recency-based policies miss
// every read, frequency-based admission keeps a fixed part of the loop.
double loop_hit_ratio(EvictionPolicy pol) {
  ManualClock clock;
  auto engine = make(pol, 500, 0, 1, &clock);
  auto cache = Cache<int>::open(*engine, "ns").value();
  int hits = 0, reads = 0;
  for (int round = 0; round < 30; ++round) {
    for (int k = 0; k < 600; ++k) {
      std::string key = "k" + std::to_string(k);
      ++reads;
      if (cache.get(TenantId{1}, key)) {
        ++hits;
      } else {
        (void)cache.put(TenantId{1}, key, k);
      }
    }
  }
  return static_cast<double>(hits) / reads;
}

TEST(WTinyLfu, KeepsPartOfALoopLargerThanTheCache) {
  EXPECT_LE(loop_hit_ratio(EvictionPolicy::kLru), 0.01);
  EXPECT_GE(loop_hit_ratio(EvictionPolicy::kWTinyLfu), 0.5);
}

TEST(WTinyLfu, AdmitsARepeatedKeyOverAOneHitWonder) {
  // Capacity 100: window of 1, main of 99. Fill main with keys read twice,
  // then stream keys read once (fewer than the sketch's aging period):
  // they do not displace main's entries.
  ManualClock clock;
  auto engine = make(EvictionPolicy::kWTinyLfu, 100, 0, 1, &clock);
  auto cache = Cache<int>::open(*engine, "ns").value();
  for (int i = 0; i < 99; ++i) {
    ASSERT_TRUE(cache.put(TenantId{1}, "hot" + std::to_string(i), i).ok());
    ASSERT_TRUE(cache.get(TenantId{1}, "hot" + std::to_string(i)));
  }
  for (int i = 0; i < 500; ++i)
    ASSERT_TRUE(cache.put(TenantId{1}, "once" + std::to_string(i), i).ok());
  int kept = 0;
  for (int i = 0; i < 99; ++i)
    kept += cache.get(TenantId{1}, "hot" + std::to_string(i)).has_value();
  EXPECT_GE(kept, 95);
}

}  // namespace eviction_test
}  // namespace callcache
