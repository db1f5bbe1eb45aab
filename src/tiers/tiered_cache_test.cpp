// TieredCache over a real SQLite tier: L1 → L2 → loader.
#include "callcache/tiered_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "callcache/degrading_backend.h"
#include "callcache/sqlite_backend.h"
#include "test_util.h"

namespace callcache {
namespace tiered_cache_test {

using namespace std::chrono_literals;

struct User {
  int id = 0;
  std::string name;
};
void to_json(nlohmann::json& j, const User& u) { j = {{"id", u.id}, {"name", u.name}}; }
void from_json(const nlohmann::json& j, User& u) {
  j.at("id").get_to(u.id);
  j.at("name").get_to(u.name);
}

const TenantId kAlice = tenant_from_name("alice");
const TenantId kBob = tenant_from_name("bob");

// A store that is always down.
class DownBackend final : public Backend {
 public:
  std::atomic<int> calls{0};
  std::string_view name() const noexcept override { return "down"; }
  Result<std::optional<StoredValue>> get(const BackendKey&) override { return fail(); }
  Result<std::vector<std::optional<StoredValue>>> get_many(std::span<const BackendKey>) override {
    return fail();
  }
  Status put(const BackendKey&, std::string_view, Duration) override { return fail(); }
  Status put_many(std::span<const BackendItem>) override { return fail(); }
  Status erase(const BackendKey&) override { return fail(); }
  Status erase_tenant(TenantId) override { return fail(); }
  Status erase_namespace(std::string_view) override { return fail(); }
  Result<std::uint64_t> purge_expired() override { return fail(); }
  Status flush() override { return fail(); }
  Status health() override { return fail(); }
  BackendStats stats() const override { return {}; }

 private:
  Status fail() {
    ++calls;
    return Status::unavailable("down");
  }
};

class TieredCacheTest : public ::testing::Test {
 protected:
  std::unique_ptr<Engine> engine(NamespacePolicy p = {}) {
    EngineOptions o;
    p.ttl = 60s;
    NamespacePolicy shared = p;
    shared.shared = true;
    o.namespaces = {{"entity", p}, {"user", p}, {"public", shared}};
    o.clock = &clock_;
    o.scheduler = &sched_;
    o.sweep_interval = Duration::zero();
    auto e = Engine::create(o);
    EXPECT_TRUE(e.ok()) << e.status().to_string();
    return std::move(*e);
  }
  std::unique_ptr<Backend> sqlite() {
    SqliteOptions o;
    o.path = dir_.file("l2.sqlite3");
    o.clock = &clock_;
    o.scheduler = &sched_;
    o.flush_interval = o.purge_interval = Duration::zero();
    return open_sqlite_backend(o).value();
  }
  template <class V = std::string>
  TieredCache<V> tiered(Engine& e, Backend* l2, std::string_view ns = "entity") {
    return TieredCache<V>(Cache<V>::open(e, ns).value(), l2);
  }

  tiers::testing::TempDir dir_;
  ManualClock clock_;
  ManualScheduler sched_{clock_};
};

TEST_F(TieredCacheTest, L2HitFillsL1WithTheRemainingTtl) {
  auto e = engine();
  auto l2 = sqlite();
  ASSERT_TRUE(l2->put({"entity", kAlice, "user:1"}, "from-l2", 30s).ok());
  clock_.advance(10s);
  auto c = tiered(*e, l2.get());
  int loads = 0;
  auto r = c.get_or_load(kAlice, "user:1", [&loads]() -> Result<std::string> {
    ++loads;
    return std::string("loaded");
  });
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(**r, "from-l2");
  EXPECT_EQ(loads, 0);
  EXPECT_EQ(r->expires_at(), clock_.now() + 20s);  // remaining, not a fresh 60 s
  EXPECT_EQ(c.stats().l2_hits, 1u);
  // L1 now serves it without touching L2.
  auto gets = l2->stats().gets;
  EXPECT_EQ(**c.get_or_load(kAlice, "user:1", [&] { return std::string("x"); }), "from-l2");
  EXPECT_EQ(l2->stats().gets, gets);
  // Both tiers expire together; then the loader runs.
  clock_.advance(20s);
  auto again = c.get_or_load(kAlice, "user:1", [&loads] {
    ++loads;
    return std::string("fresh");
  });
  EXPECT_EQ(**again, "fresh");
  EXPECT_EQ(loads, 1);
}

TEST_F(TieredCacheTest, LoadsWriteThroughWithTheirTtl) {
  auto e = engine();
  auto l2 = sqlite();
  auto c = tiered(*e, l2.get());
  ASSERT_TRUE(c.get_or_load(kAlice, "a", [] { return std::string("A"); }).ok());
  auto v = l2->get({"entity", kAlice, "a"});
  ASSERT_TRUE(v->has_value());
  EXPECT_TRUE((*v)->bytes.ends_with("A"));  // after the record header
  EXPECT_EQ((*v)->ttl_left, 60s);
  // A loader's ttl override reaches both tiers.
  auto r = c.get_or_load(kAlice, "b", [] { return Loaded<std::string>{"B", 5s, {}}; });
  EXPECT_EQ(r->expires_at(), clock_.now() + 5s);
  EXPECT_EQ((*l2->get({"entity", kAlice, "b"}))->ttl_left, 5s);
  EXPECT_EQ(c.stats().l2_writes, 2u);
  EXPECT_EQ(c.stats().l2_misses, 2u);
  EXPECT_EQ(c.stats().loads, 2u);
}

TEST_F(TieredCacheTest, FailedLoadsAreNotWrittenToL2) {
  auto e = engine();
  auto l2 = sqlite();
  auto c = tiered(*e, l2.get());
  auto r = c.get_or_load(kAlice, "a", []() -> Result<std::string> {
    return Status::load_failed("upstream said no");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "upstream said no");
  EXPECT_FALSE(l2->get({"entity", kAlice, "a"})->has_value());
  EXPECT_EQ(c.stats().l2_writes, 0u);
}

TEST_F(TieredCacheTest, ARerunAfterRestartIsServedFromSqlite) {
  std::atomic<int> loads{0};
  auto loader = [&loads](int i) {
    return [&loads, i]() -> Result<User> {
      ++loads;
      return User{i, "user" + std::to_string(i)};
    };
  };
  {
    auto e = engine();
    auto l2 = sqlite();
    auto c = tiered<User>(*e, l2.get(), "user");
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(c.get_or_load(kAlice, "u" + std::to_string(i), loader(i)).ok());
    }
    EXPECT_EQ(loads.load(), 20);
  }  // process "exits": L1 gone, SQLite flushed on destruction
  // (No virtual time passes here: a reopened file measures expiry on wall
  // time, which barely moved.)
  auto e = engine();
  auto l2 = sqlite();
  auto c = tiered<User>(*e, l2.get(), "user");
  for (int i = 0; i < 20; ++i) {
    auto r = c.get_or_load(kAlice, "u" + std::to_string(i), loader(i));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ((*r)->id, i);
    EXPECT_EQ((*r)->name, "user" + std::to_string(i));
    EXPECT_LE(r->expires_at(), clock_.now() + 60s);  // the remaining ttl
    EXPECT_GT(r->expires_at(), clock_.now() + 55s);
  }
  EXPECT_EQ(loads.load(), 20) << "the re-run called the loader";
  EXPECT_EQ(c.stats().l2_hits, 20u);
}

TEST_F(TieredCacheTest, InvalidationsReachBothTiers) {
  auto e = engine();
  auto l2 = sqlite();
  auto c = tiered(*e, l2.get());
  ASSERT_TRUE(c.put(kAlice, "a", "1").ok());
  ASSERT_TRUE(c.put(kAlice, "b", "2").ok());
  ASSERT_TRUE(c.put(kBob, "c", "3").ok());
  EXPECT_TRUE((*l2->get({"entity", kAlice, "a"}))->bytes.ends_with("1"));

  EXPECT_TRUE(c.erase(kAlice, "a"));
  EXPECT_FALSE(c.get(kAlice, "a"));
  EXPECT_FALSE(l2->get({"entity", kAlice, "a"})->has_value());

  ASSERT_TRUE(c.invalidate_tenant(kAlice).ok());
  EXPECT_FALSE(c.get(kAlice, "b"));
  EXPECT_FALSE(l2->get({"entity", kAlice, "b"})->has_value());
  EXPECT_TRUE(c.get(kBob, "c"));

  ASSERT_TRUE(c.invalidate_namespace().ok());
  EXPECT_FALSE(c.get(kBob, "c"));
  EXPECT_FALSE(l2->get({"entity", kBob, "c"})->has_value());
  int loads = 0;
  EXPECT_EQ(**c.get_or_load(kBob, "c", [&] {
    ++loads;
    return std::string("reloaded");
  }),
            "reloaded");
  EXPECT_EQ(loads, 1);
}

// A load overtaken by an invalidation of its key reaches its caller but is
// kept in neither tier: the next read loads again.
TEST_F(TieredCacheTest, ALoadRacingAnInvalidationIsKeptInNeitherTier) {
  auto e = engine();
  auto l2 = sqlite();
  auto c = tiered(*e, l2.get());
  std::atomic<bool> loading{false}, invalidated{false};
  std::thread reader([&] {
    auto r = c.get_or_load(kAlice, "a", [&] {
      loading = true;
      while (!invalidated) std::this_thread::sleep_for(1ms);
      return std::string("old");
    });
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(**r, "old");
  });
  while (!loading) std::this_thread::sleep_for(1ms);
  c.erase(kAlice, "a");
  invalidated = true;
  reader.join();
  EXPECT_FALSE(c.get(kAlice, "a"));
  int loads = 0;
  auto again = c.get_or_load(kAlice, "a", [&] {
    ++loads;
    return std::string("new");
  });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(**again, "new");
  EXPECT_EQ(loads, 1);
}

// The callback form: one L2 read and one load per key, and each call says
// how it was served.
TEST_F(TieredCacheTest, TheCallbackFormReadsThroughBothTiersAndSaysHow) {
  auto e = engine();
  auto l2 = sqlite();
  auto c = tiered(*e, l2.get());
  std::optional<LoadCompletion<std::string>> pending;
  int loads = 0;
  auto loader = [&](LoadCompletion<std::string> done) {
    ++loads;
    pending.emplace(std::move(done));
  };
  std::vector<std::pair<std::string, Served>> got;
  auto record = [&](Result<Ref<std::string>> r, Served how) {
    got.emplace_back(r.ok() ? **r : r.status().to_string(), how);
  };
  c.get_or_load_async(kAlice, "k", loader, record);
  c.get_or_load_async(kAlice, "k", loader, record);
  ASSERT_TRUE(pending);
  EXPECT_TRUE(got.empty());
  EXPECT_TRUE((*pending)(std::string("v")));
  c.get_or_load_async(kAlice, "k", loader, record);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair(std::string("v"), Served::kLoaded));
  EXPECT_EQ(got[1], std::make_pair(std::string("v"), Served::kCoalesced));
  EXPECT_EQ(got[2], std::make_pair(std::string("v"), Served::kHit));
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(c.stats().l2_writes, 1u);
  // Another engine over the same L2 (a restart, another process) gets it from L2.
  auto e2 = engine();
  auto c2 = tiered(*e2, l2.get());
  c2.get_or_load_async(kAlice, "k", loader, record);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[3], std::make_pair(std::string("v"), Served::kSecondTier));
  EXPECT_EQ(loads, 1);
}

TEST_F(TieredCacheTest, AnAsyncLoadRacingAnInvalidationIsKeptInNeitherTier) {
  auto e = engine();
  auto l2 = sqlite();
  auto c = tiered(*e, l2.get());
  std::optional<LoadCompletion<std::string>> pending;
  auto loader = [&](LoadCompletion<std::string> done) { pending.emplace(std::move(done)); };
  std::optional<Result<Ref<std::string>>> got;
  c.get_or_load_async(kAlice, "k", loader, [&](Result<Ref<std::string>> r) { got.emplace(r); });
  ASSERT_TRUE(pending);
  EXPECT_EQ(c.invalidate_tag("chat:1"), 0u);  // any invalidation of the namespace
  (*pending)(Loaded<std::string>{"old", std::nullopt, {"chat:1"}});
  ASSERT_TRUE(got && got->ok());
  EXPECT_EQ(***got, "old");
  EXPECT_FALSE(c.get(kAlice, "k"));
  EXPECT_EQ(c.stats().l2_writes, 0u);
}

// Two engines over one L2 stand for two processes: a load in flight on A
// while B invalidates the key is stored in A's memory (A saw no
// invalidation), but what A writes to L2 is hidden from everyone by B's
// marker.
TEST_F(TieredCacheTest, AWriteOvertakenByAnInvalidationElsewhereIsHiddenInL2) {
  auto ea = engine();
  auto eb = engine();
  auto ec = engine();
  auto l2 = sqlite();
  // A wall clock that moves 1 µs per reading (a real one may not move
  // between two steps of the test: equal times count as "before").
  std::atomic<std::int64_t> wall{1'700'000'000'000};
  TiersOptions o;
  o.wall_clock_us = [&wall] { return ++wall; };
  Tiers ta(*ea, l2.get(), o), tb(*eb, l2.get(), o), tc(*ec, l2.get(), o);
  auto a = TieredCache<std::string>::open(ta, "entity").value();
  auto b = TieredCache<std::string>::open(tb, "entity").value();
  std::optional<LoadCompletion<std::string>> pending;
  a.get_or_load_async(
      kAlice, "k", [&](LoadCompletion<std::string> done) { pending = done; },
      [](Result<Ref<std::string>>) {});
  ASSERT_TRUE(pending);
  EXPECT_FALSE(b.erase(kAlice, "k"));
  (*pending)(std::string("old"));
  EXPECT_EQ(a.stats().l2_writes, 1u);
  int loads = 0;
  auto r = b.get_or_load(kAlice, "k", [&] {
    ++loads;
    return std::string("new");
  });
  EXPECT_EQ(**r, "new");
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(b.stats().l2_invalidated, 1u);
  // A value loaded after the invalidation is shared again.
  auto c = TieredCache<std::string>::open(tc, "entity").value();
  EXPECT_EQ(**c.get_or_load(kAlice, "k", [] { return std::string("unused"); }), "new");
}

// Tags travel with a value through L2, and a tag invalidation reaches values
// that only L2 holds.
TEST_F(TieredCacheTest, TagInvalidationReachesTheSecondTier) {
  auto e = engine();
  auto l2 = sqlite();
  auto c = tiered(*e, l2.get());
  ASSERT_TRUE(c.get_or_load(kAlice, "member:1", [] {
                 return Loaded<std::string>{"m1", {}, {"chat:1"}};
               }).ok());
  ASSERT_TRUE(c.get_or_load(kAlice, "member:2", [] {
                 return Loaded<std::string>{"m2", {}, {"chat:2"}};
               }).ok());
  // Promoted from L2 into another engine, with its tags.
  auto e2 = engine();
  auto c2 = tiered(*e2, l2.get());
  EXPECT_EQ(**c2.get_or_load(kAlice, "member:1", [] { return std::string("unused"); }), "m1");
  EXPECT_EQ(c2.invalidate_tag("chat:1"), 1u);
  EXPECT_FALSE(c2.get(kAlice, "member:1"));
  // The first engine still holds it in memory; L2 no longer serves it.
  auto e3 = engine();
  auto c3 = tiered(*e3, l2.get());
  EXPECT_EQ(**c3.get_or_load(kAlice, "member:1", [] { return std::string("reloaded"); }),
            "reloaded");
  EXPECT_EQ(**c3.get_or_load(kAlice, "member:2", [] { return std::string("unused"); }), "m2");
  EXPECT_EQ(c3.stats().l2_invalidated, 1u);
}

TEST_F(TieredCacheTest, RetainSaysWhereALoadedValueIsKept) {
  auto e = engine();
  auto l2 = sqlite();
  auto c = tiered(*e, l2.get());
  auto r = c.get_or_load(kAlice, "error", [] {
    return Loaded<std::string>{"502", std::nullopt, {}, Retain::kNone};
  });
  EXPECT_EQ(**r, "502");                 // handed to the caller ...
  EXPECT_FALSE(c.get(kAlice, "error"));  // ... kept nowhere
  auto m = c.get_or_load(kAlice, "short", [] {
    return Loaded<std::string>{"400", 5s, {}, Retain::kMemoryOnly};
  });
  EXPECT_EQ(**m, "400");
  EXPECT_TRUE(c.get(kAlice, "short"));
  EXPECT_FALSE(l2->get({"entity", kAlice, "short"})->has_value());
  EXPECT_EQ(c.stats().l2_writes, 0u);
}

struct Point {
  int x = 0, y = 0;
};

// A codec chosen at run time (as a language binding's serialiser would be).
TEST_F(TieredCacheTest, CodecFunctionsCarryAnyValueType) {
  CodecFunctions<Point> codec{
      [](const Point& p) { return std::to_string(p.x) + "," + std::to_string(p.y); },
      [](std::string_view b) -> Result<Point> {
        auto comma = b.find(',');
        if (comma == std::string_view::npos) return Status::corruption("no comma");
        return Point{std::stoi(std::string(b.substr(0, comma))),
                     std::stoi(std::string(b.substr(comma + 1)))};
      }};
  auto e = engine();
  auto l2 = sqlite();
  Tiers tiers(*e, l2.get());
  auto c = TieredCache<Point, CodecFunctions<Point>>::open(tiers, "entity", codec).value();
  ASSERT_TRUE(c.get_or_load(kAlice, "p", [] { return Point{3, 4}; }).ok());
  auto e2 = engine();
  Tiers tiers2(*e2, l2.get());
  auto c2 = TieredCache<Point, CodecFunctions<Point>>::open(tiers2, "entity", codec).value();
  auto p = c2.get_or_load(kAlice, "p", [] { return Point{0, 0}; });
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->x, 3);
  EXPECT_EQ((*p)->y, 4);
  EXPECT_EQ(c2.stats().l2_hits, 1u);
}

TEST_F(TieredCacheTest, AnL2OutageNeverFailsARead) {
  auto e = engine();
  DownBackend down;
  auto c = tiered(*e, &down);
  for (int i = 0; i < 5; ++i) {
    auto r = c.get_or_load(kAlice, "k" + std::to_string(i), [i] { return std::to_string(i); });
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  EXPECT_TRUE(c.put(kAlice, "p", "v").ok());
  EXPECT_EQ(c.stats().l2_errors, 5u);
  EXPECT_EQ(c.stats().l2_write_errors, 6u);
  EXPECT_EQ(c.stats().loads, 5u);
  // With the degrading wrapper the store is only touched once per backoff.
  std::vector<std::string> lines;
  DegradeOptions d;
  d.clock = &clock_;
  d.log = [&](TierLogLevel, std::string_view m) { lines.emplace_back(m); };
  auto inner = std::make_unique<DownBackend>();
  DownBackend* raw = inner.get();
  DegradingBackend wrapped(std::move(inner), d);
  auto w = tiered(*e, &wrapped, "user");
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(w.get_or_load(kAlice, "k" + std::to_string(i), [] { return std::string("v"); }).ok());
  }
  EXPECT_EQ(raw->calls.load(), 1);
  EXPECT_EQ(lines.size(), 1u);
}

TEST_F(TieredCacheTest, UndecodableL2ValuesAreReloadedAndReplaced) {
  auto e = engine();
  auto l2 = sqlite();
  ASSERT_TRUE(l2->put({"user", kAlice, "u1"}, "{not json", 30s).ok());
  auto c = tiered<User>(*e, l2.get(), "user");
  auto r = c.get_or_load(kAlice, "u1", [] { return User{1, "ok"}; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->name, "ok");
  EXPECT_EQ(c.stats().decode_errors, 1u);
  EXPECT_TRUE((*l2->get({"user", kAlice, "u1"}))->bytes.ends_with(R"({"id":1,"name":"ok"})"));
}

TEST_F(TieredCacheTest, SharedNamespacesUseTheSharedTenantInL2) {
  auto e = engine();
  auto l2 = sqlite();
  auto c = tiered(*e, l2.get(), "public");
  ASSERT_TRUE(c.get_or_load(kAlice, "channel:1", [] { return std::string("news"); }).ok());
  EXPECT_TRUE(l2->get({"public", kSharedTenant, "channel:1"})->has_value());
  int loads = 0;
  auto r = c.get_or_load(kBob, "channel:1", [&] {
    ++loads;
    return std::string("again");
  });
  EXPECT_EQ(**r, "news");
  EXPECT_EQ(loads, 0);
}

TEST_F(TieredCacheTest, ConcurrentMissesMakeOneL2ReadAndOneLoad) {
  auto e = engine();
  auto l2 = sqlite();
  auto c = tiered(*e, l2.get());
  constexpr int kThreads = 8;
  std::atomic<int> loads{0};
  std::atomic<bool> release{false};
  auto loader = [&] {
    ++loads;
    // Hold the load until every other caller has joined it (or 10 s passed).
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!release && std::chrono::steady_clock::now() < deadline) {
      if (e->stats().total.coalesced >= kThreads - 1) break;
      std::this_thread::sleep_for(1ms);
    }
    return std::string("once");
  };
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto r = c.get_or_load(kAlice, "hot", loader);
      if (r.ok() && **r == "once") ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads);
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(c.stats().l2_misses, 1u);  // one L2 read (the value and its markers, in one call)
  EXPECT_EQ(e->stats().total.coalesced, static_cast<std::uint64_t>(kThreads - 1));
}

}  // namespace tiered_cache_test
}  // namespace callcache
