// The dashboard's server side over real sockets: the page's files and /auth
// without the admin token, everything else with it; /stats/history filled by
// the sampling thread while requests run (its counts add up to the
// counters); per-rule pacing and per-tenant upstream calls in /stats and
// /metrics; no token anywhere. The page itself is tested in a browser
// (tests/dashboard/dashboard_test.mjs).
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "callcache/tenant.h"
#include "fake_telegram.h"
#include "gateway/app/gateway.h"
#include "test_client.h"
#include "test_gateway_config.h"

namespace callcache::gateway {
namespace dashboard_e2e_test {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::loopback_config;
using testing::TestClient;

const std::string kTokenA = "333333:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC";
const std::string kTokenB = "444444:DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD";
const std::string kAdminToken = "admin-secret-for-the-dashboard";

std::string bot(const std::string& token, const std::string& method) {
  return "/bot" + token + "/" + method;
}

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::err);
    auto fake = FakeTelegram::start();
    ASSERT_TRUE(fake.ok()) << fake.status().to_string();
    fake_ = std::move(*fake);
    GatewayConfig c = loopback_config(fake_->base_url());
    c.admin_token = kAdminToken;
    c.pacing_max_wait = 2500ms;
    auto g = Gateway::create(std::move(c));
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    gateway_ = std::move(*g);
    gateway_->start();
    client_ = std::make_unique<TestClient>(gateway_->port());
    admin_ = std::make_unique<TestClient>(gateway_->admin_port());
  }
  void TearDown() override {
    client_.reset();
    admin_.reset();
    if (gateway_) {
      gateway_->stop();
      EXPECT_EQ(gateway_->wait(), 0);
    }
  }

  HttpResponse admin_get(const std::string& target) {
    HttpRequest r;
    r.method = "GET";
    r.target = target;
    r.headers.push_back({"Authorization", "Bearer " + kAdminToken});
    return admin_->send(std::move(r));
  }

  std::unique_ptr<FakeTelegram> fake_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<TestClient> client_, admin_;
};

std::uint64_t sum(const json& column) {
  std::uint64_t n = 0;
  for (const auto& v : column) n += v.get<std::uint64_t>();
  return n;
}

TEST_F(DashboardTest, ThePageNeedsNoTokenItsDataDoes) {
  auto page = admin_->get("/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<html"), std::string::npos);
  EXPECT_NE(page.body.find("dashboard.js"), std::string::npos);
  EXPECT_NE(page.header("Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  auto js = admin_->get("/dashboard.js");
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(js.body.find("innerHTML"), std::string::npos);
  EXPECT_EQ(admin_->get("/dashboard.css").status, 200);
  auto chart = admin_->get("/chart.js");
  ASSERT_EQ(chart.status, 200);
  EXPECT_EQ(chart.body.find("innerHTML"), std::string::npos);
  EXPECT_EQ(admin_->get("/favicon.svg").content_type, "image/svg+xml");
  EXPECT_EQ(admin_->get("/auth").body, R"({"token_required":true})");
  EXPECT_EQ(admin_->get("/stats").status, 401);
  EXPECT_EQ(admin_->get("/stats/history").status, 401);
  EXPECT_EQ(admin_->get("/metrics").status, 401);
  EXPECT_EQ(admin_get("/stats/history").status, 200);
  auto bad = admin_get("/stats/history?window=1d");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("window: expected 5m or 1h, got '1d'"), std::string::npos) << bad.body;
}

TEST_F(DashboardTest, HistoryCountsWhatTheGatewayDid) {
  // Reads: one miss, four hits; bot B: one miss. Sends to one private chat:
  // 1/s, waits at most 2.5 s: of four at once, one goes at once, two wait,
  // one is refused.
  for (int i = 0; i < 5; ++i) client_->get(bot(kTokenA, "getChat?chat_id=-100123"));
  client_->get(bot(kTokenB, "getChat?chat_id=-100123"));
  std::vector<HttpRequest> sends;
  for (int i = 0; i < 4; ++i) {
    HttpRequest r;
    r.method = "POST";
    r.target = bot(kTokenA, "sendMessage");
    r.headers.push_back({"Content-Type", "application/json"});
    r.body = R"({"chat_id":4242,"text":"hi"})";
    sends.push_back(std::move(r));
  }
  auto answers = client_->send_all(std::move(sends));
  int refused = 0;
  for (const auto& a : answers) {
    if (a.status != 429) continue;
    ++refused;
    EXPECT_EQ(a.header("X-Callcache"), "rejected");  // refused by the gateway, not upstream
  }
  EXPECT_EQ(refused, 1);

  // The sampler records once a second: wait for a point after the traffic.
  json history;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  do {
    std::this_thread::sleep_for(200ms);
    auto h = admin_get("/stats/history?window=5m");
    ASSERT_EQ(h.status, 200) << h.body;
    history = json::parse(h.body);
  } while (sum(history["requests"]["paced"]) < 3 && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(history["resolution_s"], 1);
  EXPECT_GT(history["started_ms"].get<std::int64_t>(), 0);
  EXPECT_EQ(sum(history["requests"]["hit"]), 4u);
  EXPECT_EQ(sum(history["requests"]["miss"]), 2u);
  EXPECT_EQ(sum(history["requests"]["paced"]), 3u);
  EXPECT_EQ(sum(history["requests"]["rejected"]), 1u);
  EXPECT_EQ(sum(history["upstream"]["calls"]), 5u);  // 2 reads, 3 sends
  EXPECT_EQ(sum(history["served"]), 9u);
  EXPECT_EQ(sum(history["saved"]), 4u);
  EXPECT_EQ(sum(history["apis"]["telegram"]["hits"]), 4u);
  EXPECT_EQ(sum(history["apis"]["telegram"]["reads"]), 6u);
  EXPECT_EQ(sum(history["pacing"]["private_chat"]["waits"]), 2u);
  EXPECT_EQ(sum(history["pacing"]["private_chat"]["refused"]), 1u);
  EXPECT_EQ(sum(history["latency"]["getChat"]["calls"]), 2u);
  EXPECT_EQ(sum(history["latency"]["sendMessage"]["calls"]), 3u);
  EXPECT_EQ(sum(history["namespaces"]["tg_chat"]["hits"]), 4u);
  EXPECT_EQ(history["namespaces"]["tg_chat"]["entries"].back(), 2u);
  EXPECT_TRUE(history["l2"].is_null());

  auto stats = json::parse(admin_get("/stats").body);
  const json& g = stats["gateway"];
  EXPECT_EQ(g["pacing"]["rules"]["private_chat"]["waits"], 2u);
  EXPECT_EQ(g["pacing"]["rules"]["private_chat"]["refused"], 1u);
  EXPECT_GT(g["upstream"]["methods"]["getChat"]["p99_ms"].get<double>(), 0.0);
  // Tenants by upstream calls: bot A (1 read + 3 sends), then bot B.
  const json& top = g["tenants"]["top"];
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0]["tenant"], to_hex(tenant_from_secret(kTokenA)));
  EXPECT_EQ(top[0]["upstream_calls"], 4u);
  EXPECT_EQ(top[1]["tenant"], to_hex(tenant_from_secret(kTokenB)));
  EXPECT_EQ(top[1]["upstream_calls"], 1u);

  auto metrics = admin_get("/metrics").body;
  EXPECT_NE(metrics.find("callcache_gateway_pacing_rule_waits_total{rule=\"private_chat\"} 2"),
            std::string::npos);
  EXPECT_NE(metrics.find("callcache_gateway_pacing_rule_refused_total{rule=\"private_chat\"} 1"),
            std::string::npos);

  auto since = admin_get("/stats/history?window=5m&since=" +
                         std::to_string(history["now_ms"].get<std::int64_t>()));
  EXPECT_EQ(json::parse(since.body)["t"].size() <= 1, true);  // at most one newer point
  for (const auto& body :
       {admin_get("/stats/history?window=5m").body, admin_get("/stats/history?window=1h").body,
        admin_get("/stats").body, metrics}) {
    EXPECT_EQ(body.find(kTokenA), std::string::npos);
    EXPECT_EQ(body.find("CCCCCCCCCCCCCCCC"), std::string::npos);
    EXPECT_EQ(body.find(kAdminToken), std::string::npos);
  }
}

}  // namespace dashboard_e2e_test
}  // namespace callcache::gateway
