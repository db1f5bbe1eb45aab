// The Redis tier against a real redis-server (label "redis").
#include "callcache/redis_backend.h"

#include <gtest/gtest.h>

#include <thread>

#include "callcache/degrading_backend.h"
#include "callcache/tiered_cache.h"
#include "redis_fixture.h"
#include "redis_pool.h"

namespace callcache {
namespace redis_backend_test {

using namespace std::chrono_literals;

const TenantId kAlice = tenant_from_name("alice");
const TenantId kBob = tenant_from_name("bob");

class RedisBackendTest : public testing::RedisTest {
 protected:
  RedisOptions options() {
    RedisOptions o;
    EXPECT_TRUE(parse_redis_url(redis_.url(), o).ok());
    o.connect_timeout = 500ms;
    o.command_timeout = 500ms;
    return o;
  }
  std::unique_ptr<Backend> open(RedisOptions o) {
    auto r = open_redis_backend(std::move(o));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return std::move(*r);
  }
  // A raw connection to inspect the server.
  tiers::RedisPool& raw() {
    if (!raw_) raw_ = std::make_unique<tiers::RedisPool>(options());
    return *raw_;
  }
  std::string raw_string(std::vector<std::string_view> args) {
    auto r = raw().command(args);
    if (!r.ok()) return "error: " + r.status().to_string();
    const redisReply* rep = r->get();
    if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS) {
      return std::string(rep->str, rep->len);
    }
    if (rep->type == REDIS_REPLY_INTEGER) return std::to_string(rep->integer);
    if (rep->type == REDIS_REPLY_NIL) return "nil";
    return "?";
  }

  std::unique_ptr<tiers::RedisPool> raw_;
};

TEST_F(RedisBackendTest, PutGetUsesTheDocumentedKeyLayoutAndNativeExpiry) {
  auto b = open(options());
  EXPECT_EQ(b->name(), "redis");
  ASSERT_TRUE(b->health().ok());
  ASSERT_TRUE(b->put({"entity", kAlice, "user:1"}, "alice", 10s).ok());
  auto v = b->get({"entity", kAlice, "user:1"});
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ((*v)->bytes, "alice");
  EXPECT_GT((*v)->ttl_left, 9s);
  EXPECT_LE((*v)->ttl_left, 10s);
  EXPECT_FALSE(b->get({"entity", kBob, "user:1"})->has_value());

  std::string key = "cc:entity:v0:" + to_hex(kAlice) + ":user:1";
  EXPECT_EQ(raw_string({"GET", key}), "alice");
  auto pttl = std::stoll(raw_string({"PTTL", key}));
  EXPECT_GT(pttl, 9000);
  EXPECT_LE(pttl, 10000);
  EXPECT_EQ(raw_string({"SISMEMBER", "cc::tenant:" + to_hex(kAlice), key}), "1");
  auto st = b->stats();
  EXPECT_EQ(st.gets, 2u);
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.puts, 1u);
}

TEST_F(RedisBackendTest, BatchesAreBinarySafe) {
  auto b = open(options());
  std::string k1("a\0b", 3), v1("\0\xff\x01", 3);
  std::vector<BackendItem> items = {{{"msg", kAlice, k1}, v1, 1h},
                                    {{"msg", kAlice, "two"}, "2", 1h},
                                    {{"msg", kBob, "three"}, "3", 1h}};
  ASSERT_TRUE(b->put_many(items).ok());
  std::vector<BackendKey> keys = {
      {"msg", kAlice, k1}, {"msg", kAlice, "missing"}, {"msg", kAlice, "two"}, {"msg", kBob, "three"}};
  auto r = b->get_many(keys);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0]->bytes, v1);
  EXPECT_FALSE((*r)[1].has_value());
  EXPECT_EQ((*r)[2]->bytes, "2");
  EXPECT_EQ((*r)[3]->bytes, "3");
  EXPECT_TRUE(b->get_many({})->empty());
}

TEST_F(RedisBackendTest, EraseNamespaceIncrementsTheVersion) {
  auto b = open(options());
  ASSERT_TRUE(b->put({"entity", kAlice, "a"}, "1", 1h).ok());
  ASSERT_TRUE(b->put({"message", kAlice, "m"}, "2", 1h).ok());
  ASSERT_TRUE(b->erase_namespace("entity").ok());
  EXPECT_EQ(raw_string({"GET", "cc:entity:version"}), "1");
  EXPECT_FALSE(b->get({"entity", kAlice, "a"})->has_value());
  EXPECT_TRUE(b->get({"message", kAlice, "m"})->has_value());
  ASSERT_TRUE(b->put({"entity", kAlice, "a"}, "new", 1h).ok());
  EXPECT_EQ((*b->get({"entity", kAlice, "a"}))->bytes, "new");
  EXPECT_EQ(raw_string({"GET", "cc:entity:v1:" + to_hex(kAlice) + ":a"}), "new");
  // A second process (another backend, other connections) sees the same version.
  auto other = open(options());
  EXPECT_EQ((*other->get({"entity", kAlice, "a"}))->bytes, "new");
  ASSERT_TRUE(other->erase_namespace("entity").ok());
  EXPECT_FALSE(b->get({"entity", kAlice, "a"})->has_value());
}

TEST_F(RedisBackendTest, EraseAndEraseTenant) {
  auto b = open(options());
  for (int i = 0; i < 1200; ++i) {  // more than one SPOP chunk
    ASSERT_TRUE(b->put({"entity", kAlice, "k" + std::to_string(i)}, "v", 1h).ok());
  }
  ASSERT_TRUE(b->put({"entity", kBob, "k1"}, "bob", 1h).ok());
  ASSERT_TRUE(b->erase({"entity", kAlice, "k0"}).ok());
  EXPECT_FALSE(b->get({"entity", kAlice, "k0"})->has_value());
  EXPECT_TRUE(b->get({"entity", kAlice, "k1"})->has_value());
  ASSERT_TRUE(b->erase_tenant(kAlice).ok());
  EXPECT_FALSE(b->get({"entity", kAlice, "k1"})->has_value());
  EXPECT_FALSE(b->get({"entity", kAlice, "k1199"})->has_value());
  EXPECT_EQ(raw_string({"EXISTS", "cc::tenant:" + to_hex(kAlice)}), "0");
  EXPECT_EQ((*b->get({"entity", kBob, "k1"}))->bytes, "bob");
  EXPECT_EQ(raw_string({"DBSIZE"}), "2");  // bob's value and bob's index
}

TEST_F(RedisBackendTest, PurgeDropsIndexMembersOfExpiredValues) {
  auto b = open(options());
  ASSERT_TRUE(b->put({"entity", kAlice, "a"}, "1", 1h).ok());
  ASSERT_TRUE(b->put({"entity", kAlice, "b"}, "2", 1h).ok());
  // Simulate expiry of one value (Redis time cannot be advanced).
  std::string key = "cc:entity:v0:" + to_hex(kAlice) + ":a";
  EXPECT_EQ(raw_string({"DEL", key}), "1");
  auto n = b->purge_expired();
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(raw_string({"SCARD", "cc::tenant:" + to_hex(kAlice)}), "1");
  EXPECT_EQ(b->stats().purged, 1u);
}

TEST_F(RedisBackendTest, RejectsBadArguments) {
  auto b = open(options());
  EXPECT_EQ(b->put({"a:b", kAlice, "k"}, "v", 1s).code(), Code::kInvalidArgument);
  EXPECT_EQ(b->put({"ns", kAlice, ""}, "v", 1s).code(), Code::kInvalidArgument);
  EXPECT_EQ(b->put({"ns", kAlice, "k"}, "v", 0s).code(), Code::kInvalidArgument);
  RedisOptions o = options();
  o.pool_size = 0;
  EXPECT_EQ(open_redis_backend(o).status().code(), Code::kInvalidArgument);
}

TEST_F(RedisBackendTest, PasswordIsSentWithAuth) {
  ASSERT_EQ(raw_string({"CONFIG", "SET", "requirepass", "s3cret"}), "OK");
  auto anonymous = open(options());
  Status s = anonymous->put({"ns", kAlice, "k"}, "v", 1h);
  EXPECT_FALSE(s.ok());
  RedisOptions o = options();
  o.password = "s3cret";
  auto authed = open(o);
  EXPECT_TRUE(authed->put({"ns", kAlice, "k"}, "v", 1h).ok());
  EXPECT_TRUE(authed->get({"ns", kAlice, "k"})->has_value());
  o.password = "wrong";
  auto wrong = open(o);
  Status w = wrong->health();
  EXPECT_EQ(w.code(), Code::kUnavailable);
  EXPECT_EQ(w.message().find("wrong"), std::string::npos) << "the password leaked: " << w.message();
}

TEST_F(RedisBackendTest, SlowServerTimesOut) {
  RedisOptions o = options();
  o.command_timeout = 100ms;
  auto b = open(o);
  ASSERT_TRUE(b->health().ok());
  // Pause every client's commands for 1.5 s: our next command must give up.
  ASSERT_EQ(raw_string({"CLIENT", "PAUSE", "1500", "ALL"}), "OK");
  auto start = std::chrono::steady_clock::now();
  auto r = b->get({"ns", kAlice, "k"});
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTimeout) << r.status().to_string();
  EXPECT_LT(took, 1s);
  (void)raw_string({"CLIENT", "UNPAUSE"});
}

TEST_F(RedisBackendTest, DownServerIsUnavailableAndReconnectsAfterRestart) {
  auto b = open(options());
  ASSERT_TRUE(b->put({"ns", kAlice, "k"}, "v", 1h).ok());
  redis_.stop();
  auto r = b->get({"ns", kAlice, "k"});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == Code::kUnavailable || r.status().code() == Code::kTimeout)
      << r.status().to_string();
  EXPECT_EQ(b->health().code(), Code::kUnavailable);
  ASSERT_EQ(redis_.restart(), "");
  // Fresh server (nothing saved), fresh script cache: EVALSHA must recover.
  ASSERT_TRUE(b->health().ok());
  EXPECT_FALSE(b->get({"ns", kAlice, "k"})->has_value());
  ASSERT_TRUE(b->put({"ns", kAlice, "k"}, "again", 1h).ok());
  EXPECT_EQ((*b->get({"ns", kAlice, "k"}))->bytes, "again");
}

TEST_F(RedisBackendTest, DegradingWrapperLogsOncePerOutageAndRecovers) {
  ManualClock clock;
  std::vector<std::string> lines;
  DegradeOptions d;
  d.clock = &clock;
  d.initial_backoff = 1s;
  d.log = [&](TierLogLevel, std::string_view m) { lines.emplace_back(m); };
  DegradingBackend b(open(options()), d);
  ASSERT_TRUE(b.put({"ns", kAlice, "k"}, "v", 1h).ok());
  redis_.stop();
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(b.get({"ns", kAlice, "k"}).ok());
  EXPECT_EQ(lines.size(), 1u);
  auto ds = b.degrade_stats();
  EXPECT_TRUE(ds.down);
  EXPECT_EQ(ds.errors, 1u);    // only the first call reached the network
  EXPECT_EQ(ds.skipped, 49u);  // the rest were answered at once
  ASSERT_EQ(redis_.restart(), "");
  EXPECT_FALSE(b.get({"ns", kAlice, "k"}).ok());  // still in backoff: not even tried
  clock.advance(1s);
  auto r = b.get({"ns", kAlice, "k"});  // the probe
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(b.degrade_stats().down);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("failing"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("recovered"), std::string::npos) << lines[1];
  EXPECT_TRUE(b.put({"ns", kAlice, "k"}, "v2", 1h).ok());
}

TEST_F(RedisBackendTest, TieredReadsAndLoadsSurviveARedisKillAndRecover) {
  ManualClock clock;
  EngineOptions eo;
  NamespacePolicy p;
  p.ttl = 60s;
  eo.namespaces = {{"entity", p}};
  eo.clock = &clock;
  eo.sweep_interval = Duration::zero();
  auto engine = Engine::create(eo).value();
  std::vector<std::string> lines;
  DegradeOptions d;
  d.clock = &clock;
  d.initial_backoff = 1s;
  d.log = [&](TierLogLevel, std::string_view m) { lines.emplace_back(m); };
  DegradingBackend l2(open(options()), d);
  TieredCache<std::string> c(Cache<std::string>::open(*engine, "entity").value(), &l2);
  int loads = 0;
  auto loader = [&loads](std::string v) {
    return [&loads, v] {
      ++loads;
      return v;
    };
  };
  ASSERT_EQ(**c.get_or_load(kAlice, "before", loader("b")), "b");
  EXPECT_EQ(c.stats().l2_writes, 1u);

  redis_.stop();  // mid-run
  // L1 keeps serving what it has; misses go to the loader; nothing fails.
  EXPECT_EQ(**c.get_or_load(kAlice, "before", loader("x")), "b");
  for (int i = 0; i < 20; ++i) {
    auto r = c.get_or_load(kAlice, "during" + std::to_string(i), loader("d"));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }
  EXPECT_EQ(loads, 21);
  EXPECT_EQ(lines.size(), 1u);  // logged once for the outage
  EXPECT_EQ(l2.degrade_stats().errors, 1u) << "calls in backoff touched the network";

  ASSERT_EQ(redis_.restart(), "");
  clock.advance(1s);  // backoff over: the next L2 call probes
  ASSERT_TRUE(c.get_or_load(kAlice, "after", loader("a")).ok());
  EXPECT_FALSE(l2.degrade_stats().down);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[1].find("recovered"), std::string::npos);
  // Written through again: another process finds it without loading.
  auto other = open(options());
  auto other_engine = Engine::create(eo).value();
  TieredCache<std::string> o(Cache<std::string>::open(*other_engine, "entity").value(),
                             other.get());
  ASSERT_EQ(**o.get_or_load(kAlice, "after", loader("not loaded")), "a");
  EXPECT_EQ(loads, 22);
  EXPECT_EQ(o.stats().l2_hits, 1u);
}

}  // namespace redis_backend_test
}  // namespace callcache
