// Processes sharing one real redis-server through Tiers with a Redis
// coordinator: invalidations reach every process's L1, a lost subscription
// drops L1, and N processes missing one key make one load. Each "process"
// is its own Engine, Redis backend, coordinator (own connections) and Tiers.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "callcache/redis_backend.h"
#include "callcache/tiered_cache.h"
#include "eventually.h"
#include "redis_fixture.h"

namespace callcache {
namespace coordination_test {

using namespace std::chrono_literals;
using testing::eventually;

const TenantId kAlice = tenant_from_name("alice");

struct Process {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Backend> l2;
  std::shared_ptr<TierCoordinator> coordinator;
  std::unique_ptr<Tiers> tiers;
  std::optional<TieredCache<std::string>> cache;
};

class CoordinationTest : public testing::RedisTest {
 protected:
  std::unique_ptr<Process> process(Duration lease_wait = 5s) {
    auto p = std::make_unique<Process>();
    EngineOptions eo;
    NamespacePolicy pol;
    pol.ttl = 60s;
    eo.namespaces = {{"entity", pol}, {"user", pol}};
    p->engine = Engine::create(eo).value();
    RedisOptions ro;
    EXPECT_TRUE(parse_redis_url(redis_.url(), ro).ok());
    p->l2 = open_redis_backend(ro).value();
    RedisCoordinatorOptions co;
    co.redis = ro;
    co.heartbeat = 50ms;
    co.heartbeat_timeout = 300ms;
    co.flush_interval = 200ms;
    co.retry = 50ms;
    p->coordinator = open_redis_coordinator(co).value();
    TiersOptions to;
    to.coordinator = p->coordinator;
    to.lease_ttl = 5s;
    to.lease_wait = lease_wait;
    p->tiers = std::make_unique<Tiers>(*p->engine, p->l2.get(), std::move(to));
    p->cache.emplace(TieredCache<std::string>::open(*p->tiers, "entity").value());
    EXPECT_TRUE(eventually([&] { return p->coordinator->subscribed(); }));
    return p;
  }

  std::string raw(std::initializer_list<std::string> args) {
    redisContext* c = redisConnect(redis_.host().c_str(), redis_.port());
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    std::string out = r && r->str ? std::string(r->str, r->len) : "";
    if (r) freeReplyObject(r);
    redisFree(c);
    return out;
  }
};

bool in_l1(Process& p, std::string_view key) { return p.cache->get(kAlice, key).has_value(); }

TEST_F(CoordinationTest, EveryKindOfInvalidationReachesTheOtherProcessesL1) {
  auto a = process();
  auto b = process();
  auto c = process();
  auto fill = [&](std::string_view key, std::vector<std::string> tags = {}) {
    for (Process* p : {a.get(), b.get(), c.get()}) {
      auto r = p->cache->get_or_load(kAlice, key, [tags] {
        return Loaded<std::string>{"v1", std::nullopt, tags};
      });
      ASSERT_TRUE(r.ok());
      ASSERT_TRUE(in_l1(*p, key));
    }
  };
  auto gone_everywhere = [&](std::string_view key) {
    EXPECT_FALSE(in_l1(*a, key));  // the invalidating process: at once
    EXPECT_TRUE(eventually([&] { return !in_l1(*b, key) && !in_l1(*c, key); })) << key;
  };

  fill("k");
  ASSERT_TRUE(a->tiers->invalidate("entity", kAlice, "k").ok());
  gone_everywhere("k");
  // The next read anywhere loads the new answer (L2 was invalidated too).
  auto r = b->cache->get_or_load(kAlice, "k", [] { return std::string("v2"); });
  EXPECT_EQ(**r, "v2");

  fill("tagged", {"chat:1"});
  a->tiers->invalidate_tag("chat:1");
  gone_everywhere("tagged");

  fill("t");
  a->tiers->invalidate_tenant(kAlice);
  gone_everywhere("t");

  fill("n");
  ASSERT_TRUE(c->tiers->invalidate_namespace("entity").ok());
  EXPECT_FALSE(in_l1(*c, "n"));
  EXPECT_TRUE(eventually([&] { return !in_l1(*a, "n") && !in_l1(*b, "n"); }));

  // Each process applied the others' messages, never its own.
  EXPECT_EQ(b->tiers->stats().remote_invalidations, 4u);
  EXPECT_EQ(a->tiers->stats().remote_invalidations, 1u);
  EXPECT_EQ(c->tiers->stats().remote_invalidations, 3u);
}

TEST_F(CoordinationTest, LostSubscriptionDropsL1UntilItIsBack) {
  auto a = process();
  ASSERT_TRUE(a->cache->put(kAlice, "k", "v1").ok());
  redis_.stop();
  // Redis died: the subscription fails at once and L1 is dropped.
  EXPECT_TRUE(eventually([&] { return !in_l1(*a, "k"); }, 2s));
  EXPECT_FALSE(a->coordinator->subscribed());
  // While it is down, what L1 takes is dropped within the flush interval.
  ASSERT_TRUE(a->cache->l1().put(kAlice, "during", "x").ok());
  EXPECT_TRUE(eventually([&] { return !in_l1(*a, "during"); }, 2s));
  const auto flushes = a->tiers->stats().l1_flushes;
  EXPECT_GE(flushes, 2u);
  ASSERT_EQ(redis_.restart(), "");
  EXPECT_TRUE(eventually([&] { return a->coordinator->subscribed(); }, 3s));
  // Resubscribed: dropped once more (covers the gap), then L1 is kept again.
  EXPECT_TRUE(eventually([&] { return a->tiers->stats().l1_flushes > flushes; }, 1s));
  ASSERT_TRUE(a->cache->l1().put(kAlice, "after", "y").ok());
  std::this_thread::sleep_for(400ms);
  EXPECT_TRUE(in_l1(*a, "after"));
}

TEST_F(CoordinationTest, ProcessesMissingOneKeyMakeOneLoad) {
  std::vector<std::unique_ptr<Process>> procs;
  for (int i = 0; i < 3; ++i) procs.push_back(process());
  std::atomic<int> loads{0};
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (auto& p : procs) {
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&, proc = p.get()] {
        auto r = proc->cache->get_or_load(kAlice, "hot", [&loads] {
          ++loads;
          std::this_thread::sleep_for(200ms);  // the upstream call
          return std::string("answer");
        });
        if (r.ok() && **r == "answer") ++good;
      });
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(good.load(), 9);
  std::uint64_t taken = 0, waits = 0, wait_hits = 0;
  for (auto& p : procs) {
    auto s = p->tiers->stats();
    taken += s.leases_taken;
    waits += s.lease_waits;
    wait_hits += s.lease_wait_hits;
  }
  EXPECT_EQ(taken, 1u);
  EXPECT_EQ(waits, wait_hits);  // every process that waited found the value in L2
  // The lease is gone once the value landed.
  EXPECT_EQ(raw({"EXISTS", "cc:lease:" + Tiers::lease_name("entity", kAlice, "hot")}), "");
}

TEST_F(CoordinationTest, AsyncWaiterIsWokenByTheLeaseHolder) {
  auto a = process();
  auto b = process();
  std::atomic<int> loads{0};
  std::thread leader([&] {
    auto r = a->cache->get_or_load(kAlice, "k", [&] {
      ++loads;
      std::this_thread::sleep_for(300ms);
      return std::string("from-a");
    });
    EXPECT_TRUE(r.ok());
  });
  ASSERT_TRUE(eventually([&] { return loads.load() == 1; }));
  internal::Gate got;
  std::string value;
  Served served{};
  b->cache->get_or_load_async(
      kAlice, "k",
      [&](LoadCompletion<std::string> done) {
        ++loads;
        done(std::string("from-b"));
      },
      [&](Result<Ref<std::string>> r, Served s) {
        value = r.ok() ? **r : r.status().to_string();
        served = s;
        got.open();
      });
  ASSERT_TRUE(got.wait_for(3s));
  leader.join();
  EXPECT_EQ(value, "from-a");
  EXPECT_EQ(served, Served::kSecondTier);
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(b->tiers->stats().lease_wait_hits, 1u);
}

TEST_F(CoordinationTest, AWaiterLoadsItselfWhenTheHolderDied) {
  auto b = process(/*lease_wait=*/300ms);
  // A holder that crashed: its lease is there and nobody will release it.
  ASSERT_EQ(
      raw({"SET", "cc:lease:" + Tiers::lease_name("entity", kAlice, "k"), "dead", "PX", "10000"}),
      "OK");
  int loads = 0;
  auto started = std::chrono::steady_clock::now();
  auto r = b->cache->get_or_load(kAlice, "k", [&] {
    ++loads;
    return std::string("own");
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, "own");
  EXPECT_EQ(loads, 1);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);
  EXPECT_EQ(b->tiers->stats().lease_waits, 1u);
  EXPECT_EQ(b->tiers->stats().lease_wait_hits, 0u);
}

}  // namespace coordination_test
}  // namespace callcache
