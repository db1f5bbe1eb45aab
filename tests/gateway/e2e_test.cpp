// End-to-end tests of `callcache serve` over real sockets: a FakeTelegram
// upstream on 127.0.0.1, the Gateway in process, and an HTTP client.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "fake_telegram.h"
#include "gateway/app/gateway.h"
#include "gateway/metrics.h"
#include "test_client.h"
#include "test_gateway_config.h"

namespace callcache::gateway {
namespace e2e_test {

using namespace std::chrono_literals;
using testing::loopback_config;
using testing::TestClient;

const std::string kTokenA = "111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const std::string kTokenB = "222222:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

std::string bot(const std::string& token, const std::string& method) {
  return "/bot" + token + "/" + method;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "callcache-gw-XXXXXX").string();
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

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::err);
    auto fake = FakeTelegram::start();
    ASSERT_TRUE(fake.ok()) << fake.status().to_string();
    fake_ = std::move(*fake);
  }
  void TearDown() override {
    stop_gateway();
    fake_.reset();
  }

  GatewayConfig config() { return loopback_config(fake_->base_url()); }

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

  std::unique_ptr<FakeTelegram> fake_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<TestClient> client_;
};

TEST_F(GatewayTest, RepeatedGetChatCallsUpstreamOnce) {
  start_gateway(config());
  auto first = client_->get(bot(kTokenA, "getChat?chat_id=-100123"));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("X-Callcache"), "miss");
  for (int i = 0; i < 5; ++i) {
    auto again = client_->get(bot(kTokenA, "getChat?chat_id=-100123"));
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(again.body, first.body);
    EXPECT_EQ(again.header("X-Callcache"), "hit");
  }
  // The same question asked in another form (JSON body, number as a string).
  auto json = client_->post_json(bot(kTokenA, "getChat"), R"({"chat_id":"-100123"})");
  EXPECT_EQ(json.body, first.body);
  EXPECT_EQ(fake_->calls("getChat"), 1u);
}

TEST_F(GatewayTest, FiftyConcurrentIdenticalReadsMakeOneUpstreamCall) {
  fake_->set_latency(300ms);
  start_gateway(config());
  std::vector<HttpRequest> requests;
  for (int i = 0; i < 50; ++i) {
    HttpRequest r;
    r.method = "POST";
    r.target = bot(kTokenA, "getChatMember");
    r.headers.push_back({"Content-Type", "application/json"});
    // Key order and number forms vary: one canonical question.
    r.body =
        i % 2 ? R"({"chat_id":-100123,"user_id":42})" : R"({"user_id":"42","chat_id":"-100123"})";
    requests.push_back(std::move(r));
  }
  auto answers = client_->send_all(std::move(requests));
  int coalesced = 0;
  for (const auto& a : answers) {
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.body, answers[0].body);
    coalesced += a.header("X-Callcache") == "coalesced";
  }
  EXPECT_EQ(fake_->calls("getChatMember"), 1u);
  EXPECT_GT(coalesced, 0);
}

TEST_F(GatewayTest, WriteInvalidatesTheReadItChanges) {
  auto c = config();
  c.telegram = YAML::Load("post_write_bypass: 0s");
  start_gateway(c);
  auto before = client_->get(bot(kTokenA, "getChat?chat_id=-100777"));
  ASSERT_EQ(before.status, 200);
  EXPECT_NE(before.body.find("Chat -100777"), std::string::npos);
  auto set =
      client_->post_json(bot(kTokenA, "setChatTitle"), R"({"chat_id":-100777,"title":"Renamed"})");
  ASSERT_EQ(set.status, 200) << set.body;
  auto after = client_->get(bot(kTokenA, "getChat?chat_id=-100777"));
  ASSERT_EQ(after.status, 200);
  EXPECT_NE(after.body.find("Renamed"), std::string::npos) << after.body;
  EXPECT_EQ(fake_->calls("getChat"), 2u);
  // And it is cached again afterwards.
  EXPECT_EQ(client_->get(bot(kTokenA, "getChat?chat_id=-100777")).header("X-Callcache"), "hit");
  EXPECT_EQ(fake_->calls("getChat"), 2u);
}

// A getChat whose answer was decided upstream before a setChatTitle, but
// that arrives after the write invalidated the chat, must not be stored:
// once the post-write window is over it would serve the old title for a
// whole ttl.
TEST_F(GatewayTest, AReadInFlightDuringAWriteIsNotStored) {
  auto c = config();
  c.telegram = YAML::Load("post_write_bypass: 0s");
  start_gateway(c);
  fake_->set_method_latency("getChat", 600ms);
  HttpResponse slow;
  std::thread reader([&] {
    TestClient other(gateway_->port());
    slow = other.get(bot(kTokenA, "getChat?chat_id=-100888"));
  });
  // The fake decides an answer as the call arrives (the old title).
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (fake_->calls("getChat") == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(fake_->calls("getChat"), 1u);
  auto set =
      client_->post_json(bot(kTokenA, "setChatTitle"), R"({"chat_id":-100888,"title":"Renamed"})");
  ASSERT_EQ(set.status, 200) << set.body;
  reader.join();
  ASSERT_EQ(slow.status, 200) << slow.body;
  EXPECT_NE(slow.body.find("Chat -100888"), std::string::npos) << slow.body;  // the old title
  fake_->set_method_latency("getChat", 0ms);
  auto after = client_->get(bot(kTokenA, "getChat?chat_id=-100888"));
  ASSERT_EQ(after.status, 200);
  EXPECT_NE(after.body.find("Renamed"), std::string::npos) << after.body;
  EXPECT_EQ(after.header("X-Callcache"), "miss");
  EXPECT_EQ(fake_->calls("getChat"), 2u);
}

TEST_F(GatewayTest, ReadsInsideThePostWriteWindowBypassTheCache) {
  auto c = config();
  c.telegram = YAML::Load("post_write_bypass: 30s");
  start_gateway(c);
  ASSERT_EQ(client_->get(bot(kTokenA, "getChat?chat_id=5")).status, 200);
  ASSERT_EQ(client_->post_json(bot(kTokenA, "setChatTitle"), R"({"chat_id":5,"title":"T"})").status,
            200);
  auto r1 = client_->get(bot(kTokenA, "getChat?chat_id=5"));
  auto r2 = client_->get(bot(kTokenA, "getChat?chat_id=5"));
  EXPECT_EQ(r1.header("X-Callcache"), "bypass");
  EXPECT_EQ(r2.header("X-Callcache"), "bypass");
  EXPECT_EQ(fake_->calls("getChat"), 3u);
  // Other chats are unaffected.
  client_->get(bot(kTokenA, "getChat?chat_id=6"));
  EXPECT_EQ(client_->get(bot(kTokenA, "getChat?chat_id=6")).header("X-Callcache"), "hit");
}

TEST_F(GatewayTest, TwoTokensNeverShareAnswers) {
  start_gateway(config());
  auto a = client_->get(bot(kTokenA, "getMe"));
  auto b = client_->get(bot(kTokenB, "getMe"));
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(b.status, 200);
  EXPECT_NE(a.body, b.body);  // the fake answers each bot's own id
  EXPECT_NE(a.body.find("111111"), std::string::npos);
  EXPECT_NE(b.body.find("222222"), std::string::npos);
  EXPECT_EQ(fake_->calls("getMe"), 2u);
  EXPECT_EQ(client_->get(bot(kTokenA, "getMe")).body, a.body);
  EXPECT_EQ(client_->get(bot(kTokenB, "getMe")).body, b.body);
  EXPECT_EQ(fake_->calls("getMe"), 2u);
}

TEST_F(GatewayTest, SendMessageBurstToOneChatIsPacedWithoutUpstream429s) {
  // Telegram allows about one message per second to one private chat; the
  // fake answers 429 to anything closer than 0.9 s.
  fake_->enforce_chat_interval(900ms);
  start_gateway(config());
  std::vector<HttpRequest> burst;
  for (int i = 0; i < 4; ++i) {
    HttpRequest r;
    r.method = "POST";
    r.target = bot(kTokenA, "sendMessage");
    r.headers.push_back({"Content-Type", "application/json"});
    r.body = R"({"chat_id":4242,"text":"hello )" + std::to_string(i) + R"("})";
    burst.push_back(std::move(r));
  }
  auto started = std::chrono::steady_clock::now();
  auto answers = client_->send_all(std::move(burst));
  auto elapsed = std::chrono::steady_clock::now() - started;
  for (const auto& a : answers) EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(fake_->answered_429(), 0u);
  EXPECT_EQ(fake_->calls("sendMessage"), 4u);
  EXPECT_GE(elapsed, 2900ms);  // 4 messages, 1 s apart
  EXPECT_EQ(gateway_->metrics().pacing_waits(), 3u);
}

TEST_F(GatewayTest, PacingBeyondMaxWaitAnswersAnHonest429) {
  auto c = config();
  c.pacing_max_wait = 1500ms;
  start_gateway(c);
  std::vector<HttpRequest> burst;
  for (int i = 0; i < 4; ++i) {
    HttpRequest r;
    r.method = "POST";
    r.target = bot(kTokenA, "sendMessage");
    r.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
    r.body = "chat_id=77&text=x" + std::to_string(i);
    burst.push_back(std::move(r));
  }
  auto answers = client_->send_all(std::move(burst));
  int ok = 0, refused = 0;
  for (const auto& a : answers) {
    if (a.status == 200) ++ok;
    if (a.status == 429) {
      ++refused;
      EXPECT_NE(a.body.find("\"retry_after\":"), std::string::npos) << a.body;
      EXPECT_FALSE(a.header("Retry-After").empty());
      EXPECT_GE(std::stoi(std::string(a.header("Retry-After"))), 2);
    }
  }
  EXPECT_EQ(ok, 2);  // now and after 1 s; the others would wait 2 s and 3 s
  EXPECT_EQ(refused, 2);
  EXPECT_EQ(fake_->calls("sendMessage"), 2u);
}

TEST_F(GatewayTest, Upstream429IsRetriedAfterItsBackOff) {
  start_gateway(config());
  FakeFault f;
  f.kind = FakeFault::Kind::kTooManyRequests;
  f.retry_after = 1;
  fake_->fail_next("sendMessage", 1, f);
  auto started = std::chrono::steady_clock::now();
  auto r = client_->post_json(bot(kTokenA, "sendMessage"), R"({"chat_id":9,"text":"hi"})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_GE(std::chrono::steady_clock::now() - started, 900ms);
  EXPECT_EQ(fake_->calls("sendMessage"), 2u);
  EXPECT_EQ(gateway_->metrics().received_429(), 1u);
}

TEST_F(GatewayTest, Upstream429BeyondRetryLimitsIsPassedThroughAndPenalisesOnlyItsChat) {
  start_gateway(config());
  FakeFault f;
  f.kind = FakeFault::Kind::kTooManyRequests;
  f.retry_after = 30;  // over retry_max_delay (5 s): not retried
  fake_->fail_next("sendMessage", 1, f);
  auto r = client_->post_json(bot(kTokenA, "sendMessage"), R"({"chat_id":10,"text":"hi"})");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("Retry-After"), "30");
  EXPECT_NE(r.body.find("\"retry_after\":30"), std::string::npos) << r.body;
  // The chat is blocked for 30 s (over max_wait): the gateway refuses at once.
  auto blocked =
      client_->post_json(bot(kTokenA, "sendMessage"), R"({"chat_id":10,"text":"again"})");
  EXPECT_EQ(blocked.status, 429);
  EXPECT_GE(std::stoi(std::string(blocked.header("Retry-After"))), 25);
  // Another chat of the same bot, and the same chat of another bot, flow.
  EXPECT_EQ(client_->post_json(bot(kTokenA, "sendMessage"), R"({"chat_id":11,"text":"x"})").status,
            200);
  EXPECT_EQ(client_->post_json(bot(kTokenB, "sendMessage"), R"({"chat_id":10,"text":"x"})").status,
            200);
  EXPECT_EQ(fake_->calls("sendMessage"), 3u);
}

TEST_F(GatewayTest, UpstreamDownGives502InBotApiShape) {
  auto c = config();
  fake_->stop();  // nothing listens on its port any more
  c.connect_timeout = 2s;
  start_gateway(c);
  auto started = std::chrono::steady_clock::now();
  auto r = client_->get(bot(kTokenA, "getChat?chat_id=1"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find(R"("ok":false)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("error_code":502)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("description":")"), std::string::npos) << r.body;
}

TEST_F(GatewayTest, DroppedUpstreamConnectionGives502AndIsNotCached) {
  start_gateway(config());
  FakeFault drop;
  drop.kind = FakeFault::Kind::kDropConnection;
  fake_->fail_next("getChat", 1, drop);
  auto r = client_->get(bot(kTokenA, "getChat?chat_id=3"));
  EXPECT_EQ(r.status, 502) << r.body;
  auto again = client_->get(bot(kTokenA, "getChat?chat_id=3"));
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.header("X-Callcache"), "miss");
}

TEST_F(GatewayTest, ErrorAnswersAreRelayedNotCached) {
  start_gateway(config());
  FakeFault f;
  f.kind = FakeFault::Kind::kServerError;
  f.status = 500;
  f.description = "Internal Server Error";
  fake_->fail_next("getChatAdministrators", 1, f);
  auto r = client_->get(bot(kTokenA, "getChatAdministrators?chat_id=8"));
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("Internal Server Error"), std::string::npos);
  auto ok = client_->get(bot(kTokenA, "getChatAdministrators?chat_id=8"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(fake_->calls("getChatAdministrators"), 2u);
}

TEST_F(GatewayTest, MalformedRequestsGet4xxJsonAndTheServerKeepsServing) {
  auto c = config();
  c.max_body_bytes = 1 << 20;
  start_gateway(c);
  auto is_bot_error = [](const HttpResponse& r) {
    return r.body.find(R"("ok":false)") != std::string::npos &&
           r.body.find("\"error_code\":" + std::to_string(r.status)) != std::string::npos;
  };
  auto bad_json = client_->post_json(bot(kTokenA, "getChat"), R"({"chat_id": )");
  EXPECT_EQ(bad_json.status, 400) << bad_json.body;
  EXPECT_TRUE(is_bot_error(bad_json)) << bad_json.body;
  auto bad_method = client_->get(bot(kTokenA, "get-Chat"));
  EXPECT_EQ(bad_method.status, 404) << bad_method.body;
  EXPECT_TRUE(is_bot_error(bad_method)) << bad_method.body;
  auto no_token = client_->get("/getChat?chat_id=1");
  EXPECT_EQ(no_token.status, 404) << no_token.body;
  EXPECT_TRUE(is_bot_error(no_token)) << no_token.body;
  auto bad_token = client_->get("/botNOT-A-TOKEN/getMe");
  EXPECT_EQ(bad_token.status, 404) << bad_token.body;
  auto huge = client_->post_json(bot(kTokenA, "sendMessage"),
                                 R"({"chat_id":1,"text":")" + std::string(2 << 20, 'x') + "\"}");
  EXPECT_EQ(huge.status, 413) << huge.body.substr(0, 200);
  EXPECT_TRUE(is_bot_error(huge)) << huge.body.substr(0, 200);
  static const char kTlsHelloAndJunk[] =
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n";
  std::string garbage = client_->raw(std::string(kTlsHelloAndJunk, sizeof kTlsHelloAndJunk - 1));
  EXPECT_NE(garbage.find("HTTP/1.1 400"), std::string::npos) << garbage;
  EXPECT_NE(garbage.find(R"("ok":false)"), std::string::npos) << garbage;
  std::string huge_header =
      client_->raw("GET /bot" + kTokenA +
                   "/getMe HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100000, 'a') + "\r\n\r\n");
  EXPECT_NE(huge_header.find("HTTP/1.1 431"), std::string::npos) << huge_header.substr(0, 200);
  EXPECT_EQ(fake_->total_calls(), 0u);  // none of that reached the upstream
  // Still serving.
  auto fine = client_->get(bot(kTokenA, "getMe"));
  EXPECT_EQ(fine.status, 200) << fine.body;
}

TEST_F(GatewayTest, FileDownloadsAndGetUpdatesPassThrough) {
  start_gateway(config());
  auto file = client_->get("/file/bot" + kTokenA + "/documents/abc.txt");
  EXPECT_EQ(file.status, 200);
  EXPECT_EQ(file.body, "FAKEFILE:documents/abc.txt");
  client_->get("/file/bot" + kTokenA + "/documents/abc.txt");
  EXPECT_EQ(fake_->calls("file"), 2u);
  client_->get(bot(kTokenA, "getUpdates?timeout=0"));
  client_->get(bot(kTokenA, "getUpdates?timeout=0"));
  EXPECT_EQ(fake_->calls("getUpdates"), 2u);
}

TEST_F(GatewayTest, CachedReadsSurviveARestartWithTheSqliteTier) {
  TempDir dir;
  auto c = config();
  c.storage.l2 = tiers::L2Kind::kSqlite;
  c.storage.path = dir.path() + "/callcache.sqlite3";
  start_gateway(c);
  auto first = client_->get(bot(kTokenA, "getChat?chat_id=-1001"));
  ASSERT_EQ(first.status, 200);
  auto member = client_->get(bot(kTokenA, "getChatMember?chat_id=-1001&user_id=5"));
  ASSERT_EQ(member.status, 200);
  stop_gateway();  // flushes the tier

  start_gateway(c);
  auto again = client_->get(bot(kTokenA, "getChat?chat_id=-1001"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(again.header("X-Callcache"), "l2_hit");
  EXPECT_EQ(fake_->calls("getChat"), 1u);
  // Promoted to L1.
  EXPECT_EQ(client_->get(bot(kTokenA, "getChat?chat_id=-1001")).header("X-Callcache"), "hit");
  // A write's tag invalidation reaches the tier too: after banChatMember the
  // member answer is not served from L2 after another restart.
  ASSERT_EQ(
      client_->post_json(bot(kTokenA, "banChatMember"), R"({"chat_id":-1001,"user_id":5})").status,
      200);
  stop_gateway();
  start_gateway(c);
  auto member2 = client_->get(bot(kTokenA, "getChatMember?chat_id=-1001&user_id=5"));
  EXPECT_EQ(member2.status, 200);
  EXPECT_NE(member2.header("X-Callcache"), "l2_hit");
  EXPECT_EQ(fake_->calls("getChatMember"), 2u);
}

TEST_F(GatewayTest, AdminRoutesReportAndInvalidate) {
  start_gateway(config());
  client_->get(bot(kTokenA, "getChat?chat_id=1"));
  client_->get(bot(kTokenA, "getChat?chat_id=1"));
  TestClient admin(gateway_->admin_port());
  auto metrics = admin.get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("callcache_gateway_requests_total{outcome=\"hit\"} 1"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(
      metrics.body.find("callcache_gateway_upstream_latency_seconds_bucket{method=\"getChat\""),
      std::string::npos);
  EXPECT_EQ(metrics.body.find(kTokenA), std::string::npos);  // never the token
  EXPECT_EQ(metrics.body.find("AAAAAAAAAAAAAAAA"), std::string::npos);
  auto stats = admin.get("/stats");
  EXPECT_EQ(stats.status, 200);
  EXPECT_NE(stats.body.find("\"gateway\":"), std::string::npos);
  EXPECT_EQ(admin.get("/healthz").status, 200);
  EXPECT_EQ(admin.get("/readyz").status, 200);
  auto page = admin.get("/");
  EXPECT_NE(page.body.find("<html"), std::string::npos);
  EXPECT_EQ(admin.get("/invalidate").status, 405);
  HttpRequest inv;
  inv.method = "POST";
  inv.target = "/invalidate?bot_token=" + kTokenA;
  auto done = admin.send(inv);
  EXPECT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(client_->get(bot(kTokenA, "getChat?chat_id=1")).header("X-Callcache"), "miss");
  EXPECT_EQ(fake_->calls("getChat"), 2u);
}

// Bot API method names are case-insensitive (Telegram answers getchat and
// GETCHAT as getChat): every spelling shares one cache entry, one
// invalidation, one pacing budget and one metrics label.
TEST_F(GatewayTest, MethodNamesInAnyCaseAreOneMethod) {
  auto c = config();
  c.telegram = YAML::Load("post_write_bypass: 0s");
  // A pacing rule written in yet another spelling still applies.
  Rule per_chat;
  per_chat.name = "per_chat";
  per_chat.limit = 1;
  per_chat.period = 1s;
  per_chat.key = key_scope::kBot | key_scope::kChat;
  per_chat.methods = {"SendMessage"};
  c.rate_limits.rules = {per_chat};
  start_gateway(c);
  auto first = client_->get(bot(kTokenA, "getchat?chat_id=-100321"));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("X-Callcache"), "miss");
  EXPECT_NE(first.body.find("Chat -100321"), std::string::npos) << first.body;
  auto second = client_->get(bot(kTokenA, "GETCHAT?chat_id=-100321"));
  EXPECT_EQ(second.header("X-Callcache"), "hit");
  EXPECT_EQ(second.body, first.body);
  auto third = client_->post_json(bot(kTokenA, "GetChat"), R"({"chat_id":-100321})");
  EXPECT_EQ(third.header("X-Callcache"), "hit");
  EXPECT_EQ(fake_->calls("getChat"), 1u);

  // A write in another spelling invalidates the read.
  auto set =
      client_->post_json(bot(kTokenA, "SETCHATTITLE"), R"({"chat_id":-100321,"title":"Lowered"})");
  ASSERT_EQ(set.status, 200) << set.body;
  auto after = client_->get(bot(kTokenA, "getChat?chat_id=-100321"));
  EXPECT_EQ(after.header("X-Callcache"), "miss");
  EXPECT_NE(after.body.find("Lowered"), std::string::npos) << after.body;

  // Sends in two spellings to one chat are paced by the rule as one method:
  // the fake (which answers 429 to sends closer than 0.9 s) never has to.
  fake_->enforce_chat_interval(900ms);
  std::vector<HttpRequest> sends;
  for (const char* method : {"sendmessage", "SENDMESSAGE"}) {
    HttpRequest r;
    r.method = "POST";
    r.target = bot(kTokenA, method);
    r.headers.push_back({"Content-Type", "application/json"});
    r.body = R"({"chat_id":4343,"text":"hi"})";
    sends.push_back(std::move(r));
  }
  for (const auto& a : client_->send_all(std::move(sends))) EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(fake_->answered_429(), 0u);
  EXPECT_EQ(fake_->calls("sendMessage"), 2u);
  EXPECT_EQ(gateway_->metrics().pacing_waits(), 1u);

  // Metrics name the method as the preset does; admin invalidation by method
  // takes any spelling.
  TestClient admin(gateway_->admin_port());
  auto metrics = admin.get("/metrics").body;
  EXPECT_NE(metrics.find(R"(method="getChat")"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find(R"(method="getchat")"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find(R"(method="GETCHAT")"), std::string::npos) << metrics;
  HttpRequest inv;
  inv.method = "POST";
  inv.target = "/invalidate?bot_token=" + kTokenA + "&method=GETchat";
  auto done = admin.send(inv);
  EXPECT_EQ(done.status, 200) << done.body;
  EXPECT_NE(done.body.find(R"("dropped":1)"), std::string::npos) << done.body;
  EXPECT_EQ(client_->get(bot(kTokenA, "getchat?chat_id=-100321")).header("X-Callcache"), "miss");
}

TEST_F(GatewayTest, ShutdownFinishesInFlightRequests) {
  fake_->set_latency(500ms);
  start_gateway(config());
  std::thread slow([&] {
    TestClient c(gateway_->port());
    auto r = c.get(bot(kTokenA, "getChat?chat_id=99"));
    EXPECT_EQ(r.status, 200) << r.body;
  });
  while (fake_->max_concurrent() == 0) std::this_thread::sleep_for(5ms);
  gateway_->stop();
  EXPECT_EQ(gateway_->wait(), 0);
  slow.join();
  gateway_.reset();
}

}  // namespace e2e_test
}  // namespace callcache::gateway
