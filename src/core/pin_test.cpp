// Pins in reader-record slots: what Cache::get returns on a hit. A pinned
// value stays valid through eviction, invalidation, reclamation and the
// engine's destruction; copies become ordinary references; values are
// destroyed once the last pin or reference goes.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "callcache/cache.h"
#include "reclaim.h"

namespace callcache {
namespace pin_test {

std::atomic<int> g_live{0};
std::atomic<int> g_alive[64];  // live copies per value

struct Counted {
  explicit Counted(int v) : value(v) { born(); }
  Counted(Counted&& o) noexcept : value(o.value) { born(); }
  Counted(const Counted& o) : value(o.value) { born(); }
  ~Counted() {
    g_live.fetch_sub(1);
    g_alive[value].fetch_sub(1);
  }
  void born() {
    g_live.fetch_add(1);
    g_alive[value].fetch_add(1);
  }
  int value;
};

std::unique_ptr<Engine> make(std::uint64_t max_entries) {
  NamespacePolicy p;
  p.max_entries = max_entries;
  p.ttl = std::chrono::hours(1);
  EngineOptions o;
  o.namespaces = {{"ns", p}};
  o.shards = 1;
  o.sweep_interval = Duration::zero();
  return Engine::create(o).value();
}

// Keeps collecting until `pred` holds (grace periods complete asynchronously).
template <class Pred>
bool eventually(Engine& engine, Pred pred) {
  for (int i = 0; i < 2000 && !pred(); ++i) {
    (void)engine.clear_expired();  // sweeps: reclaims what removals retired
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return pred();
}

TEST(Pins, AHitIsPinnedInTheThreadsOwnSlot) {
  auto engine = make(10);
  auto cache = Cache<Counted>::open(*engine, "ns").value();
  ASSERT_TRUE(cache.put(TenantId{1}, "k", Counted(7)).ok());
  internal::ReaderRecord& me = internal::my_reader_record();
  auto r = cache.get(TenantId{1}, "k");
  ASSERT_TRUE(r);
  int held = 0;
  for (auto& slot : me.pins) held += slot.load() != nullptr;
  EXPECT_EQ(held, 1) << "the hit sits in one of this thread's pin slots";
  EXPECT_EQ((*r)->value, 7);
  r.reset();
  held = 0;
  for (auto& slot : me.pins) held += slot.load() != nullptr;
  EXPECT_EQ(held, 0) << "released by dropping the Ref";
}

TEST(Pins, PinnedValuesOutliveRemovalAndTheEngine) {
  g_live = 0;
  std::vector<Ref<Counted>> refs;
  {
    auto engine = make(10);
    auto cache = Cache<Counted>::open(*engine, "ns").value();
    for (int i = 0; i < 8; ++i)
      ASSERT_TRUE(cache.put(TenantId{1}, "k" + std::to_string(i), Counted(i)).ok());
    // More hits than pin slots: the rest are ordinary references.
    for (int i = 0; i < 8; ++i) refs.push_back(*cache.get(TenantId{1}, "k" + std::to_string(i)));
    Ref<Counted> copy = refs[0];  // a copy of a pin is a reference
    EXPECT_TRUE(cache.erase(TenantId{1}, "k0"));
    EXPECT_TRUE(cache.erase(TenantId{1}, "k1"));
    for (int i = 10; i < 40; ++i)
      ASSERT_TRUE(cache.put(TenantId{1}, "x" + std::to_string(i), Counted(i)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    (void)engine->clear_expired();
    for (int i = 0; i < 8; ++i)
      EXPECT_EQ(refs[static_cast<std::size_t>(i)]->value, i) << "still pinned";
    EXPECT_EQ(copy->value, 0);
    refs[1] = Ref<Counted>(refs[2]);  // drops the pin on k1, whose entry is gone
    EXPECT_TRUE(eventually(*engine, [] { return g_alive[1].load() == 0; }))
        << "k1's value is destroyed once unpinned";
    EXPECT_EQ(g_alive[0].load(), 1) << "k0 is erased but still held";
  }
  // The engine is gone; pinned values live on.
  for (int i = 0; i < 8; ++i) EXPECT_EQ(refs[static_cast<std::size_t>(i)]->value, i == 1 ? 2 : i);
  refs.clear();
  EXPECT_EQ(g_live.load(), 0) << "the last pins released the orphaned entries";
}

TEST(Pins, RefsMovedToAnotherThreadReleaseThere) {
  g_live = 0;
  auto engine = make(4);
  auto cache = Cache<Counted>::open(*engine, "ns").value();
  ASSERT_TRUE(cache.put(TenantId{1}, "a", Counted(1)).ok());
  auto r = cache.get(TenantId{1}, "a");
  ASSERT_TRUE(r);
  std::thread t([ref = std::move(*r)]() mutable {
    EXPECT_EQ(ref->value, 1);
    Ref<Counted> gone = std::move(ref);
  });
  t.join();
  EXPECT_TRUE(cache.erase(TenantId{1}, "a"));
  EXPECT_TRUE(eventually(*engine, [] { return g_live.load() == 0; }));
}

}  // namespace pin_test
}  // namespace callcache
