#include "tools/sim/reference.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <mutex>

#include "tools/sim/generators.h"
#include "tools/sim/simulate.h"

namespace callcache::sim {
namespace reference_test {

Trace trace_of(const std::vector<std::uint64_t>& keys) { return densify("t", keys); }

// The textbook page-reference string of Belady's anomaly.
const std::vector<std::uint64_t> kBelady = {1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5};

TEST(Reference, LruOnTheTextbookSequence) {
  Trace t = trace_of(kBelady);
  EXPECT_EQ(simulate_reference(ReferencePolicy::kLru, t, 3), 10u);
  EXPECT_EQ(simulate_reference(ReferencePolicy::kLru, t, 4), 8u);
}

TEST(Reference, FifoShowsBeladysAnomaly) {
  Trace t = trace_of(kBelady);
  EXPECT_EQ(simulate_reference(ReferencePolicy::kFifo, t, 3), 9u);
  EXPECT_EQ(simulate_reference(ReferencePolicy::kFifo, t, 4), 10u);  // more room, more misses
}

TEST(Reference, OptOnTheTextbookSequence) {
  Trace t = trace_of(kBelady);
  EXPECT_EQ(simulate_reference(ReferencePolicy::kOpt, t, 3), 7u);
  EXPECT_EQ(simulate_reference(ReferencePolicy::kOpt, t, 4), 6u);
}

TEST(Reference, LoopDefeatsLruButNotOpt) {
  // Loop over 5 keys, 20 requests, room for 4: LRU and FIFO miss every time;
  // OPT misses the 5 cold requests, then only at requests 8, 12 and 16
  // (each time evicting the key needed last): 8.
  Trace t = trace_of({0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4});
  EXPECT_EQ(simulate_reference(ReferencePolicy::kLru, t, 4), 20u);
  EXPECT_EQ(simulate_reference(ReferencePolicy::kFifo, t, 4), 20u);
  EXPECT_EQ(simulate_reference(ReferencePolicy::kOpt, t, 4), 8u);
}

TEST(Reference, EverythingFitsMeansOnlyColdMisses) {
  auto t = generate_zipf(ZipfOptions{20'000, 500, 0.8, 2});
  ASSERT_TRUE(t.ok());
  for (auto p : {ReferencePolicy::kLru, ReferencePolicy::kFifo, ReferencePolicy::kOpt}) {
    EXPECT_EQ(simulate_reference(p, *t, t->distinct), t->distinct);
    EXPECT_EQ(simulate_reference(p, *t, 10 * t->distinct), t->distinct);
  }
}

TEST(Reference, SizeOneMissesEveryChange) {
  Trace t = trace_of({1, 1, 2, 2, 2, 1, 3, 3});
  for (auto p : {ReferencePolicy::kLru, ReferencePolicy::kFifo, ReferencePolicy::kOpt}) {
    EXPECT_EQ(simulate_reference(p, t, 1), 4u) << reference_policy_name(p);
  }
}

TEST(Reference, NextUse) {
  Trace t = trace_of({7, 8, 7, 9});  // ids 0 1 0 2
  EXPECT_EQ(next_use(t), (std::vector<std::uint64_t>{2, 4 + 1, 4 + 0, 4 + 2}));
}

// Belady's MIN written the slow, obvious way: scan forward for each cached key.
std::uint64_t slow_opt(const Trace& t, std::size_t cap) {
  std::vector<std::uint32_t> cache;
  std::uint64_t misses = 0;
  for (std::size_t i = 0; i < t.requests.size(); ++i) {
    std::uint32_t k = t.requests[i];
    if (std::find(cache.begin(), cache.end(), k) != cache.end()) continue;
    ++misses;
    if (cache.size() == cap) {
      std::size_t victim = 0, farthest = 0;
      for (std::size_t c = 0; c < cache.size(); ++c) {
        std::size_t next = std::numeric_limits<std::size_t>::max() - cache[c];
        for (std::size_t j = i + 1; j < t.requests.size(); ++j) {
          if (t.requests[j] == cache[c]) {
            next = j;
            break;
          }
        }
        if (next >= farthest) {
          farthest = next;
          victim = c;
        }
      }
      cache.erase(cache.begin() + static_cast<std::ptrdiff_t>(victim));
    }
    cache.push_back(k);
  }
  return misses;
}

TEST(Reference, OptMatchesTheObviousImplementation) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    auto t = generate_zipf(ZipfOptions{3'000, 200, 0.7, seed});
    ASSERT_TRUE(t.ok());
    for (std::size_t cap : {1u, 2u, 5u, 17u, 60u}) {
      ASSERT_EQ(simulate_reference(ReferencePolicy::kOpt, *t, cap), slow_opt(*t, cap))
          << "seed " << seed << " cap " << cap;
    }
  }
}

TEST(Reference, OptIsALowerBoundAndLruBeatsFifoOnZipf) {
  auto t = generate_zipf(ZipfOptions{200'000, 20'000, 0.9, 4});
  ASSERT_TRUE(t.ok());
  for (std::uint64_t cap : {20u, 200u, 2'000u}) {
    auto opt = simulate_reference(ReferencePolicy::kOpt, *t, cap);
    auto lru = simulate_reference(ReferencePolicy::kLru, *t, cap);
    auto fifo = simulate_reference(ReferencePolicy::kFifo, *t, cap);
    EXPECT_LT(opt, lru) << cap;
    EXPECT_LT(opt, fifo) << cap;
    EXPECT_LT(lru, fifo) << cap;
  }
}

TEST(Reference, S3FifoByHand) {
  // Capacity 2: small holds 1, the ghost remembers 1 key.
  //   A B      miss, miss          small [A B]
  //   A        hit (A: 1)
  //   C        miss: A (hit) moves to main, B is evicted to the ghost
  //   A        hit (A: 1)
  //   B        miss, ghost hit: B enters main; main's oldest A spends its
  //            hit and is reinserted, then B (no hits) is evicted
  //   C        hit (C: 1)
  //   D        miss: C moves to main, A (no hits left) is evicted
  Trace t = trace_of({'A', 'B', 'A', 'C', 'A', 'B', 'C', 'D'});
  EXPECT_EQ(simulate_s3fifo(t, 2, S3FifoParams{}), 5u);
  EXPECT_EQ(simulate_reference(ReferencePolicy::kLru, t, 2), 6u);
  // Without a ghost B re-enters small and pushes C (no hits yet) out, so
  // C and D both miss: 6.
  EXPECT_EQ(simulate_s3fifo(t, 2, S3FifoParams{0.1, 0.0, 1, 3}), 6u);
}

TEST(Reference, S3FifoResistsScansAndParamsMatter) {
  auto t = generate_scan(ScanOptions{ZipfOptions{200'000, 10'000, 0.9, 2}, 1'000, 4'000});
  ASSERT_TRUE(t.ok());
  auto lru = simulate_reference(ReferencePolicy::kLru, *t, 1'000);
  auto s3 = simulate_s3fifo(*t, 1'000, S3FifoParams{});
  EXPECT_LT(static_cast<double>(s3), 0.95 * static_cast<double>(lru));
  EXPECT_NE(simulate_s3fifo(*t, 1'000, S3FifoParams{0.3, 1.0, 1, 3}), s3);
  EXPECT_EQ(simulate_s3fifo(*t, t->distinct, S3FifoParams{}), t->distinct);
}

TEST(Reference, S3FifoSmallFloor) {
  auto t = generate_scan(ScanOptions{ZipfOptions{100'000, 5'000, 0.9, 3}, 300, 2'000});
  ASSERT_TRUE(t.ok());
  S3FifoParams floor;
  floor.min_small = 64;
  floor.small_cap = 0.6;
  // A floor below 10% of the capacity changes nothing…
  EXPECT_EQ(simulate_s3fifo(*t, 1'000, floor), simulate_s3fifo(*t, 1'000, S3FifoParams{}));
  // …above it, the small queue grows (to 45 of 76 entries here).
  EXPECT_NE(simulate_s3fifo(*t, 76, floor), simulate_s3fifo(*t, 76, S3FifoParams{}));
  S3FifoParams frac;
  frac.small = 45.0 / 76;
  EXPECT_EQ(simulate_s3fifo(*t, 76, floor), simulate_s3fifo(*t, 76, frac));
  auto spec = parse_reference("s3fifo-ref:minsmall=64:smallcap=0.6");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->s3fifo.min_small, 64u);
  EXPECT_DOUBLE_EQ(spec->s3fifo.small_cap, 0.6);
}

TEST(Reference, ParsesSpecs) {
  auto s = parse_reference("s3fifo-ref:small=0.25:ghost=2:promote=2");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->policy, ReferencePolicy::kS3Fifo);
  EXPECT_DOUBLE_EQ(s->s3fifo.small, 0.25);
  EXPECT_DOUBLE_EQ(s->s3fifo.ghost, 2.0);
  EXPECT_EQ(s->s3fifo.promote, 2);
  EXPECT_EQ(s->s3fifo.max_freq, 3);
  EXPECT_EQ(parse_reference("opt")->policy, ReferencePolicy::kOpt);
  EXPECT_FALSE(parse_reference("opt:small=0.1").ok());
  EXPECT_FALSE(parse_reference("s3fifo-ref:small=1.5").ok());
  EXPECT_FALSE(parse_reference("s3fifo-ref:small=").ok());
  EXPECT_FALSE(parse_reference("s3fifo-ref:promote=1.5").ok());
  auto bad = parse_reference("s3fifo-ref:size=3");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'size=3'"), std::string::npos);
}

TEST(Reference, WTinyLfuOnAHandComputedSequence) {
  // Capacity 2: a window of 1 and a main of 1. 1 is requested three times,
  // so when 3 arrives and 2 leaves the window, the sketch rates 2 (once)
  // below main's 1 (three times): 2 is dropped, 1 stays.
  Trace t = trace_of({1, 1, 1, 2, 3, 1});
  //                 m  h  h  m  m  h   (1 moves to main when 2 arrives)
  EXPECT_EQ(simulate_wtinylfu(t, 2, WTinyLfuParams{}), 3u);
  // A window covering the whole cache is LRU.
  WTinyLfuParams all;
  all.window = 1.0;
  auto z = generate_zipf(ZipfOptions{30'000, 3'000, 0.8, 4});
  ASSERT_TRUE(z.ok());
  for (std::uint64_t size : {10u, 300u}) {
    EXPECT_EQ(simulate_wtinylfu(*z, size, all), simulate_reference(ReferencePolicy::kLru, *z, size))
        << size;
  }
}

TEST(Reference, WTinyLfuKeepsAFrequentSetThroughLoopsAndScans) {
  // A loop over 2x the cache: LRU misses everything, W-TinyLFU keeps half.
  Trace loop = generate_loop(LoopOptions{40'000, 2'000}).value();
  EXPECT_EQ(simulate_reference(ReferencePolicy::kLru, loop, 1'000), 40'000u);
  EXPECT_LT(simulate_wtinylfu(loop, 1'000, WTinyLfuParams{}), 30'000u);
  auto scan = generate_scan(ScanOptions{ZipfOptions{100'000, 5'000, 0.9, 3}, 1'000, 4'000});
  ASSERT_TRUE(scan.ok());
  EXPECT_LT(simulate_wtinylfu(*scan, 500, WTinyLfuParams{}),
            simulate_reference(ReferencePolicy::kLru, *scan, 500));
}

TEST(Reference, ParsesWTinyLfuSpecs) {
  auto s = parse_reference("wtinylfu-ref:window=0.2:protected=0.5");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->policy, ReferencePolicy::kWTinyLfu);
  EXPECT_DOUBLE_EQ(s->wtinylfu.window, 0.2);
  EXPECT_DOUBLE_EQ(s->wtinylfu.protected_share, 0.5);
  EXPECT_DOUBLE_EQ(parse_reference("wtinylfu-ref")->wtinylfu.window, 0.01);
  EXPECT_FALSE(parse_reference("wtinylfu-ref:window=0").ok());
  EXPECT_FALSE(parse_reference("wtinylfu-ref:small=0.1").ok());
  EXPECT_NE(reference_run("wtinylfu-ref").label.find("W-TinyLFU"), std::string::npos);
}

TEST(Matrix, SizesFromFractions) {
  EXPECT_EQ(sizes_from_fractions(20'484, default_fractions()),
            (std::vector<std::uint64_t>{20, 102, 205, 410, 1'024, 2'048, 4'097}));
  EXPECT_EQ(sizes_from_fractions(100, {0.001, 0.002, 0.5}), (std::vector<std::uint64_t>{1, 50}));
}

TEST(Matrix, RunsEveryPolicyAtEverySizeDeterministically) {
  auto t = generate_zipf(ZipfOptions{50'000, 5'000, 0.9, 1});
  ASSERT_TRUE(t.ok());
  std::vector<PolicyRun> runs = {reference_run("lru-exact"), reference_run("opt"),
                                 reference_run("fifo")};
  auto one = run_matrix(*t, {500, 50, 5}, runs, 1);
  auto three = run_matrix(*t, {5, 50, 500}, runs, 3);
  ASSERT_TRUE(one.ok() && three.ok());
  EXPECT_EQ(one->sizes, (std::vector<std::uint64_t>{5, 50, 500}));
  ASSERT_EQ(one->policies.size(), 3u);
  for (std::size_t p = 0; p < 3; ++p) {
    EXPECT_EQ(one->policies[p].misses, three->policies[p].misses);
    for (std::size_t s = 0; s < 3; ++s) {
      EXPECT_EQ(one->policies[p].misses[s],
                simulate_reference(*parse_reference(runs[p].name), *t, one->sizes[s]));
    }
  }
  EXPECT_EQ(one->requests, 50'000u);
  EXPECT_EQ(one->distinct, t->distinct);
  EXPECT_EQ(one->best_engine(0), -1);  // references are never "best engine policy"
}

TEST(Matrix, ReportsEachCompletedRun) {
  auto t = generate_zipf(ZipfOptions{5'000, 500, 0.9, 1});
  ASSERT_TRUE(t.ok());
  std::vector<PolicyRun> runs = {reference_run("lru-exact"), reference_run("fifo")};
  std::mutex mu;
  std::vector<std::size_t> seen;
  auto r = run_matrix(*t, {5, 50, 500}, runs, 2, [&](std::size_t done) {
    std::lock_guard lock(mu);
    seen.push_back(done);
  });
  ASSERT_TRUE(r.ok());
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::size_t>{1, 2, 3, 4, 5, 6}));
}

TEST(Matrix, PolicyErrorsNameThePolicyAndSize) {
  Trace t = trace_of({1, 2, 3});
  PolicyRun bad;
  bad.name = "broken";
  bad.misses = [](const Trace&, std::uint64_t) -> Result<std::uint64_t> {
    return Status::invalid_argument("nope");
  };
  auto r = run_matrix(t, {2}, {bad}, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("policy broken at size 2: nope"), std::string::npos);
}

}  // namespace reference_test
}  // namespace callcache::sim
