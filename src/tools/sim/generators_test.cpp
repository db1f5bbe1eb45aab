#include "tools/sim/generators.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace callcache::sim {
namespace generators_test {

using ::testing::HasSubstr;

std::vector<std::uint64_t> counts_desc(const Trace& t) {
  std::vector<std::uint64_t> c(t.distinct, 0);
  for (auto id : t.requests) ++c[id];
  std::sort(c.rbegin(), c.rend());
  return c;
}

TEST(Rng, IsDeterministicAndUniformish) {
  Rng a(42), b(42), c(43);
  std::vector<std::uint64_t> va, vb, vc;
  for (int i = 0; i < 100; ++i) {
    va.push_back(a.next());
    vb.push_back(b.next());
    vc.push_back(c.next());
  }
  EXPECT_EQ(va, vb);
  EXPECT_NE(va, vc);
  Rng r(7);
  double sum = 0;
  for (int i = 0; i < 100'000; ++i) {
    double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 100'000, 0.5, 0.01);
}

TEST(Zipf, SameSeedSameTraceOtherSeedOtherTrace) {
  ZipfOptions o{50'000, 1'000, 0.9, 5};
  auto a = generate_zipf(o);
  auto b = generate_zipf(o);
  o.seed = 6;
  auto c = generate_zipf(o);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->requests, b->requests);
  EXPECT_EQ(a->name, b->name);
  EXPECT_NE(a->requests, c->requests);
  EXPECT_THAT(a->name, HasSubstr("alpha=0.9"));
  EXPECT_THAT(a->name, HasSubstr("seed=5"));
}

TEST(Zipf, FixedSeedGivesAFixedTrace) {
  // Pins the generator: a change here changes every published synthetic result.
  auto t = generate_zipf(ZipfOptions{10, 1'000, 1.0, 1});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->requests.size(), 10u);
  Rng rng(1);
  ZipfSampler z(1'000, 1.0);
  std::vector<std::uint32_t> raw;
  for (int i = 0; i < 10; ++i) raw.push_back(z.sample(rng));
  // Densified ids follow the raw ranks' first appearances.
  std::map<std::uint32_t, std::uint32_t> first;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    auto [it, added] = first.try_emplace(raw[i], static_cast<std::uint32_t>(first.size()));
    EXPECT_EQ(t->requests[i], it->second);
  }
}

TEST(Zipf, SamplerProbabilitiesFollowThePowerLaw) {
  ZipfSampler z(1'000, 1.0);
  double h = 0;
  for (int r = 1; r <= 1'000; ++r) h += 1.0 / r;
  EXPECT_NEAR(z.probability(0), 1.0 / h, 1e-12);
  EXPECT_NEAR(z.probability(1) / z.probability(0), 0.5, 1e-12);
  EXPECT_NEAR(z.probability(9) / z.probability(0), 0.1, 1e-12);
}

TEST(Zipf, EmpiricalShapeMatchesAlpha) {
  for (double alpha : {0.6, 1.0, 1.2}) {
    auto t = generate_zipf(ZipfOptions{1'000'000, 10'000, alpha, 3});
    ASSERT_TRUE(t.ok());
    auto c = counts_desc(*t);
    // Frequency of rank r ∝ r^-alpha: the log-log slope between ranks 1 and
    // 100 recovers alpha.
    double slope =
        std::log(static_cast<double>(c[0]) / static_cast<double>(c[99])) / std::log(100.0);
    EXPECT_NEAR(slope, alpha, 0.06) << "alpha " << alpha;
    ZipfSampler z(10'000, alpha);
    EXPECT_NEAR(static_cast<double>(c[0]) / 1e6, z.probability(0), 0.004) << "alpha " << alpha;
  }
}

TEST(Zipf, AlphaZeroIsUniform) {
  auto t = generate_zipf(ZipfOptions{200'000, 100, 0.0, 1});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->distinct, 100u);
  auto c = counts_desc(*t);
  EXPECT_LT(static_cast<double>(c.front()) / static_cast<double>(c.back()), 1.2);
}

TEST(Zipf, BadOptionsAreErrors) {
  EXPECT_THAT(generate_zipf(ZipfOptions{0, 10, 1, 1}).status().message(), HasSubstr("requests"));
  EXPECT_THAT(generate_zipf(ZipfOptions{10, 0, 1, 1}).status().message(), HasSubstr("keys"));
  EXPECT_THAT(generate_zipf(ZipfOptions{10, 10, -1, 1}).status().message(), HasSubstr("alpha"));
  EXPECT_THAT(generate_zipf(ZipfOptions{10, 10, NAN, 1}).status().message(), HasSubstr("alpha"));
}

TEST(Scan, InsertsOneTimeSequentialScans) {
  ScanOptions o{ZipfOptions{10'000, 100, 1.0, 9}, 50, 200};
  auto t = generate_scan(o);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->requests.size(), 10'000u);
  // Layout: 200 zipf, 50 scan, 200 zipf, 50 scan, …; scan keys occur once
  // and are sequential (consecutive dense ids since each is new).
  std::vector<std::uint32_t> count(t->distinct, 0);
  for (auto id : t->requests) ++count[id];
  std::size_t scans = 0;
  for (std::size_t start = 200; start < 10'000; start += 250) {
    ++scans;
    for (std::size_t i = start; i < std::min<std::size_t>(start + 50, 10'000); ++i) {
      ASSERT_EQ(count[t->requests[i]], 1u) << "scan key at " << i << " reused";
      if (i > start) {
        ASSERT_EQ(t->requests[i], t->requests[i - 1] + 1);
      }
    }
  }
  EXPECT_EQ(scans, 40u);
  EXPECT_GE(count_one_hit_keys(*t), 40u * 50u);
  EXPECT_THAT(t->name, HasSubstr("scan_length=50"));
  auto again = generate_scan(o);
  EXPECT_EQ(again->requests, t->requests);
}

TEST(Scan, BadOptionsAreErrors) {
  EXPECT_THAT(generate_scan(ScanOptions{ZipfOptions{}, 0, 10}).status().message(),
              HasSubstr("scan length"));
  EXPECT_THAT(generate_scan(ScanOptions{ZipfOptions{}, 10, 0}).status().message(),
              HasSubstr("scan interval"));
}

TEST(Loop, CyclesOverTheKeys) {
  auto t = generate_loop(LoopOptions{10, 4});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->requests, (std::vector<std::uint32_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1}));
  EXPECT_EQ(t->distinct, 4u);
  EXPECT_FALSE(generate_loop(LoopOptions{0, 4}).ok());
  EXPECT_FALSE(generate_loop(LoopOptions{10, 0}).ok());
}

}  // namespace generators_test
}  // namespace callcache::sim
