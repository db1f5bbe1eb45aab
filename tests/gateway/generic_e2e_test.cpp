// End-to-end tests of the generic JSON API front (config `apis:`) over real
// sockets: a fake SNS-like JSON API built on the gateway's own HttpServer
// (a counting HttpHandler), a FakeTelegram for the Bot API routes, the
// Gateway in process, and an HTTP client.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "fake_json_api.h"
#include "fake_telegram.h"
#include "gateway/app/gateway.h"
#include "gateway/logic/request.h"
#include "gateway/metrics.h"
#include "gateway/net/server.h"
#include "test_client.h"
#include "test_gateway_config.h"

namespace callcache::gateway {
namespace generic_e2e_test {

namespace net = boost::asio;
using namespace std::chrono_literals;
using testing::FakeJsonApi;
using testing::FakeJsonApiServer;
using testing::TestClient;
using testing::use_loopback;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "callcache-gen-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const std::string kToken = "111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

// The API section of the tests' config; PORT is replaced by the fake's.
constexpr const char* kSnsConfig = R"(
namespaces:
  sns: {ttl: 5m, max_entries: 1000}
  sns_feed: {ttl: 1s, stale_ttl: 1m, max_entries: 100}
apis:
  - name: sns
    prefix: /sns
    upstream: http://127.0.0.1:PORT/v1
    rules:
      - match: GET /templates/{id}
        name: template
        namespace: sns
        key: [query.lang]
      - match: GET /templates
        name: templates
        namespace: sns
        key: [query.*]
      - match: GET /private/{id}
        name: private
        namespace: sns
        tenant: [header.x-api-key]
      - match: GET /feed/{id}
        name: feed
        namespace: sns_feed
      - match: GET /uncached/{id}
        cache: false
      - match: POST /templates/{id}
        invalidates: [template, templates]
)";

class GenericApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::err);
    fake_ = std::make_unique<FakeJsonApiServer>();
    auto tg = FakeTelegram::start();
    ASSERT_TRUE(tg.ok()) << tg.status().to_string();
    telegram_ = std::move(*tg);
  }
  void TearDown() override {
    stop_gateway();
    fake_.reset();
    telegram_.reset();
  }

  FakeJsonApi& api() { return fake_->api(); }

  static std::string with_port(std::string yaml, std::uint16_t port) {
    std::size_t at = yaml.find("PORT");
    if (at != std::string::npos) yaml.replace(at, 4, std::to_string(port));
    return yaml;
  }

  GatewayConfig config(const std::string& yaml = kSnsConfig) {
    auto parsed = parse_config(YAML::Load(with_port(yaml, fake_->port())));
    EXPECT_TRUE(parsed.ok()) << parsed.status().to_string();
    GatewayConfig c = parsed.ok() ? std::move(*parsed) : GatewayConfig{};
    use_loopback(c, telegram_->base_url());
    return c;
  }

  void start_gateway(GatewayConfig c) {
    auto g = Gateway::create(std::move(c));
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    gateway_ = std::move(*g);
    gateway_->start();
    client_ = std::make_unique<TestClient>(gateway_->port());
  }

  void stop_gateway() {
    client_.reset();
    if (gateway_) {
      gateway_->stop();
      EXPECT_EQ(gateway_->wait(), 0);
      gateway_.reset();
    }
  }

  HttpResponse get(const std::string& target, std::vector<Header> headers = {}) {
    HttpRequest r;
    r.method = "GET";
    r.target = target;
    r.headers = std::move(headers);
    return client_->send(std::move(r));
  }

  std::unique_ptr<FakeJsonApiServer> fake_;
  std::unique_ptr<FakeTelegram> telegram_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<TestClient> client_;
};

TEST_F(GenericApiTest, RepeatedGetCallsUpstreamOnceAndRelaysTypeAndHeaders) {
  start_gateway(config());
  auto first = get("/sns/templates/1");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("X-Callcache"), "miss");
  EXPECT_EQ(first.content_type, "application/json; charset=utf-8");
  EXPECT_EQ(first.header("ETag"), "\"t1v0\"");
  EXPECT_EQ(first.header("Set-Cookie"), "");  // never part of a cached answer
  EXPECT_EQ(first.header("X-Upstream-Debug"), "");
  EXPECT_NE(first.body.find(R"("id":"1")"), std::string::npos) << first.body;
  // The prefix is stripped and the upstream's base path prepended.
  EXPECT_EQ(api().last_target(), "/v1/templates/1");
  for (int i = 0; i < 5; ++i) {
    auto again = get("/sns/templates/1");
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(again.header("X-Callcache"), "hit");
    EXPECT_EQ(again.body, first.body);
    EXPECT_EQ(again.content_type, first.content_type);
    EXPECT_EQ(again.header("ETag"), "\"t1v0\"");
  }
  EXPECT_EQ(api().calls("GET /templates/1"), 1u);
  EXPECT_EQ(gateway_->metrics().outcome(Outcome::kHit), 5u);
}

TEST_F(GenericApiTest, PathParametersAndQueryKeysAreSeparateEntries) {
  start_gateway(config());
  auto one = get("/sns/templates/1");
  auto two = get("/sns/templates/2");
  EXPECT_NE(one.body, two.body);
  EXPECT_EQ(api().calls("GET /templates/1"), 1u);
  EXPECT_EQ(api().calls("GET /templates/2"), 1u);
  // key: [query.lang] — lang matters, other parameters do not.
  auto en = get("/sns/templates/1?lang=en");
  auto de = get("/sns/templates/1?lang=de");
  EXPECT_NE(en.body.find(R"("lang":"en")"), std::string::npos) << en.body;
  EXPECT_NE(de.body.find(R"("lang":"de")"), std::string::npos) << de.body;
  EXPECT_EQ(api().calls("GET /templates/1"), 3u);
  EXPECT_EQ(get("/sns/templates/1?lang=en&utm=mail").body, en.body);
  EXPECT_EQ(get("/sns/templates/1?lang=%65n").body, en.body);  // "%65" is "e"
  EXPECT_EQ(api().calls("GET /templates/1"), 3u);
  // key: [query.*] — every parameter, in any order.
  auto p1 = get("/sns/templates?page=1&size=10");
  EXPECT_EQ(p1.header("X-Callcache"), "miss");
  auto p1b = get("/sns/templates?size=10&page=1");
  EXPECT_EQ(p1b.header("X-Callcache"), "hit");
  EXPECT_EQ(p1b.body, p1.body);
  auto p2 = get("/sns/templates?page=2&size=10");
  EXPECT_EQ(p2.header("X-Callcache"), "miss");
  EXPECT_EQ(api().calls("GET /templates"), 2u);
}

TEST_F(GenericApiTest, TenantHeaderIsolatesCallersAndItsAbsenceIsNotCached) {
  start_gateway(config());
  auto alice = get("/sns/private/7", {{"X-Api-Key", "alice-key"}});
  auto bob = get("/sns/private/7", {{"X-Api-Key", "bob-key"}});
  ASSERT_EQ(alice.status, 200);
  EXPECT_EQ(alice.header("X-Callcache"), "miss");
  EXPECT_EQ(bob.header("X-Callcache"), "miss");
  EXPECT_NE(alice.body.find("alice-key"), std::string::npos) << alice.body;
  EXPECT_NE(bob.body.find("bob-key"), std::string::npos) << bob.body;
  auto alice2 = get("/sns/private/7", {{"x-api-key", "alice-key"}});
  auto bob2 = get("/sns/private/7", {{"X-API-KEY", "bob-key"}});
  EXPECT_EQ(alice2.header("X-Callcache"), "hit");
  EXPECT_EQ(alice2.body, alice.body);
  EXPECT_EQ(bob2.header("X-Callcache"), "hit");
  EXPECT_EQ(bob2.body, bob.body);
  EXPECT_EQ(api().calls("GET /private/7"), 2u);
  // No tenant header: forwarded, never cached, never shared.
  auto anon1 = get("/sns/private/7");
  auto anon2 = get("/sns/private/7");
  EXPECT_EQ(anon1.header("X-Callcache"), "pass");
  EXPECT_EQ(anon2.header("X-Callcache"), "pass");
  EXPECT_EQ(anon1.body.find("alice"), std::string::npos);
  EXPECT_EQ(api().calls("GET /private/7"), 4u);
}

TEST_F(GenericApiTest, WriteInvalidatesTheTemplateAndEveryList) {
  start_gateway(config());
  auto t1 = get("/sns/templates/1");
  get("/sns/templates/2");
  auto list = get("/sns/templates?page=1");
  EXPECT_NE(t1.body.find(R"("version":0)"), std::string::npos);
  HttpRequest post;
  post.method = "POST";
  post.target = "/sns/templates/1";
  post.headers.push_back({"Content-Type", "application/json"});
  post.body = R"({"name":"renamed"})";
  auto w = client_->send(post);
  ASSERT_EQ(w.status, 200) << w.body;
  EXPECT_EQ(w.header("X-Callcache"), "pass");
  EXPECT_EQ(api().calls("POST /templates/1"), 1u);

  auto t1b = get("/sns/templates/1");
  EXPECT_EQ(t1b.header("X-Callcache"), "miss");
  EXPECT_NE(t1b.body.find(R"("version":1)"), std::string::npos) << t1b.body;
  auto listb = get("/sns/templates?page=1");
  EXPECT_EQ(listb.header("X-Callcache"), "miss");
  EXPECT_NE(listb.body, list.body);
  // Another template is not touched by a write of template 1.
  EXPECT_EQ(get("/sns/templates/2").header("X-Callcache"), "hit");
  EXPECT_EQ(api().calls("GET /templates/1"), 2u);
  EXPECT_EQ(api().calls("GET /templates"), 2u);
}

TEST_F(GenericApiTest, CacheFalseUnmatchedPathsAndBodiesPassThrough) {
  start_gateway(config());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(get("/sns/uncached/1").header("X-Callcache"), "pass");
    EXPECT_EQ(get("/sns/nothing/matches/this?x=1").header("X-Callcache"), "pass");
  }
  EXPECT_EQ(api().calls("GET /uncached/1"), 2u);
  EXPECT_EQ(api().calls("GET /nothing/matches/this"), 2u);
  EXPECT_EQ(api().last_target(), "/v1/nothing/matches/this?x=1");
  // A GET with a body is not cached (the rules cannot key on bodies).
  HttpRequest with_body;
  with_body.method = "GET";
  with_body.target = "/sns/templates/9";
  with_body.headers.push_back({"Content-Type", "application/json"});
  with_body.body = R"({"filter":1})";
  EXPECT_EQ(client_->send(with_body).header("X-Callcache"), "pass");
  EXPECT_EQ(client_->send(with_body).header("X-Callcache"), "pass");
  EXPECT_EQ(api().calls("GET /templates/9"), 2u);
  // The bare prefix is the API's root.
  EXPECT_EQ(get("/sns").status, 200);
  EXPECT_EQ(api().last_target(), "/v1/");
}

TEST_F(GenericApiTest, RouterSendsBotApiAndUnknownPathsWhereTheyBelong) {
  start_gateway(config());
  auto me = get("/bot" + kToken + "/getMe");
  EXPECT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(telegram_->calls("getMe"), 1u);
  auto file = get("/file/bot" + kToken + "/documents/a.txt");
  EXPECT_EQ(file.status, 200);
  for (std::string target : {"/", "/snsx/templates/1", "/other", "/favicon.ico"}) {
    auto r = get(target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_NE(r.body.find(R"("ok":false)"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("/sns/..."), std::string::npos) << r.body;
  }
  EXPECT_EQ(api().total(), 0u);
}

// What the server refuses itself (a declared body over server.max_body_bytes,
// ambiguous framing) is answered in the shape of the front the request was
// for: {"error":...} under a generic API's prefix, the Bot API's elsewhere.
TEST_F(GenericApiTest, ServerRefusalsTakeTheShapeOfTheFrontTheRequestWasFor) {
  GatewayConfig c = config();
  c.max_body_bytes = 1024;
  start_gateway(std::move(c));
  auto body_of = [](const std::string& reply) {
    const std::size_t at = reply.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : reply.substr(at + 4);
  };
  const std::string too_big =
      " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 5000\r\n\r\n";
  std::string generic = client_->raw("POST /sns/templates" + too_big);
  ASSERT_TRUE(generic.starts_with("HTTP/1.1 413 ")) << generic;
  EXPECT_EQ(body_of(generic), R"({"error":"Request Entity Too Large: body over 1024 bytes"})");
  std::string bot = client_->raw("POST /bot" + kToken + "/sendMessage" + too_big);
  ASSERT_TRUE(bot.starts_with("HTTP/1.1 413 ")) << bot;
  EXPECT_EQ(body_of(bot), R"({"ok":false,"error_code":413,)"
                          R"("description":"Request Entity Too Large: body over 1024 bytes"})");
  std::string folded =
      client_->raw("GET /sns/templates/1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n");
  ASSERT_TRUE(folded.starts_with("HTTP/1.1 400 ")) << folded;
  EXPECT_TRUE(body_of(folded).starts_with(R"({"error":"Bad Request: )")) << folded;
  EXPECT_EQ(api().total(), 0u);
  EXPECT_EQ(telegram_->calls("sendMessage"), 0u);
}

TEST_F(GenericApiTest, ConcurrentIdenticalGetsCoalesceIntoOneUpstreamCall) {
  api().set_latency(300ms);
  start_gateway(config());
  std::vector<HttpRequest> requests;
  for (int i = 0; i < 30; ++i) {
    HttpRequest r;
    r.method = "GET";
    r.target = i % 2 ? "/sns/templates?b=2&a=1" : "/sns/templates?a=1&b=2";
    requests.push_back(std::move(r));
  }
  auto answers = client_->send_all(std::move(requests));
  int coalesced = 0;
  for (const auto& a : answers) {
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.body, answers[0].body);
    EXPECT_EQ(a.content_type, "application/json; charset=utf-8");
    coalesced += a.header("X-Callcache") == "coalesced";
  }
  EXPECT_EQ(api().calls("GET /templates"), 1u);
  EXPECT_GT(coalesced, 0);
}

TEST_F(GenericApiTest, Non200AnswersAreRelayedNotCached) {
  start_gateway(config());
  for (int i = 0; i < 2; ++i) {
    auto r = get("/sns/templates/404");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.body, R"({"error":"not found"})");
    EXPECT_EQ(r.header("X-Callcache"), "miss");
  }
  EXPECT_EQ(api().calls("GET /templates/404"), 2u);
  // A redirect keeps its Location; a Set-Cookie never reaches a cached read.
  auto moved = get("/sns/templates/301");
  EXPECT_EQ(moved.status, 301);
  EXPECT_EQ(moved.header("Location"), "/v1/templates/1");
  EXPECT_EQ(moved.header("Set-Cookie"), "");
  EXPECT_EQ(get("/sns/templates/301").status, 301);
  EXPECT_EQ(api().calls("GET /templates/301"), 2u);
  // Passthrough answers are relayed with every end-to-end header.
  auto pass = get("/sns/uncached/1");
  EXPECT_EQ(pass.status, 200);
  EXPECT_EQ(pass.header("X-Upstream-Debug"), "fake");
  auto boom = get("/sns/templates/500");
  EXPECT_EQ(boom.status, 500);
  EXPECT_EQ(get("/sns/templates/500").status, 500);
  EXPECT_EQ(api().calls("GET /templates/500"), 2u);
}

TEST_F(GenericApiTest, ConditionalHeadersAreNotForwardedOnCachedReads) {
  start_gateway(config());
  auto r = get("/sns/templates/3", {{"If-None-Match", "\"t3v0\""}, {"Accept", "application/json"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(api().last_header("if-none-match"), "");
  EXPECT_EQ(api().last_header("accept"), "application/json");
}

TEST_F(GenericApiTest, UpstreamDownGives502Json) {
  auto c = config();
  fake_->stop();  // nothing listens on its port any more
  c.connect_timeout = 2s;
  start_gateway(c);
  auto started = std::chrono::steady_clock::now();
  auto r = get("/sns/templates/1");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_TRUE(r.body.starts_with(R"({"error":"Bad Gateway: )")) << r.body;
  EXPECT_EQ(r.header("X-Callcache"), "error");
  auto pass = get("/sns/uncached/1");
  EXPECT_EQ(pass.status, 502);
  EXPECT_TRUE(pass.body.starts_with(R"({"error":)")) << pass.body;
  // The Bot API front is unaffected.
  EXPECT_EQ(get("/bot" + kToken + "/getMe").status, 200);
}

TEST_F(GenericApiTest, StaleAnswerIsServedWhileOneRefreshRuns) {
  start_gateway(config());  // sns_feed: ttl 1s, stale_ttl 1m
  auto first = get("/sns/feed/1");
  ASSERT_EQ(first.header("X-Callcache"), "miss");
  std::this_thread::sleep_for(1500ms);  // past the ttl, inside stale_ttl
  auto stale = get("/sns/feed/1");
  EXPECT_EQ(stale.header("X-Callcache"), "stale");
  EXPECT_EQ(stale.body, first.body);
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (api().calls("GET /feed/1") < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(api().calls("GET /feed/1"), 2u);
  // The refreshed answer replaces the stale one (poll: the store follows the call).
  HttpResponse fresh;
  do {
    fresh = get("/sns/feed/1");
  } while (fresh.body == first.body && std::chrono::steady_clock::now() < deadline);
  EXPECT_NE(fresh.body, first.body);
  EXPECT_EQ(fresh.header("X-Callcache"), "hit");
  EXPECT_EQ(api().calls("GET /feed/1"), 2u);
}

TEST_F(GenericApiTest, AdminInvalidatesGenericNamespacesAndReportsRules) {
  start_gateway(config());
  get("/sns/templates/1");
  get("/sns/templates/2");
  get("/sns/templates/2");
  TestClient admin(gateway_->admin_port());
  HttpRequest inv;
  inv.method = "POST";
  // Shared answers (rules without `tenant`) belong to tenant 0; keys are
  // "<rule name>?<path params>&<key parts>".
  inv.target = "/invalidate?tenant=0000000000000000&namespace=sns&key=" +
               logic::percent_encode("template?p.id=1");
  auto one = admin.send(inv);
  EXPECT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(get("/sns/templates/1").header("X-Callcache"), "miss");
  EXPECT_EQ(get("/sns/templates/2").header("X-Callcache"), "hit");
  inv.target = "/invalidate?namespace=sns";
  EXPECT_EQ(admin.send(inv).status, 200);
  EXPECT_EQ(get("/sns/templates/1").header("X-Callcache"), "miss");
  EXPECT_EQ(get("/sns/templates/2").header("X-Callcache"), "miss");

  auto metrics = admin.get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find(
                R"(callcache_gateway_rule_requests_total{rule="sns:template",outcome="hit"} 2)"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find(
                R"(callcache_gateway_rule_requests_total{rule="sns:template",outcome="miss"} 5)"),
            std::string::npos);
  EXPECT_NE(
      metrics.body.find(
          R"(callcache_gateway_upstream_method_calls_total{method="sns:template",result="ok"} 5)"),
      std::string::npos);
  EXPECT_NE(metrics.body.find(R"(namespace="sns")"), std::string::npos);
  auto stats = admin.get("/stats");
  ASSERT_EQ(stats.status, 200);
  EXPECT_NE(stats.body.find(R"("sns:template":{"hit":2)"), std::string::npos) << stats.body;
  EXPECT_NE(stats.body.find(R"("sns":{)"), std::string::npos) << stats.body;
}

TEST_F(GenericApiTest, SqliteTierKeepsGenericAnswersAcrossARestart) {
  TempDir dir;
  auto c = config();
  c.storage.l2 = tiers::L2Kind::kSqlite;
  c.storage.path = dir.path() + "/callcache.sqlite3";
  start_gateway(c);
  auto first = get("/sns/templates/1");
  auto list = get("/sns/templates?page=1");
  ASSERT_EQ(first.status, 200);
  stop_gateway();  // flushes the tier

  start_gateway(c);
  auto again = get("/sns/templates/1");
  EXPECT_EQ(again.header("X-Callcache"), "l2_hit");
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(again.content_type, first.content_type);
  EXPECT_EQ(again.header("ETag"), first.header("ETag"));
  EXPECT_EQ(get("/sns/templates/1").header("X-Callcache"), "hit");  // promoted to L1
  EXPECT_EQ(api().calls("GET /templates/1"), 1u);
  // A write's invalidation reaches the tier: nothing it dropped comes back
  // from L2 after another restart.
  HttpRequest post;
  post.method = "POST";
  post.target = "/sns/templates/1";
  ASSERT_EQ(client_->send(post).status, 200);
  stop_gateway();
  start_gateway(c);
  EXPECT_EQ(get("/sns/templates/1").header("X-Callcache"), "miss");
  EXPECT_EQ(get("/sns/templates?page=1").header("X-Callcache"), "miss");
  EXPECT_EQ(api().calls("GET /templates/1"), 2u);
  (void)list;
}

TEST_F(GenericApiTest, BadApiSettingsFailAtStartWithTheKeyPath) {
  auto c = config();
  c.apis[0].upstream = "ftp://127.0.0.1:1/v1";
  auto g = Gateway::create(c);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("apis[0].upstream"), std::string::npos)
      << g.status().message();

  auto clash = config(R"(
namespaces:
  tg_chat: {ttl: 1m}
)");
  auto g2 = Gateway::create(clash);
  ASSERT_FALSE(g2.ok());
  EXPECT_NE(g2.status().message().find("namespaces.tg_chat"), std::string::npos)
      << g2.status().message();
}

TEST_F(GenericApiTest, ShippedExampleConfigServesTheSnsApi) {
  const char* src = std::getenv("CALLCACHE_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  auto loaded = load_config_file(std::string(src) + "/config/sns_example.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  GatewayConfig c = std::move(*loaded);
  ASSERT_EQ(c.apis.size(), 1u);
  c.apis[0].upstream = "http://127.0.0.1:" + std::to_string(fake_->port()) + "/v1";
  use_loopback(c, telegram_->base_url());
  start_gateway(c);
  std::vector<Header> key = {{"X-Api-Key", "k1"}};
  EXPECT_EQ(get("/sns/templates/5?lang=en", key).header("X-Callcache"), "miss");
  EXPECT_EQ(get("/sns/templates/5?lang=en", key).header("X-Callcache"), "hit");
  EXPECT_EQ(get("/sns/templates/5?lang=en").header("X-Callcache"), "pass");  // no API key
  EXPECT_EQ(get("/sns/catalog/fonts/1").header("X-Callcache"), "miss");
  EXPECT_EQ(get("/sns/catalog/fonts/1").header("X-Callcache"), "hit");
  HttpRequest del;
  del.method = "DELETE";
  del.target = "/sns/templates/5";
  del.headers = key;
  EXPECT_EQ(client_->send(del).status, 200);
  EXPECT_EQ(get("/sns/templates/5?lang=en", key).header("X-Callcache"), "miss");
  EXPECT_EQ(get("/sns/health").header("X-Callcache"), "pass");
  EXPECT_EQ(get("/bot" + kToken + "/getMe").status, 200);
}

}  // namespace generic_e2e_test
}  // namespace callcache::gateway
