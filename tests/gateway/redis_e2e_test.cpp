// End-to-end tests of Redis as the gateway's L2 tier (storage.l2: redis):
// a real redis-server (tests/redis_fixture.h), FakeTelegram upstream, two
// Gateway instances sharing the server, and an HTTP client.
#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fake_json_api.h"
#include "fake_telegram.h"
#include "gateway/app/gateway.h"
#include "gateway/metrics.h"
#include "redis_fixture.h"
#include "test_client.h"
#include "test_gateway_config.h"

namespace callcache::gateway {
namespace redis_e2e_test {

using namespace std::chrono_literals;
using testing::loopback_redis_config;
using testing::TestClient;

const std::string kToken = "111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

std::string bot(const std::string& method) { return "/bot" + kToken + "/" + method; }

// Collects every log line of the default logger.
class CollectingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  std::size_t count(const std::string& needle) {
    std::size_t n = 0;
    for (const auto& l : lines()) n += l.find(needle) != std::string::npos;
    return n;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;  // guarded by mutex_ (base_sink's)
};

class GatewayRedisTest : public callcache::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    sink_ = std::make_shared<CollectingSink>();
    previous_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("test", sink_);
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::info);
    auto fake = FakeTelegram::start();
    ASSERT_TRUE(fake.ok()) << fake.status().to_string();
    fake_ = std::move(*fake);
  }
  void TearDown() override {
    for (auto& g : gateways_) {
      g->stop();
      EXPECT_EQ(g->wait(), 0);
    }
    gateways_.clear();
    fake_.reset();
    spdlog::set_default_logger(previous_);
    RedisTest::TearDown();
  }

  GatewayConfig config() {
    GatewayConfig c = loopback_redis_config(fake_->base_url(), redis_.url());
    c.telegram = YAML::Load("post_write_bypass: 0s");
    return c;
  }

  Gateway& start_gateway(GatewayConfig c) {
    auto g = Gateway::create(std::move(c));
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    if (!g.ok()) std::abort();
    (*g)->start();
    gateways_.push_back(std::move(*g));
    return *gateways_.back();
  }

  std::shared_ptr<CollectingSink> sink_;
  std::shared_ptr<spdlog::logger> previous_;
  std::unique_ptr<FakeTelegram> fake_;
  std::vector<std::unique_ptr<Gateway>> gateways_;
};

TEST_F(GatewayRedisTest, ASecondGatewaySharingRedisAnswersFromL2) {
  Gateway& a = start_gateway(config());
  Gateway& b = start_gateway(config());
  TestClient ca(a.port()), cb(b.port());
  auto first = ca.get(bot("getChat?chat_id=-100500"));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("X-Callcache"), "miss");

  auto shared = cb.get(bot("getChat?chat_id=-100500"));
  EXPECT_EQ(shared.status, 200);
  EXPECT_EQ(shared.header("X-Callcache"), "l2_hit");
  EXPECT_EQ(shared.body, first.body);
  EXPECT_EQ(fake_->calls("getChat"), 1u);
  EXPECT_EQ(cb.get(bot("getChat?chat_id=-100500")).header("X-Callcache"), "hit");  // promoted

  // A write through B drops the answer from B and from Redis (a tag marker):
  // a third gateway does not get the old answer from L2.
  auto set = cb.post_json(bot("setChatTitle"), R"({"chat_id":-100500,"title":"New"})");
  ASSERT_EQ(set.status, 200) << set.body;
  Gateway& c = start_gateway(config());
  TestClient cc(c.port());
  auto fresh = cc.get(bot("getChat?chat_id=-100500"));
  EXPECT_EQ(fresh.header("X-Callcache"), "miss");
  EXPECT_NE(fresh.body.find("New"), std::string::npos) << fresh.body;
  EXPECT_EQ(fake_->calls("getChat"), 2u);
  // ... and what C stored is an L2 hit for B.
  EXPECT_EQ(cb.get(bot("getChat?chat_id=-100500")).header("X-Callcache"), "l2_hit");
  EXPECT_EQ(fake_->calls("getChat"), 2u);

  TestClient admin(a.admin_port());
  auto ready = admin.get("/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_NE(ready.body.find(R"("l2":"ok")"), std::string::npos) << ready.body;
  auto stats = admin.get("/stats");
  EXPECT_NE(stats.body.find(R"("backend":"redis")"), std::string::npos) << stats.body;
}

// Waits until `count()` reaches `n` (5 s at most).
template <class F>
bool wait_for_count(F count, std::uint64_t n) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (count() < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  return count() >= n;
}

// A getChat in flight on gateway A while gateway B renames the chat: A's
// answer was decided before the write, so it must not reach the shared tier
// where B (and every other gateway) would find it.
TEST_F(GatewayRedisTest, AReadInFlightDuringAWriteElsewhereIsNotShared) {
  Gateway& a = start_gateway(config());
  Gateway& b = start_gateway(config());
  fake_->set_method_latency("getChat", 600ms);
  HttpResponse slow;
  std::thread reader([&] {
    TestClient ca(a.port());
    slow = ca.get(bot("getChat?chat_id=-100600"));
  });
  ASSERT_TRUE(wait_for_count([&] { return fake_->calls("getChat"); }, 1));
  TestClient cb(b.port());
  auto set = cb.post_json(bot("setChatTitle"), R"({"chat_id":-100600,"title":"Renamed"})");
  ASSERT_EQ(set.status, 200) << set.body;
  reader.join();
  ASSERT_EQ(slow.status, 200) << slow.body;
  EXPECT_NE(slow.body.find("Chat -100600"), std::string::npos) << slow.body;  // the old title
  fake_->set_method_latency("getChat", 0ms);
  auto after = cb.get(bot("getChat?chat_id=-100600"));
  EXPECT_NE(after.body.find("Renamed"), std::string::npos) << after.body;
  EXPECT_EQ(after.header("X-Callcache"), "miss");
}

// The same for a generic API whose writes invalidate by tag.
TEST_F(GatewayRedisTest, AGenericReadInFlightDuringAnInvalidationElsewhereIsNotShared) {
  testing::FakeJsonApiServer api;
  auto generic = [&] {
    auto parsed = parse_config(YAML::Load(R"(
namespaces:
  sns: {ttl: 5m, max_entries: 1000}
apis:
  - name: sns
    prefix: /sns
    upstream: http://127.0.0.1:)" + std::to_string(api.port()) +
                                          R"(/v1
    rules:
      - match: GET /templates/{id}
        name: template
        namespace: sns
        key: [query.lang]
      - match: POST /templates/{id}
        invalidates: [template]
)"));
    EXPECT_TRUE(parsed.ok()) << parsed.status().to_string();
    GatewayConfig c = config();
    c.namespaces = parsed->namespaces;
    c.apis = parsed->apis;
    return c;
  };
  Gateway& a = start_gateway(generic());
  Gateway& b = start_gateway(generic());
  api.api().set_method_latency("GET", 600ms);
  HttpResponse slow;
  std::thread reader([&] {
    TestClient ca(a.port());
    slow = ca.get("/sns/templates/7");
  });
  ASSERT_TRUE(wait_for_count([&] { return api.api().calls("GET /templates/7"); }, 1));
  TestClient cb(b.port());
  HttpRequest post;
  post.method = "POST";
  post.target = "/sns/templates/7";
  auto written = cb.send(std::move(post));
  ASSERT_EQ(written.status, 200) << written.body;
  reader.join();
  ASSERT_EQ(slow.status, 200) << slow.body;
  EXPECT_NE(slow.body.find(R"("version":0)"), std::string::npos) << slow.body;
  api.api().set_method_latency("GET", 0ms);
  auto after = cb.get("/sns/templates/7");
  EXPECT_NE(after.body.find(R"("version":1)"), std::string::npos) << after.body;
  EXPECT_EQ(after.header("X-Callcache"), "miss");
}

TEST_F(GatewayRedisTest, RedisDownKeepsServingFromUpstreamAndSaysSoOnce) {
  Gateway& g = start_gateway(config());
  TestClient client(g.port());
  ASSERT_EQ(client.get(bot("getChat?chat_id=1")).header("X-Callcache"), "miss");
  redis_.stop();  // SIGKILL: connections drop, nothing listens any more

  for (int i = 0; i < 20; ++i) {
    auto r = client.get(bot("getChat?chat_id=" + std::to_string(100 + i)));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("X-Callcache"), "miss");
    // Writes reach the tier too (put, tag markers): still answered.
    ASSERT_EQ(client
                  .post_json(bot("setChatTitle"),
                             R"({"chat_id":)" + std::to_string(100 + i) + R"(,"title":"t"})")
                  .status,
              200);
  }
  // The invalidation subscription went down with Redis: L1 was dropped (an
  // invalidation from another gateway could have been missed).
  EXPECT_EQ(client.get(bot("getChat?chat_id=1")).header("X-Callcache"), "miss");
  EXPECT_EQ(fake_->calls("getChat"), 22u);
  EXPECT_GT(g.metrics().tier_errors(), 0u);
  EXPECT_EQ(sink_->count("L2 tier 'redis' is failing"), 1u);
  for (const auto& line : sink_->lines()) {
    EXPECT_EQ(line.find("L2 redis"), std::string::npos) << "per-call tier error logged: " << line;
  }
  TestClient admin(g.admin_port());
  auto ready = admin.get("/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_NE(ready.body.find(R"("l2":"degraded")"), std::string::npos) << ready.body;

  // Back up: the outage ends (logged once) and answers are shared again.
  ASSERT_EQ(redis_.restart(), "");
  auto deadline = std::chrono::steady_clock::now() + 60s;
  int n = 0;
  while (sink_->count("recovered") == 0 && std::chrono::steady_clock::now() < deadline) {
    client.get(bot("getChat?chat_id=" + std::to_string(1000 + n++)));
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(sink_->count("recovered"), 1u);
  EXPECT_EQ(sink_->count("L2 tier 'redis' is failing"), 1u);
}

TEST_F(GatewayRedisTest, BadStorageSettingsAreStartErrorsNamingTheKeys) {
  auto c = config();
  c.storage.redis_password_env = "CALLCACHE_TEST_UNSET_VARIABLE_42";
  auto g = Gateway::create(c);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("storage.redis_password_env"), std::string::npos)
      << g.status().message();
  EXPECT_NE(g.status().message().find("CALLCACHE_TEST_UNSET_VARIABLE_42"), std::string::npos);

  auto s = config();
  s.storage.l2 = tiers::L2Kind::kSqlite;
  s.storage.path = "/proc/callcache-cannot-create/x.sqlite3";
  auto g2 = Gateway::create(s);
  ASSERT_FALSE(g2.ok());
  EXPECT_TRUE(g2.status().message().starts_with("storage.path: ")) << g2.status().message();
}

}  // namespace redis_e2e_test
}  // namespace callcache::gateway
