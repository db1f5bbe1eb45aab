// Updates in place (docs/architecture.md, "Updates in place"): a put of a
// small trivially copyable value over an untagged entry of the same charge
// rewrites that entry's value word and expiry instead of replacing the
// entry, and Ref<V> of such a type holds a copy.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "callcache/cache.h"

namespace callcache {
namespace in_place_test {

using namespace std::chrono_literals;
using internal::EngineAccess;

struct Pair {
  std::uint32_t a;
  std::uint32_t b;
};
struct Wide {
  std::uint64_t a;
  std::uint64_t b;
};

static_assert(internal::kInPlace<std::uint64_t> && internal::kInPlace<int> &&
              internal::kInPlace<Pair> && internal::kInPlace<double>);
static_assert(!internal::kInPlace<std::string> && !internal::kInPlace<Wide>);
static_assert(std::is_trivially_copyable_v<Ref<Pair>>, "an in-place Ref is a plain copy");

NamespacePolicy policy(std::uint64_t max_entries, EvictionPolicy eviction = EvictionPolicy::kAdaptive,
                       Duration ttl = 10s) {
  NamespacePolicy p;
  p.max_entries = max_entries;
  p.ttl = ttl;
  p.eviction = eviction;
  return p;
}

struct InPlace : ::testing::Test {
  ManualClock clock;
  std::unique_ptr<Engine> make(NamespacePolicy p) {
    EngineOptions o;
    o.namespaces = {{"n", p}};
    o.clock = &clock;
    o.shards = 1;
    o.sweep_interval = Duration::zero();
    auto e = Engine::create(std::move(o));
    EXPECT_TRUE(e.ok()) << e.status().to_string();
    return std::move(e).value();
  }
  // Where the stored value of (tenant, key) lives: the same address before
  // and after a put means the put updated the entry in place (a replacing
  // put allocates the new entry while the old one is still linked).
  template <class C>
  const void* where(Engine& engine, const C& cache, std::string_view key) {
    internal::Entry* e = EngineAccess::lookup(engine, cache.id(), TenantId{1}, key);
    if (!e) return nullptr;
    const void* at = internal::value_of(e);
    internal::unref(e);
    return at;
  }
  // A reference to the entry of (tenant 1, key), as the loading layer holds
  // one while it hands a stored value to the second tier (caller unrefs).
  template <class C>
  internal::Entry* hold(Engine& engine, const C& cache, std::string_view key) {
    internal::Entry* pinned = EngineAccess::lookup(engine, cache.id(), TenantId{1}, key);
    EXPECT_NE(pinned, nullptr);
    if (!pinned) return nullptr;
    internal::Entry* held = internal::share(pinned);
    internal::unref(pinned);
    return held;
  }
};

TEST_F(InPlace, UpdateRewritesTheEntryAndHeldRefsKeepTheirCopy) {
  auto engine = make(policy(10));
  auto cache = Cache<std::uint64_t>::open(*engine, "n").value();
  ASSERT_TRUE(cache.put(TenantId{1}, "k", 1).ok());
  const void* at = where(*engine, cache, "k");
  auto held = cache.get(TenantId{1}, "k");
  ASSERT_TRUE(held);
  ASSERT_TRUE(cache.put(TenantId{1}, "k", 2).ok());
  EXPECT_EQ(where(*engine, cache, "k"), at) << "the put should have updated in place";
  EXPECT_EQ(**cache.get(TenantId{1}, "k"), 2u);
  EXPECT_EQ(**held, 1u) << "a Ref taken before the update keeps the value it saw";
  const auto stats = engine->stats().total;
  EXPECT_EQ(stats.inserts, 1u);
  EXPECT_EQ(stats.updates, 1u);
  EXPECT_EQ(engine->size(), 1u);
}

TEST_F(InPlace, UpdateRenewsTheExpiry) {
  auto engine = make(policy(10, EvictionPolicy::kS3Fifo, 10s));
  auto cache = Cache<Pair>::open(*engine, "n").value();
  const TimePoint t0 = clock.now();
  ASSERT_TRUE(cache.put(TenantId{1}, "k", Pair{1, 1}).ok());
  const void* at = where(*engine, cache, "k");
  clock.advance(8s);
  PutOptions longer;
  longer.ttl = 20s;
  ASSERT_TRUE(cache.put(TenantId{1}, "k", Pair{2, 3}, longer).ok());
  EXPECT_EQ(where(*engine, cache, "k"), at);
  clock.advance(8s);  // 16 s after the first put, 8 s after the second
  auto got = cache.get(TenantId{1}, "k");
  ASSERT_TRUE(got) << "the update must renew the expiry";
  EXPECT_EQ((*got)->a, 2u);
  EXPECT_EQ((*got)->b, 3u);
  EXPECT_EQ(got.value().expires_at(), t0 + 28s);
  clock.advance(12s);
  EXPECT_FALSE(cache.get(TenantId{1}, "k")) << "and still expire";
}

TEST_F(InPlace, TaggedHeldNegativeStaleVersionAndRechargedEntriesAreReplaced) {
  auto engine = make(policy(10));
  auto sized = [](std::uint64_t v) { return static_cast<std::size_t>(v); };
  auto cache = Cache<std::uint64_t, decltype(sized)>::open(*engine, "n", sized).value();
  const TenantId t{1};

  // Tagged: an update in place would leave the old tags behind.
  PutOptions tagged;
  tagged.tags = {"t"};
  ASSERT_TRUE(cache.put(t, "k", 8, tagged).ok());
  const void* at = where(*engine, cache, "k");
  ASSERT_TRUE(cache.put(t, "k", 8).ok());
  EXPECT_NE(where(*engine, cache, "k"), at);
  EXPECT_EQ(engine->invalidate_tag("t"), 0u) << "the untagged value no longer carries the tag";
  EXPECT_EQ(**cache.get(t, "k"), 8u);

  // A put with tags is never in place either.
  at = where(*engine, cache, "k");
  ASSERT_TRUE(cache.put(t, "k", 8, tagged).ok());
  EXPECT_NE(where(*engine, cache, "k"), at);
  EXPECT_EQ(engine->invalidate_tag("t"), 1u);

  // Another charge: the byte count must follow.
  ASSERT_TRUE(cache.put(t, "k", 8).ok());
  at = where(*engine, cache, "k");
  ASSERT_TRUE(cache.put(t, "k", 16).ok());
  EXPECT_NE(where(*engine, cache, "k"), at);
  EXPECT_EQ(engine->stats().total.bytes, 16u);
  at = where(*engine, cache, "k");
  ASSERT_TRUE(cache.put(t, "k", 16).ok());
  EXPECT_EQ(where(*engine, cache, "k"), at) << "same charge, no tags: in place";

  // A reference held on the entry (as the loading layer holds one while it
  // hands the stored value to the second tier): the value must not move.
  internal::Entry* held = hold(*engine, cache, "k");
  ASSERT_NE(held, nullptr);
  clock.advance(1s);  // a new expiry: the put changes the entry
  ASSERT_TRUE(cache.put(t, "k", 16).ok());
  EXPECT_NE(internal::value_of(held), where(*engine, cache, "k"));
  std::uint64_t old = 0;
  internal::read_in_place(held, &old);
  EXPECT_EQ(old, 16u);
  EXPECT_EQ(*static_cast<const std::uint64_t*>(internal::value_of(held)), 16u);
  internal::unref(held);

  // After a namespace invalidation the old entry is of an old version.
  ASSERT_TRUE(cache.put(t, "k", 16).ok());
  at = where(*engine, cache, "k");
  internal::Entry* kept = hold(*engine, cache, "k");  // keeps the old entry's memory alive
  ASSERT_NE(kept, nullptr);
  ASSERT_TRUE(engine->invalidate_namespace("n").ok());
  ASSERT_TRUE(cache.put(t, "k", 16).ok());
  EXPECT_NE(where(*engine, cache, "k"), at);
  internal::unref(kept);

  // A remembered failure is replaced by the value.
  ASSERT_TRUE(EngineAccess::insert_negative(*engine, cache.id(), t, "neg",
                                            Status::unavailable("down"))
                  .ok());
  ASSERT_TRUE(cache.put(t, "neg", 8).ok());
  EXPECT_EQ(**cache.get(t, "neg"), 8u);
}

TEST_F(InPlace, PutThatChangesNothingWritesNothing) {
  auto engine = make(policy(10));
  auto cache = Cache<std::uint64_t>::open(*engine, "n").value();
  const TenantId t{1};
  ASSERT_TRUE(cache.put(t, "k", 7).ok());
  const void* at = where(*engine, cache, "k");
  // A reference held on the entry blocks any write to it in place, so the
  // entry staying where it is shows the put wrote nothing.
  internal::Entry* held = hold(*engine, cache, "k");
  ASSERT_NE(held, nullptr);
  ASSERT_TRUE(cache.put(t, "k", 7).ok()) << "same value, same clock reading: same expiry";
  EXPECT_EQ(where(*engine, cache, "k"), at);
  EXPECT_EQ(engine->stats().total.updates, 1u) << "still counted as an update";

  // Another expiry or another value is a change: with the reference held,
  // the entry is replaced.
  clock.advance(1ms);
  ASSERT_TRUE(cache.put(t, "k", 7).ok());
  const void* moved = where(*engine, cache, "k");
  EXPECT_NE(moved, at);
  EXPECT_EQ(cache.get(t, "k").value().expires_at(), clock.now() + 10s);
  internal::Entry* held2 = hold(*engine, cache, "k");
  ASSERT_NE(held2, nullptr);
  ASSERT_TRUE(cache.put(t, "k", 8).ok());
  EXPECT_NE(where(*engine, cache, "k"), moved);
  EXPECT_EQ(**cache.get(t, "k"), 8u);
  EXPECT_EQ(engine->stats().total.updates, 3u);
  std::uint64_t old = 0;
  internal::read_in_place(held, &old);
  EXPECT_EQ(old, 7u);
  internal::unref(held2);
  internal::unref(held);
}

TEST_F(InPlace, LruUpdateCountsAsUse) {
  auto engine = make(policy(2, EvictionPolicy::kLru));
  auto cache = Cache<int>::open(*engine, "n").value();
  ASSERT_TRUE(cache.put(TenantId{1}, "a", 1).ok());
  ASSERT_TRUE(cache.put(TenantId{1}, "b", 2).ok());
  const void* at = where(*engine, cache, "a");
  ASSERT_TRUE(cache.put(TenantId{1}, "a", 3).ok());
  EXPECT_EQ(where(*engine, cache, "a"), at);
  ASSERT_TRUE(cache.put(TenantId{1}, "c", 4).ok());  // evicts the least recently used: b
  EXPECT_FALSE(cache.get(TenantId{1}, "b"));
  EXPECT_EQ(**cache.get(TenantId{1}, "a"), 3);
  EXPECT_EQ(**cache.get(TenantId{1}, "c"), 4);
}

TEST_F(InPlace, ReadThroughServesTheUpdatedValue) {
  auto engine = make(policy(10));
  auto cache = Cache<std::int64_t>::open(*engine, "n").value();
  int loads = 0;
  auto load = [&]() -> Result<std::int64_t> { return ++loads; };
  EXPECT_EQ(**cache.get_or_load(TenantId{1}, "k", load), 1);
  ASSERT_TRUE(cache.put(TenantId{1}, "k", 7).ok());
  EXPECT_EQ(**cache.get_or_load(TenantId{1}, "k", load), 7);
  EXPECT_EQ(**cache.hit(TenantId{1}, "k"), 7);
  EXPECT_EQ(loads, 1);
}

// Readers racing updates in place never see a torn value or a value with
// another put's expiry, through either read path. Each put of {i, i} has a ttl of (i % 5 + 1) s on a
// stopped clock, so a read tells the expiry its value must carry. One
// writer also erases and puts with tags, so replacing puts race too.
TEST_F(InPlace, ReadersSeeWholeValuesWithTheirOwnExpiry) {
  auto engine = make(policy(64, EvictionPolicy::kAdaptive, 60s));
  auto cache = Cache<Pair>::open(*engine, "n").value();
  const TimePoint t0 = clock.now();
  auto ttl_of = [](std::uint32_t i) { return std::chrono::seconds(i % 5 + 1); };
  constexpr int kKeys = 2;
  constexpr std::uint32_t kPuts = 100000;
  std::atomic<int> writing{2}, readers_ready{0};
  std::atomic<std::uint64_t> bad{0}, reads{0};
  auto writer = [&](std::uint32_t first, bool mixed) {
    while (readers_ready.load() < 2) std::this_thread::yield();  // race readers, not an empty room
    for (std::uint32_t i = first; i < first + kPuts; ++i) {
      PutOptions o;
      o.ttl = ttl_of(i);
      if (mixed && i % 97 == 0) o.tags = {"x"};
      const std::string key = "k" + std::to_string(i % kKeys);
      (void)cache.put(TenantId{1}, key, Pair{i, i}, o);
      if (mixed && i % 251 == 0) cache.erase(TenantId{1}, key);
    }
    writing.fetch_sub(1);
  };
  auto reader = [&] {
    readers_ready.fetch_add(1);
    while (writing.load() > 0) {
      for (int k = 0; k < kKeys; ++k) {
        // get() copies inside the lookup; hit() pins, then Ref<V> copies.
        const std::string key = "k" + std::to_string(k);
        auto got = (k + reads.load(std::memory_order_relaxed)) % 2 ? cache.get(TenantId{1}, key)
                                                                   : cache.hit(TenantId{1}, key);
        if (!got) continue;
        reads.fetch_add(1, std::memory_order_relaxed);
        const Pair p = **got;
        if (p.a != p.b || got->expires_at() != t0 + ttl_of(p.a)) bad.fetch_add(1);
      }
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(writer, 0, false);
  threads.emplace_back(writer, 1000000, true);
  threads.emplace_back(reader);
  threads.emplace_back(reader);
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0u) << "of " << reads.load() << " reads";
  EXPECT_GT(reads.load(), 0u);
  EXPECT_GT(engine->stats().total.updates, kPuts);
}

}  // namespace in_place_test
}  // namespace callcache
