#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "callcache/cache.h"

namespace callcache {
namespace engine_test {

using namespace std::chrono_literals;

NamespacePolicy policy(std::uint64_t max_entries, Duration ttl = 60s) {
  NamespacePolicy p;
  p.max_entries = max_entries;
  p.ttl = ttl;
  return p;
}

struct Fixture : ::testing::Test {
  ManualClock clock;
  std::unique_ptr<Engine> make(std::vector<NamespaceSpec> specs, std::size_t shards = 1) {
    EngineOptions o;
    o.namespaces = std::move(specs);
    o.clock = &clock;
    o.shards = shards;
    o.sweep_interval = Duration::zero();
    auto e = Engine::create(std::move(o));
    EXPECT_TRUE(e.ok()) << e.status().to_string();
    return std::move(e).value();
  }
};

using EngineTest = Fixture;

TEST_F(EngineTest, PutGetReturnsSharedValueWithoutCopy) {
  auto engine = make({{"entity", policy(10)}});
  auto cache = Cache<std::string>::open(*engine, "entity").value();
  TenantId t = tenant_from_name("acct");
  ASSERT_TRUE(cache.put(t, "k", std::string(1000, 'x')).ok());
  auto a = cache.get(t, "k");
  auto b = cache.get(t, "k");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->get(), b->get()) << "two hits must share one stored value";
  EXPECT_EQ((*a)->size(), 1000u);
}

TEST_F(EngineTest, RefStaysValidAfterEvictionAndShutdown) {
  auto engine = make({{"entity", policy(1)}});
  auto cache = Cache<std::string>::open(*engine, "entity").value();
  TenantId t = tenant_from_name("acct");
  ASSERT_TRUE(cache.put(t, "a", "alpha").ok());
  auto held = cache.get(t, "a");
  ASSERT_TRUE(held);
  ASSERT_TRUE(cache.put(t, "b", "beta").ok());  // evicts a
  EXPECT_FALSE(cache.get(t, "a"));
  EXPECT_EQ(**held, "alpha");
  engine->shutdown();
  engine.reset();
  EXPECT_EQ(**held, "alpha");  // outlives the engine too
}

TEST_F(EngineTest, TenantsNeverCollideWhateverTheBytes) {
  auto engine = make({{"entity", policy(100)}}, 4);
  auto cache = Cache<int>::open(*engine, "entity").value();
  TenantId a{1}, b{2};
  ASSERT_TRUE(cache.put(a, "same", 1).ok());
  ASSERT_TRUE(cache.put(b, "same", 2).ok());
  EXPECT_EQ(**cache.get(a, "same"), 1);
  EXPECT_EQ(**cache.get(b, "same"), 2);
  EXPECT_EQ(engine->invalidate_tenant(a), 1u);
  EXPECT_FALSE(cache.get(a, "same"));
  EXPECT_EQ(**cache.get(b, "same"), 2);
}

TEST_F(EngineTest, SharedNamespaceServesEveryTenant) {
  NamespacePolicy p = policy(10);
  p.shared = true;
  auto engine = make({{"post", p}});
  auto cache = Cache<int>::open(*engine, "post").value();
  ASSERT_TRUE(cache.put(TenantId{7}, "post:1", 42).ok());
  EXPECT_EQ(**cache.get(TenantId{8}, "post:1"), 42);
}

TEST_F(EngineTest, ExpiresExactlyAtTtlWithManualClock) {
  auto engine = make({{"message", policy(10, 60s)}});
  auto cache = Cache<int>::open(*engine, "message").value();
  ASSERT_TRUE(cache.put(TenantId{1}, "m", 5).ok());
  clock.advance(59s);
  EXPECT_TRUE(cache.get(TenantId{1}, "m"));
  clock.advance(1s);
  EXPECT_FALSE(cache.get(TenantId{1}, "m")) << "an expired entry is never returned as fresh";
  EXPECT_EQ(engine->size(), 1u) << "still held until swept";
  EXPECT_EQ(engine->clear_expired(), 1u);
  EXPECT_EQ(engine->size(), 0u);
  EXPECT_EQ(engine->stats().total.expirations, 1u);
}

TEST_F(EngineTest, PerPutTtlAndJitterStayWithinBounds) {
  NamespacePolicy p = policy(1000, 100s);
  p.jitter = 0.2;
  auto engine = make({{"entity", p}});
  auto cache = Cache<int>::open(*engine, "entity").value();
  TimePoint t0 = clock.now();
  Duration lo = 1h, hi = 0s;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(cache.put(TenantId{1}, "k" + std::to_string(i), i).ok());
    Duration d = cache.get(TenantId{1}, "k" + std::to_string(i))->expires_at() - t0;
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_GE(lo, 80s);
  EXPECT_LE(hi, 120s);
  EXPECT_GT(hi - lo, 20s) << "jitter must spread expiries";
  PutOptions o;
  o.ttl = 5s;
  ASSERT_TRUE(cache.put(TenantId{1}, "short", 1, o).ok());
  Duration d = cache.get(TenantId{1}, "short")->expires_at() - t0;
  EXPECT_GE(d, 4s);
  EXPECT_LE(d, 6s);
}

TEST_F(EngineTest, BackgroundSweepRemovesExpiredEntries) {
  ManualScheduler sched(clock);
  EngineOptions o;
  o.namespaces = {{"entity", policy(10, 10s)}};
  o.clock = &clock;
  o.scheduler = &sched;
  o.sweep_interval = 1s;
  auto engine = Engine::create(std::move(o)).value();
  auto cache = Cache<int>::open(*engine, "entity").value();
  ASSERT_TRUE(cache.put(TenantId{1}, "a", 1).ok());
  sched.advance(5s);
  EXPECT_EQ(engine->size(), 1u);
  sched.advance(6s);
  EXPECT_EQ(engine->size(), 0u);
}

TEST_F(EngineTest, InvalidateByKeyNamespaceAndTag) {
  auto engine = make({{"entity", policy(100)}, {"message", policy(100)}});
  auto e = Cache<int>::open(*engine, "entity").value();
  auto m = Cache<int>::open(*engine, "message").value();
  PutOptions tagged;
  tagged.tags = {"chat:5"};
  ASSERT_TRUE(e.put(TenantId{1}, "a", 1, tagged).ok());
  ASSERT_TRUE(m.put(TenantId{1}, "b", 2, tagged).ok());
  ASSERT_TRUE(m.put(TenantId{1}, "c", 3).ok());
  EXPECT_EQ(engine->invalidate_tag("chat:5"), 2u);
  EXPECT_FALSE(e.get(TenantId{1}, "a"));
  EXPECT_FALSE(m.get(TenantId{1}, "b"));
  EXPECT_TRUE(m.get(TenantId{1}, "c"));
  ASSERT_TRUE(engine->invalidate("message", TenantId{1}, "c").ok());
  EXPECT_FALSE(m.get(TenantId{1}, "c"));
  ASSERT_TRUE(m.put(TenantId{1}, "d", 4).ok());
  ASSERT_TRUE(engine->invalidate_namespace("message").ok());
  EXPECT_FALSE(m.get(TenantId{1}, "d")) << "namespace version bump hides old entries at once";
  ASSERT_TRUE(m.put(TenantId{1}, "d", 5).ok());
  EXPECT_EQ(**m.get(TenantId{1}, "d"), 5);
  EXPECT_EQ(engine->clear_expired(), 0u);
  EXPECT_EQ(engine->size(), 1u) << "the sweep reclaimed nothing live";
  EXPECT_FALSE(engine->invalidate_namespace("nope").ok());
}

TEST_F(EngineTest, UnknownNamespaceAndTypeMismatchAreClearErrors) {
  auto engine = make({{"entity", policy(10)}});
  auto bad = Cache<int>::open(*engine, "entiy");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kNotFound);
  EXPECT_NE(bad.status().message().find("entiy"), std::string::npos);
  ASSERT_TRUE(Cache<int>::open(*engine, "entity").ok());
  auto other = Cache<std::string>::open(*engine, "entity");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Code::kInvalidArgument);
}

TEST_F(EngineTest, BadInputHasDefinedOutcomes) {
  NamespacePolicy p = policy(10);
  p.max_bytes = 100;
  auto engine = make({{"blob", p}});
  auto cache = Cache<std::string>::open(*engine, "blob").value();
  EXPECT_EQ(cache.put(TenantId{1}, "", "v").code(), Code::kInvalidArgument);
  EXPECT_EQ(cache.put(TenantId{1}, std::string(70000, 'k'), "v").code(), Code::kInvalidArgument);
  Status big = cache.put(TenantId{1}, "big", std::string(101, 'x'));
  EXPECT_EQ(big.code(), Code::kTooLarge);
  EXPECT_FALSE(cache.get(TenantId{1}, "big"));
  EXPECT_EQ(engine->stats().total.rejected_too_large, 1u);
  engine->shutdown();
  EXPECT_EQ(cache.put(TenantId{1}, "k", "v").code(), Code::kShutdown);
  EXPECT_FALSE(cache.get(TenantId{1}, "k"));
}

TEST_F(EngineTest, InvalidPoliciesAreRejectedNamingTheField) {
  EngineOptions o;
  NamespacePolicy p;
  p.max_entries = 0;
  o.namespaces = {{"entity", p}};
  auto e = Engine::create(o);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("entity"), std::string::npos);
  EXPECT_NE(e.status().message().find("max_entries"), std::string::npos);
  o.namespaces = {{"a", policy(1)}, {"a", policy(1)}};
  EXPECT_FALSE(Engine::create(o).ok());
  p = policy(1);
  p.ttl = 0s;
  o.namespaces = {{"a", p}};
  EXPECT_FALSE(Engine::create(o).ok());
}

TEST_F(EngineTest, TenantCapEvictsOnlyThatTenantsEntries) {
  NamespacePolicy p = policy(1000);
  p.max_entries_per_tenant = 3;
  auto engine = make({{"entity", p}}, 8);
  auto cache = Cache<int>::open(*engine, "entity").value();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cache.put(TenantId{2}, "b" + std::to_string(i), i).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(cache.put(TenantId{1}, "a" + std::to_string(i), i).ok());
  int a_held = 0;
  for (int i = 0; i < 10; ++i)
    a_held += cache.get(TenantId{1}, "a" + std::to_string(i)).has_value();
  EXPECT_EQ(a_held, 3);
  EXPECT_TRUE(cache.get(TenantId{1}, "a9")) << "the newest survive";
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(cache.get(TenantId{2}, "b" + std::to_string(i)));
  EXPECT_EQ(engine->stats().total.evicted(EvictionCause::kTenantCap), 7u);
}

// Tenants of a capped namespace are pinned to one shard each: a shard must
// hold a whole tenant at its cap, or the cap is unreachable and a tenant
// filling its shard evicts the others pinned there.
TEST_F(EngineTest, TenantReachesItsCapAndItsFloodLeavesOtherTenantsAlone) {
  NamespacePolicy p = policy(4000);
  p.max_entries_per_tenant = 400;  // at most 8 shards of 500: a full tenant and 100 more fit in one
  for (std::size_t shards : {0, 64}) {  // the default shard count, and many explicit shards
    auto engine = make({{"entity", p}}, shards);
    auto cache = Cache<int>::open(*engine, "entity").value();
    for (std::uint64_t t = 2; t < 12; ++t) {  // ten small tenants, whatever shards they land in
      for (int i = 0; i < 10; ++i)
        ASSERT_TRUE(cache.put(TenantId{t}, "b" + std::to_string(i), i).ok());
    }
    for (int i = 0; i < 5000; ++i)
      ASSERT_TRUE(cache.put(TenantId{1}, "a" + std::to_string(i), i).ok());
    int a_held = 0;
    for (int i = 0; i < 5000; ++i)
      a_held += cache.get(TenantId{1}, "a" + std::to_string(i)).has_value();
    EXPECT_EQ(a_held, 400) << shards << " shards";
    int others = 0;
    for (std::uint64_t t = 2; t < 12; ++t) {
      for (int i = 0; i < 10; ++i)
        others += cache.get(TenantId{t}, "b" + std::to_string(i)).has_value();
    }
    EXPECT_EQ(others, 100) << shards << " shards";
  }
}

TEST_F(EngineTest, StatsRenderAsJsonAndPrometheus) {
  auto engine = make({{"entity", policy(10)}});
  auto cache = Cache<int>::open(*engine, "entity").value();
  ASSERT_TRUE(cache.put(TenantId{1}, "a", 1).ok());
  (void)cache.get(TenantId{1}, "a");
  (void)cache.get(TenantId{1}, "zz");
  StatsSnapshot s = engine->stats();
  EXPECT_EQ(s.total.hits, 1u);
  EXPECT_EQ(s.total.misses, 1u);
  EXPECT_EQ(s.namespaces.at(0).entries, 1u);
  std::string json = s.to_json();
  EXPECT_NE(json.find("\"entity\":{"), std::string::npos) << json;
  EXPECT_NE(json.find("\"hits\":1"), std::string::npos) << json;
  std::string prom = s.to_prometheus();
  EXPECT_NE(prom.find("callcache_hits_total{namespace=\"entity\",scope=\"isolated\"} 1"),
            std::string::npos)
      << prom;
  EXPECT_NE(prom.find("# TYPE callcache_entries gauge"), std::string::npos);
}

TEST_F(EngineTest, InsertAfterAnInvalidationItRacedIsCancelledAndKeepsTheValue) {
  auto engine = make({{"entity", policy(10)}}, 1);
  auto cache = Cache<std::string>::open(*engine, "entity").value();
  using internal::EngineAccess;
  const std::uint64_t before = EngineAccess::epoch(*engine, cache.id());
  ASSERT_TRUE(engine->invalidate("entity", TenantId{1}, "other").ok());
  EXPECT_NE(EngineAccess::epoch(*engine, cache.id()), before);
  std::string value = "loaded before the invalidation";
  PutOptions o;
  internal::Entry* e = nullptr;
  Status s = EngineAccess::insert(*engine, cache.id(), TenantId{1}, "k", &value, value.size(), o,
                                  before, &e);
  EXPECT_EQ(s.code(), Code::kCancelled);
  EXPECT_EQ(value, "loaded before the invalidation") << "refused before the value was moved";
  EXPECT_EQ(e, nullptr);
  EXPECT_FALSE(cache.get(TenantId{1}, "k"));
  EXPECT_TRUE(EngineAccess::insert(*engine, cache.id(), TenantId{1}, "k", &value, value.size(), o,
                                   EngineAccess::epoch(*engine, cache.id()))
                  .ok());
  EXPECT_TRUE(cache.get(TenantId{1}, "k"));
}

// A load that started before an invalidation of its key delivers its value to
// its waiters but does not cache it: the value may predate the change.
TEST_F(EngineTest, LoadRacingAnInvalidationIsNotCached) {
  auto engine = make({{"entity", policy(10)}}, 1);
  auto cache = Cache<std::string>::open(*engine, "entity").value();
  std::optional<LoadCompletion<std::string>> pending;
  std::optional<Result<Ref<std::string>>> got;
  auto start = [&](LoadCompletion<std::string> done) { pending.emplace(std::move(done)); };
  cache.get_or_load_async(TenantId{1}, "chat:5", start,
                          [&](Result<Ref<std::string>> r) { got.emplace(std::move(r)); });
  ASSERT_TRUE(pending.has_value());
  ASSERT_TRUE(engine->invalidate("entity", TenantId{1}, "chat:5").ok());  // e.g. setChatTitle
  (*pending)(Result<std::string>(std::string("old title")));
  ASSERT_TRUE(got.has_value() && got->ok());
  EXPECT_EQ(***got, "old title") << "the waiter still gets the value it waited for";
  EXPECT_FALSE(cache.get(TenantId{1}, "chat:5")) << "but it is not cached";

  // Without an invalidation in between, the same load is cached.
  pending.reset();
  got.reset();
  cache.get_or_load_async(TenantId{1}, "chat:5", start,
                          [&](Result<Ref<std::string>> r) { got.emplace(std::move(r)); });
  ASSERT_TRUE(pending.has_value());
  (*pending)(Result<std::string>(std::string("new title")));
  ASSERT_TRUE(got.has_value() && got->ok());
  EXPECT_EQ(**cache.get(TenantId{1}, "chat:5"), "new title");
}

TEST(Tenant, KeyedHashIsStableAndKeyDependent) {
  TenantKey k1 = kDefaultTenantKey, k2 = kDefaultTenantKey;
  k2[0] ^= 1;
  EXPECT_EQ(tenant_from_secret("123:ABC"), tenant_from_secret("123:ABC"));
  EXPECT_NE(tenant_from_secret("123:ABC", k1), tenant_from_secret("123:ABC", k2));
  EXPECT_NE(tenant_from_secret("123:ABC"), tenant_from_secret("123:ABD"));
  EXPECT_EQ(to_hex(TenantId{0xabc}), "0000000000000abc");
  EXPECT_EQ(to_hex(tenant_from_secret("123:ABC")).find("ABC"), std::string::npos);
  // SipHash-2-4 reference vector: key 00..0f, empty input.
  TenantKey ref{};
  for (int i = 0; i < 16; ++i) ref[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(siphash24(ref, ""), 0x726fdb47dd0e0e31ULL);
  EXPECT_TRUE(parse_tenant_key("000102030405060708090a0b0c0d0e0f").ok());
  EXPECT_FALSE(parse_tenant_key("xyz").ok());
}

}  // namespace engine_test
}  // namespace callcache
