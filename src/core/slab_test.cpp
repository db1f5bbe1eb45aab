// The entry slab allocator: slot sizes and alignment, reuse, slab release,
// frees from many threads (run under ThreadSanitizer), thread caches, and
// entries that use it (or bypass it) through the engine.
#include "slab.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "callcache/cache.h"

namespace callcache::internal {
namespace slab_test {

using Slab = SlabAllocator;

std::uintptr_t addr(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

// Slots in use and slab memory held by the global allocator, as seen from a
// quiet process: the calling thread's cache flushed, cached empty slabs
// unmapped.
struct GlobalUsage {
  std::uint64_t slots, mapped;
};
GlobalUsage global_usage() {
  Slab::global().flush_thread_cache();
  Slab::global().release_cached();
  Slab::Stats st = Slab::global().stats();
  return {st.slots, st.mapped_bytes};
}

TEST(SlabAllocator, SizeClassesAreExactMultiplesOfEightUpToTheLimit) {
  EXPECT_FALSE(Slab::fits(0));
  EXPECT_TRUE(Slab::fits(1));
  EXPECT_TRUE(Slab::fits(Slab::kMaxSlot));
  EXPECT_FALSE(Slab::fits(Slab::kMaxSlot + 1));
  EXPECT_EQ(Slab::slot_size(1), 8u);
  EXPECT_EQ(Slab::slot_size(72), 72u);  // a 48-byte header, an 8-byte value, a 16-byte key
  EXPECT_EQ(Slab::slot_size(73), 80u);

  Slab a;
  EXPECT_EQ(a.allocate(0), nullptr);
  EXPECT_EQ(a.allocate(Slab::kMaxSlot + 1), nullptr) << "larger entries use operator new";
  for (std::size_t size = 1; size <= Slab::kMaxSlot; ++size) {
    void* p = a.allocate(size);
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(addr(p) % Slab::kGranule, 0u) << size;
    std::memset(p, 0xab, size);  // the whole slot is writable (ASan checks the bounds)
    a.deallocate(p, size);
  }
  EXPECT_EQ(a.stats().slots, 0u);
}

TEST(SlabAllocator, SlotsArePackedWithoutHeadersOrRounding) {
  Slab a;
  const std::size_t per_slab = (Slab::kSlabSize - Slab::kHeaderSize) / 72;
  std::vector<void*> slots;
  for (std::size_t i = 0; i < per_slab; ++i) slots.push_back(a.allocate(72));
  for (std::size_t i = 1; i < per_slab; ++i)
    EXPECT_EQ(addr(slots[i]) - addr(slots[i - 1]), 72u) << i;
  EXPECT_EQ(addr(slots[0]) % Slab::kSlabSize, Slab::kHeaderSize);
  Slab::Stats st = a.stats();
  EXPECT_EQ(st.slots, per_slab);
  EXPECT_EQ(st.slot_bytes, per_slab * 72);
  EXPECT_EQ(st.slabs, 1u) << "one slab holds " << per_slab << " slots";
  EXPECT_EQ(st.mapped_bytes, Slab::kSlabSize);
  slots.push_back(a.allocate(72));
  EXPECT_EQ(a.stats().slabs, 2u);
  EXPECT_NE(addr(slots.back()) & ~(Slab::kSlabSize - 1), addr(slots[0]) & ~(Slab::kSlabSize - 1));
  for (void* p : slots) a.deallocate(p, 72);
}

TEST(SlabAllocator, FreedSlotIsReusedFirst) {
  Slab a;
  void* p = a.allocate(100);
  void* q = a.allocate(100);
  a.deallocate(p, 100);
  EXPECT_EQ(a.allocate(100), p);
  a.deallocate(p, 100);
  a.deallocate(q, 100);
}

TEST(SlabAllocator, EmptySlabsAreGivenBack) {
  Slab a;
  const std::size_t per_slab = (Slab::kSlabSize - Slab::kHeaderSize) / 64;
  const std::size_t slabs = Slab::kCachedEmptySlabs + 12;
  std::vector<void*> slots;
  for (std::size_t i = 0; i < slabs * per_slab; ++i) slots.push_back(a.allocate(64));
  EXPECT_EQ(a.stats().slabs, slabs);
  EXPECT_EQ(a.stats().mapped_bytes, slabs * Slab::kSlabSize);

  // Free in an order that empties slabs one by one, interleaved.
  std::mt19937_64 rng(5);
  std::shuffle(slots.begin(), slots.end(), rng);
  for (void* p : slots) a.deallocate(p, 64);
  Slab::Stats st = a.stats();
  EXPECT_EQ(st.slots, 0u);
  EXPECT_EQ(st.slabs, 0u);
  EXPECT_EQ(st.cached_slabs, Slab::kCachedEmptySlabs) << "only a few empty slabs are kept";
  EXPECT_EQ(st.mapped_bytes, Slab::kCachedEmptySlabs * Slab::kSlabSize);
  EXPECT_EQ(st.unmaps, slabs - Slab::kCachedEmptySlabs);

  // A cached slab serves the next class that needs one.
  void* p = a.allocate(200);
  EXPECT_EQ(a.stats().maps, slabs) << "no new mapping while empty slabs are cached";
  a.deallocate(p, 200);

  EXPECT_EQ(a.release_cached(), Slab::kCachedEmptySlabs);
  st = a.stats();
  EXPECT_EQ(st.mapped_bytes, 0u);
  EXPECT_EQ(st.maps, st.unmaps);
}

TEST(SlabAllocator, RandomAllocationsKeepTheirBytesAndTheCounts) {
  Slab a;
  struct Live {
    unsigned char* p;
    std::size_t size;
    unsigned char fill;
  };
  std::vector<Live> live;
  std::mt19937_64 rng(11);
  std::uint64_t bytes = 0;
  for (int step = 0; step < 200000; ++step) {
    if (live.empty() || rng() % 100 < 55) {
      const std::size_t size = 1 + rng() % Slab::kMaxSlot;
      auto* p = static_cast<unsigned char*>(a.allocate(size));
      ASSERT_NE(p, nullptr);
      const auto fill = static_cast<unsigned char>(rng());
      std::memset(p, fill, size);
      live.push_back({p, size, fill});
      bytes += Slab::slot_size(size);
    } else {
      const std::size_t i = rng() % live.size();
      const Live l = live[i];
      for (std::size_t b = 0; b < l.size; ++b)
        ASSERT_EQ(l.p[b], l.fill) << "slot overwritten at step " << step;
      a.deallocate(l.p, l.size);
      bytes -= Slab::slot_size(l.size);
      live[i] = live.back();
      live.pop_back();
    }
  }
  Slab::Stats st = a.stats();
  EXPECT_EQ(st.slots, live.size());
  EXPECT_EQ(st.slot_bytes, bytes);
  EXPECT_LE(st.slot_bytes, st.mapped_bytes);
  std::set<std::uintptr_t> distinct;
  for (const Live& l : live) distinct.insert(addr(l.p));
  EXPECT_EQ(distinct.size(), live.size());
  for (const Live& l : live) a.deallocate(l.p, l.size);
  EXPECT_EQ(a.stats().slabs, 0u);
}

// Slots allocated on one set of threads and freed on another, while every
// thread also allocates and frees its own: counts must return to zero and
// every slab must be given back. ThreadSanitizer checks the locking.
void free_from_many_threads(Slab& a) {
  constexpr int kProducers = 3, kConsumers = 3, kPerProducer = 20000;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<void*, std::size_t>> handoff;
  int producers_left = kProducers;
  std::vector<std::thread> threads;
  for (int t = 0; t < kProducers; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t));
      std::vector<std::pair<void*, std::size_t>> own;
      for (int i = 0; i < kPerProducer; ++i) {
        const std::size_t size = 56 + rng() % 200;
        void* p = a.allocate(size);
        ASSERT_NE(p, nullptr);
        std::memset(p, t, size);
        if (rng() % 2) {
          std::lock_guard lock(mu);
          handoff.emplace_back(p, size);
          cv.notify_one();
        } else {
          own.emplace_back(p, size);
          if (own.size() > 64) {
            a.deallocate(own.front().first, own.front().second);
            own.erase(own.begin());
          }
        }
      }
      for (auto [p, size] : own) a.deallocate(p, size);
      std::lock_guard lock(mu);
      if (--producers_left == 0) cv.notify_all();
    });
  }
  for (int t = 0; t < kConsumers; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        std::pair<void*, std::size_t> item;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return !handoff.empty() || producers_left == 0; });
          if (handoff.empty()) return;
          item = handoff.front();
          handoff.pop_front();
        }
        a.deallocate(item.first, item.second);
      }
    });
  }
  for (auto& th : threads) th.join();
}

TEST(SlabAllocator, FreesFromManyThreads) {
  Slab a;
  free_from_many_threads(a);
  Slab::Stats st = a.stats();
  EXPECT_EQ(st.slots, 0u);
  EXPECT_EQ(st.slabs, 0u);
  EXPECT_LE(st.cached_slabs, Slab::kCachedEmptySlabs);
}

TEST(SlabAllocator, GlobalThreadCachesAreFlushedWhenThreadsExit) {
  const GlobalUsage before = global_usage();
  free_from_many_threads(Slab::global());
  // Every worker has exited, so its cached slots went back to their slabs.
  const GlobalUsage after = global_usage();
  EXPECT_EQ(after.slots, before.slots);
  EXPECT_EQ(after.mapped, before.mapped);
}

TEST(SlabAllocator, ThreadCacheSpillsPastItsCapAndServesFromItselfFirst) {
  const GlobalUsage before = global_usage();
  Slab& g = Slab::global();
  std::vector<void*> slots;
  const std::uint32_t cap = Slab::thread_cache_slots(72);
  for (std::uint32_t i = 0; i < 3 * cap; ++i) slots.push_back(g.allocate(72));
  EXPECT_EQ(g.stats().slots, before.slots + slots.size());
  for (void* p : slots) g.deallocate(p, 72);
  // The first `cap` frees park in this thread's cache; the rest go back to
  // their slabs.
  EXPECT_EQ(g.stats().slots, before.slots + cap);
  // The last slot parked comes back first, without touching a bin.
  void* p = g.allocate(72);
  EXPECT_EQ(p, slots[cap - 1]);
  EXPECT_EQ(g.stats().slots, before.slots + cap);
  g.deallocate(p, 72);
  EXPECT_EQ(global_usage().slots, before.slots);
}

TEST(SlabAllocator, FreesDuringThreadExitAfterTheCacheIsGone) {
  const GlobalUsage before = global_usage();
  std::thread([] {
    // Constructed before the thread's first allocation, so destroyed after
    // the thread's cache: its free must go straight to the slab.
    struct FreesAtExit {
      void* p = nullptr;
      ~FreesAtExit() {
        if (p) Slab::global().deallocate(p, 72);
      }
    };
    thread_local FreesAtExit holder;
    holder.p = Slab::global().allocate(72);
    void* q = Slab::global().allocate(72);
    Slab::global().deallocate(q, 72);  // parks in the thread's cache
  }).join();
  EXPECT_EQ(global_usage().slots, before.slots);
}

#if defined(__SANITIZE_ADDRESS__)
TEST(SlabAllocatorDeathTest, UseAfterFreeIsReportedUnderAddressSanitizer) {
  Slab a;
  char* p = static_cast<char*>(a.allocate(72));
  a.deallocate(p, 72);
  EXPECT_DEATH({ [[maybe_unused]] volatile char c = p[40]; }, "use-after-poison");
  p = static_cast<char*>(a.allocate(72));  // the slot comes back usable
  p[40] = 1;
  a.deallocate(p, 72);
}
#endif

// ---- Through the engine ---------------------------------------------------------

std::unique_ptr<Engine> make_engine() {
  NamespacePolicy p;
  p.max_entries = 1000;
  p.ttl = std::chrono::hours(1);
  EngineOptions o;
  o.namespaces = {{"n", p}};
  o.sweep_interval = Duration::zero();
  return Engine::create(o).value();
}

TEST(SlabEntries, SmallEntriesTakeOneExactSlotLargeOnesBypassTheSlabs) {
  auto engine = make_engine();
  auto cache = Cache<std::uint64_t>::open(*engine, "n").value();
  const GlobalUsage before = global_usage();
  ASSERT_TRUE(cache.put(TenantId{1}, "key:000000000001", 7).ok());  // 48 + 8 + 16 = 72 bytes
  Slab::Stats st = Slab::global().stats();
  EXPECT_EQ(st.slots, before.slots + 1);
  // A 1 KiB key makes a 1,080-byte entry: operator new, no slot.
  const std::string big(1024, 'k');
  ASSERT_TRUE(cache.put(TenantId{1}, big, 8).ok());
  EXPECT_EQ(Slab::global().stats().slots, before.slots + 1);
  EXPECT_EQ(**cache.get(TenantId{1}, big), 8u);
  EXPECT_EQ(**cache.get(TenantId{1}, "key:000000000001"), 7u);
  engine.reset();
  EXPECT_EQ(global_usage().slots, before.slots);
}

struct alignas(32) Wide {
  std::uint64_t v[4];
};

TEST(SlabEntries, OverAlignedValuesBypassTheSlabs) {
  auto engine = make_engine();
  auto cache = Cache<Wide>::open(*engine, "n").value();
  const GlobalUsage before = global_usage();
  ASSERT_TRUE(cache.put(TenantId{1}, "w", Wide{{1, 2, 3, 4}}).ok());
  EXPECT_EQ(Slab::global().stats().slots, before.slots);
  auto r = cache.get(TenantId{1}, "w");
  ASSERT_TRUE(r);
  EXPECT_EQ(addr(r->get()) % 32, 0u);
  EXPECT_EQ((*r)->v[3], 4u);
}

TEST(SlabEntries, AnEntryOutlivesTheEngineThroughItsRef) {
  const GlobalUsage before = global_usage();
  std::optional<Ref<std::string>> held;
  {
    auto engine = make_engine();
    auto cache = Cache<std::string>::open(*engine, "n").value();
    // Long enough that the string owns a heap buffer, referenced only from
    // the slab (LeakSanitizer must see it through the slab).
    ASSERT_TRUE(cache.put(TenantId{1}, "k", std::string(100, 'v')).ok());
    ASSERT_TRUE(cache.put(TenantId{1}, "other", std::string(100, 'o')).ok());
    held = cache.get(TenantId{1}, "k");
    ASSERT_TRUE(held);
    EXPECT_EQ(global_usage().slots, before.slots + 2);
  }
  // The engine is gone; its other entry was freed, this one lives on.
  EXPECT_EQ(global_usage().slots, before.slots + 1);
  EXPECT_EQ(**held, std::string(100, 'v'));
  held.reset();
  const GlobalUsage after = global_usage();
  EXPECT_EQ(after.slots, before.slots);
  EXPECT_EQ(after.mapped, before.mapped) << "the last slot's slab was given back";
}

TEST(SlabEntries, EntriesFreedOnOtherThreadsGoBackToTheirSlabs) {
  const GlobalUsage before = global_usage();
  {
    auto engine = make_engine();
    auto cache = Cache<std::string>::open(*engine, "n").value();
    for (int i = 0; i < 500; ++i)
      ASSERT_TRUE(cache.put(TenantId{1}, "k" + std::to_string(i), "v").ok());
    std::vector<Ref<std::string>> refs;
    for (int i = 0; i < 500; ++i) refs.push_back(*cache.get(TenantId{1}, "k" + std::to_string(i)));
    engine.reset();  // the refs now hold the only references
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&refs, t] {
        for (std::size_t i = static_cast<std::size_t>(t); i < refs.size(); i += 4) {
          Ref<std::string> mine = std::move(refs[i]);
          EXPECT_EQ(*mine, "v");
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  const GlobalUsage after = global_usage();
  EXPECT_EQ(after.slots, before.slots);
  EXPECT_EQ(after.mapped, before.mapped);
}

}  // namespace slab_test
}  // namespace callcache::internal
