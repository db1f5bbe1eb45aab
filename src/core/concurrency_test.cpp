// Many threads reading, writing, invalidating and evicting the same keys.
// Meant for ThreadSanitizer: it asserts invariants, TSan asserts the races.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "callcache/cache.h"

namespace callcache {
namespace concurrency_test {

using namespace std::chrono_literals;

class Stress : public ::testing::TestWithParam<EvictionPolicy> {};

TEST_P(Stress, MixedOperationsKeepInvariants) {
  NamespacePolicy p;
  p.max_entries = 256;
  p.max_bytes = 64 * 1024;
  p.ttl = 50ms;
  p.eviction = GetParam();
  p.max_entries_per_tenant = 100;
  NamespacePolicy shared = p;
  shared.shared = true;
  shared.max_entries_per_tenant = 0;
  EngineOptions o;
  o.namespaces = {{"a", p}, {"b", shared}};
  o.sweep_interval = 5ms;
  auto engine = Engine::create(o).value();
  auto a = Cache<std::string>::open(*engine, "a").value();
  auto b = Cache<std::string>::open(*engine, "b").value();
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> ops{0};
  auto worker = [&](int id) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(id));
    std::vector<Ref<std::string>> held;
    while (!stop.load(std::memory_order_relaxed)) {
      TenantId t{rng() % 4 + 1};
      std::string key = "k" + std::to_string(rng() % 512);
      auto& c = rng() % 2 ? a : b;
      switch (rng() % 10) {
        case 0:
        case 1:
        case 2: {
          PutOptions po;
          if (rng() % 4 == 0) po.tags = {"t" + std::to_string(rng() % 3)};
          (void)c.put(t, key, std::string(rng() % 300, 'x'), po);
          break;
        }
        case 3:
          c.erase(t, key);
          break;
        case 4:
          if (rng() % 50 == 0) engine->invalidate_tenant(t);
          break;
        case 5:
          if (rng() % 50 == 0) engine->invalidate_tag("t1");
          break;
        case 6:
          if (rng() % 200 == 0) (void)engine->invalidate_namespace("a");
          break;
        default:
          if (auto r = c.get(t, key)) {
            if (held.size() < 16) held.push_back(*r);
            ASSERT_LE((*r)->size(), 300u);
          }
      }
      if (held.size() == 16) held.clear();
      ops.fetch_add(1, std::memory_order_relaxed);
    }
    for (auto& r : held) ASSERT_LE(r->size(), 300u);
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(worker, i);
  std::this_thread::sleep_for(300ms);  // bounded run time; correctness does not depend on it
  stop = true;
  for (auto& t : threads) t.join();
  auto s = engine->stats();
  for (const auto& ns : s.namespaces) {
    EXPECT_LE(ns.entries, 256u);
    EXPECT_LE(ns.bytes, 64u * 1024);
  }
  EXPECT_GT(ops.load(), 1000u);
}

INSTANTIATE_TEST_SUITE_P(Policies, Stress,
                         ::testing::Values(EvictionPolicy::kLru, EvictionPolicy::kS3Fifo,
                                           EvictionPolicy::kWTinyLfu, EvictionPolicy::kAdaptive),
                         [](const auto& info) {
                           return std::string(eviction_policy_name(info.param));
                         });

}  // namespace concurrency_test
}  // namespace callcache
