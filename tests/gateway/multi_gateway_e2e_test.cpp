// Three gateways sharing one real redis-server (tests/redis_fixture.h) in
// front of one FakeTelegram, as a deployment behind a load balancer runs
// them: one upstream call per key across the gateways, writes seen by every
// gateway's L1, Redis restarted mid-run, a gateway stopped, and pacing and
// 429 penalties shared through Redis. Each Gateway has its own engine, Redis
// connections and subscription, exactly as separate processes would.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "eventually.h"
#include "fake_telegram.h"
#include "gateway/app/gateway.h"
#include "redis_fixture.h"
#include "test_client.h"
#include "test_gateway_config.h"

namespace callcache::gateway {
namespace multi_gateway_e2e_test {

using namespace std::chrono_literals;
using callcache::testing::eventually;
using testing::loopback_redis_config;
using testing::TestClient;

const std::string kToken = "111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

std::string bot(const std::string& method) { return "/bot" + kToken + "/" + method; }

// The value of an unlabelled or labelled sample in a /metrics text, -1 if absent.
double metric(const std::string& text, const std::string& sample) {
  auto at = text.find("\n" + sample + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + sample.size() + 2));
}
class MultiGatewayTest : public callcache::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    spdlog::set_level(spdlog::level::warn);
    auto fake = FakeTelegram::start();
    ASSERT_TRUE(fake.ok()) << fake.status().to_string();
    fake_ = std::move(*fake);
  }
  void TearDown() override {
    for (auto& g : gateways_) {
      if (!g) continue;
      g->stop();
      EXPECT_EQ(g->wait(), 0);
    }
    gateways_.clear();
    fake_.reset();
    spdlog::set_level(spdlog::level::info);
    RedisTest::TearDown();
  }

  GatewayConfig config() {
    GatewayConfig c = loopback_redis_config(fake_->base_url(), redis_.url());
    c.telegram = YAML::Load("post_write_bypass: 0s");  // no bypass window: coherence only
    return c;
  }

  void start(int n, GatewayConfig c) {
    for (int i = 0; i < n; ++i) {
      auto g = Gateway::create(c);
      ASSERT_TRUE(g.ok()) << g.status().to_string();
      (*g)->start();
      gateways_.push_back(std::move(*g));
    }
    for (auto& g : gateways_) {
      ASSERT_TRUE(eventually([&] { return subscribed(*g); })) << "no subscription";
    }
  }

  std::string metrics(Gateway& g) { return TestClient(g.admin_port()).get("/metrics").body; }
  bool subscribed(Gateway& g) { return metric(metrics(g), "callcache_gateway_subscribed") == 1; }
  double remote_invalidations(Gateway& g) {
    return metric(metrics(g),
                  "callcache_gateway_coordination_total{event=\"remote_invalidation\"}");
  }

  std::unique_ptr<FakeTelegram> fake_;
  std::vector<std::unique_ptr<Gateway>> gateways_;
};

TEST_F(MultiGatewayTest, ConcurrentReadsOverThreeGatewaysMakeOneUpstreamCall) {
  start(3, config());
  fake_->set_method_latency("getChat", 300ms);  // long enough for all 30 to miss together
  std::atomic<int> ok{0};
  std::vector<std::string> bodies(30);
  std::vector<std::thread> threads;
  for (int i = 0; i < 30; ++i) {
    threads.emplace_back([&, i] {
      TestClient client(gateways_[i % 3]->port());
      auto r = client.get(bot("getChat?chat_id=-100777"));
      if (r.status == 200) ++ok;
      bodies[i] = r.body;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 30);
  for (const auto& b : bodies) EXPECT_EQ(b, bodies[0]);
  EXPECT_EQ(fake_->calls("getChat"), 1u);
  // One gateway led; each of the other two got the answer from the leader:
  // by waiting for its lease or, when its first request came after the
  // leader had finished (a slow machine), straight from Redis.
  int leaders = 0, followers = 0;
  for (auto& g : gateways_) {
    const std::string m = metrics(*g);
    const double waits =
        metric(m, "callcache_gateway_coordination_total{event=\"lease_wait_hit\"}");
    const double from_l2 = metric(m, "callcache_gateway_requests_total{outcome=\"l2_hit\"}");
    ++(waits + from_l2 > 0 ? followers : leaders);
  }
  EXPECT_EQ(leaders, 1);
  EXPECT_EQ(followers, 2);
}

TEST_F(MultiGatewayTest, AWriteThroughOneGatewayReachesTheOthersL1) {
  start(3, config());
  TestClient a(gateways_[0]->port()), b(gateways_[1]->port()), c(gateways_[2]->port());
  for (TestClient* cl : {&a, &b, &c})
    ASSERT_EQ(cl->get(bot("getChat?chat_id=-100500")).status, 200);
  EXPECT_EQ(b.get(bot("getChat?chat_id=-100500")).header("X-Callcache"), "hit");
  EXPECT_EQ(c.get(bot("getChat?chat_id=-100500")).header("X-Callcache"), "hit");
  EXPECT_EQ(fake_->calls("getChat"), 1u);

  auto set = a.post_json(bot("setChatTitle"), R"({"chat_id":-100500,"title":"Renamed"})");
  ASSERT_EQ(set.status, 200) << set.body;
  // The message reaches B and C within milliseconds (measured by
  // scripts/deploy/measure.py); wait for it, bounded, then read.
  for (int g : {1, 2}) {
    EXPECT_TRUE(eventually([&] { return remote_invalidations(*gateways_[g]) >= 1; }, 2s));
  }
  auto rb = b.get(bot("getChat?chat_id=-100500"));
  auto rc = c.get(bot("getChat?chat_id=-100500"));
  EXPECT_NE(rb.body.find("Renamed"), std::string::npos) << rb.body;
  EXPECT_NE(rc.body.find("Renamed"), std::string::npos) << rc.body;
  EXPECT_NE(rb.header("X-Callcache"), "hit");
}

TEST_F(MultiGatewayTest, RedisRestartedMidRunServesNoStaleAnswer) {
  start(3, config());
  TestClient a(gateways_[0]->port()), b(gateways_[1]->port());
  ASSERT_EQ(a.get(bot("getChat?chat_id=-100600")).status, 200);
  ASSERT_EQ(b.get(bot("getChat?chat_id=-100600")).status, 200);
  redis_.stop();
  // Every gateway notices at once (its subscription's connection fails) and
  // drops its L1: a write B cannot hear about is not served stale by B.
  for (auto& g : gateways_) EXPECT_TRUE(eventually([&] { return !subscribed(*g); }, 2s));
  ASSERT_EQ(a.post_json(bot("setChatTitle"), R"({"chat_id":-100600,"title":"During"})").status,
            200);
  auto during = b.get(bot("getChat?chat_id=-100600"));
  EXPECT_EQ(during.status, 200);
  EXPECT_NE(during.body.find("During"), std::string::npos) << during.body;

  ASSERT_EQ(redis_.restart(), "");
  for (auto& g : gateways_) EXPECT_TRUE(eventually([&] { return subscribed(*g); }, 5s));
  // Back: invalidations flow again.
  ASSERT_EQ(b.get(bot("getChat?chat_id=-100600")).status, 200);
  ASSERT_EQ(a.post_json(bot("setChatTitle"), R"({"chat_id":-100600,"title":"After"})").status, 200);
  EXPECT_TRUE(eventually(
      [&] { return b.get(bot("getChat?chat_id=-100600")).body.find("After") != std::string::npos; },
      2s));
}

TEST_F(MultiGatewayTest, TheOthersGoOnWhenOneGatewayStops) {
  start(3, config());
  TestClient b(gateways_[1]->port()), c(gateways_[2]->port());
  gateways_[0]->stop();
  EXPECT_EQ(gateways_[0]->wait(), 0);
  gateways_[0].reset();
  fake_->set_method_latency("getChat", 200ms);
  std::thread other([&] { EXPECT_EQ(c.get(bot("getChat?chat_id=-100900")).status, 200); });
  EXPECT_EQ(b.get(bot("getChat?chat_id=-100900")).status, 200);
  other.join();
  EXPECT_EQ(fake_->calls("getChat"), 1u);  // still one call between the two left
}

TEST_F(MultiGatewayTest, PacingAndPenaltiesAreSharedThroughRedis) {
  // Telegram allows about one message a second to one private chat; the fake
  // answers 429 to anything closer than 0.9 s.
  fake_->enforce_chat_interval(900ms);
  auto c = config();
  c.retry_429 = false;  // hand an upstream 429 to the client, so only the penalty holds B
  start(2, c);
  TestClient a(gateways_[0]->port()), b(gateways_[1]->port());
  auto send = [](TestClient& cl, int chat) {
    return cl.post_json(bot("sendMessage"),
                        R"({"chat_id":)" + std::to_string(chat) + R"(,"text":"hi"})");
  };
  auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(send(a, 4242).status, 200);
  ASSERT_EQ(send(b, 4242).status, 200);  // B waits for A's send: one budget per chat
  EXPECT_GE(std::chrono::steady_clock::now() - started, 900ms);
  EXPECT_EQ(fake_->answered_429(), 0u);

  // An upstream 429 through A penalises the chat in B too.
  FakeFault flood;
  flood.kind = FakeFault::Kind::kTooManyRequests;
  flood.retry_after = 2;
  fake_->fail_next("sendMessage", 1, flood);
  auto penalised = send(a, 5151);
  EXPECT_EQ(penalised.status, 429) << penalised.body;
  started = std::chrono::steady_clock::now();
  auto later = send(b, 5151);
  EXPECT_EQ(later.status, 200) << later.body;
  // Held by A's penalty (2 s), not just by the chat's pacing (1 s).
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1700ms);
}

}  // namespace multi_gateway_e2e_test
}  // namespace callcache::gateway
