#include "telegram_call.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace callcache::gateway::logic {
namespace telegram_call_test {

using testing::bot;
using testing::get;
using testing::kToken;
using testing::post;

Result<TelegramCall> parse(testing::OwnedRequest r) { return parse_telegram(r.view()); }

int status_of(const Result<TelegramCall>& r) { return http_status_of(r.status()); }

TEST(ParseTelegram, GetWithQuery) {
  auto call = parse(get(bot("getChat") + "?chat_id=-100123"));
  ASSERT_TRUE(call.ok()) << call.status().to_string();
  EXPECT_EQ(call->kind, TelegramCall::Kind::kMethod);
  EXPECT_EQ(call->method, "getChat");
  EXPECT_EQ(call->method_lower, "getchat");
  EXPECT_EQ(call->tenant, tenant_from_secret(kToken));
  EXPECT_EQ(*call->params.find("chat_id"), "-100123");
  EXPECT_FALSE(call->multipart);
}

TEST(ParseTelegram, TenantUsesTheGivenKey) {
  TenantKey key{};
  key[0] = 1;
  auto r = get(bot("getMe"));
  auto call = parse_telegram(r.view(), key);
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->tenant, tenant_from_secret(kToken, key));
  EXPECT_NE(call->tenant, tenant_from_secret(kToken));
  auto other = parse(get(bot("getMe", testing::kOtherToken)));
  EXPECT_NE(other->tenant, tenant_from_secret(kToken));
}

TEST(ParseTelegram, JsonFormAndQueryGiveTheSameParams) {
  auto a = parse(post(bot("getChatMember"), "application/json; charset=utf-8",
                      R"({"chat_id":"-100123","user_id":42})"));
  auto b = parse(post(bot("getChatMember"), "application/x-www-form-urlencoded",
                      "user_id=42&chat_id=-100123"));
  auto c = parse(
      post(bot("getChatMember") + "?chat_id=-100123", "application/json", R"({"user_id":"42"})"));
  auto d = parse(get(bot("getChatMember") + "?user_id=42&chat_id=-100123"));
  for (auto* r : {&a, &b, &c, &d}) ASSERT_TRUE(r->ok()) << r->status().to_string();
  EXPECT_EQ(key_string(a->params), "chat_id=-100123&user_id=42");
  EXPECT_EQ(key_string(a->params), key_string(b->params));
  EXPECT_EQ(key_string(a->params), key_string(c->params));
  EXPECT_EQ(key_string(a->params), key_string(d->params));
}

TEST(ParseTelegram, MethodNamesAreCaseInsensitiveAndLettersOnly) {
  auto call = parse(get(bot("GETCHAT") + "?chat_id=1"));
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->method_lower, "getchat");
  for (const char* bad : {"get_chat", "getChat1", "get%20Chat", "getChat/extra", "..", "%zz"}) {
    auto r = parse(get(bot(bad)));
    EXPECT_EQ(status_of(r), 404) << bad << ": " << r.status().to_string();
  }
  EXPECT_EQ(status_of(parse(get(bot("")))), 404);
  EXPECT_EQ(status_of(parse(get(std::string("/bot") + kToken))), 404);
}

TEST(ParseTelegram, TokensAndRoutes) {
  EXPECT_EQ(status_of(parse(get("/bot/getMe"))), 404);
  EXPECT_EQ(status_of(parse(get("/botgetMe"))), 404);
  EXPECT_EQ(status_of(parse(get("/bot123/getMe"))), 404);
  EXPECT_EQ(status_of(parse(get("/botabc:ABC-DEF1234ghIkl-zyx57W2v1u123ew11/getMe"))), 404);
  EXPECT_EQ(status_of(parse(get("/bot123:short/getMe"))), 404);
  EXPECT_EQ(status_of(parse(get("/bot123:ABC-DEF1234ghIkl-zyx57W2v1u12$ew11/getMe"))), 404);
  EXPECT_EQ(status_of(parse(get("/"))), 404);
  EXPECT_EQ(status_of(parse(get("/metrics"))), 404);
  EXPECT_EQ(status_of(parse(get(""))), 404);
  // A percent-encoded colon is the same token.
  auto enc = parse(get("/bot123456%3AABC-DEF1234ghIkl-zyx57W2v1u123ew11/getMe"));
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(enc->tenant, tenant_from_secret(kToken));
  EXPECT_TRUE(valid_token_shape(kToken));
  EXPECT_FALSE(valid_token_shape(":ABC-DEF1234ghIkl-zyx57W2v1u123ew11"));
}

TEST(ParseTelegram, OnlyGetAndPost) {
  auto r = get(bot("getMe"));
  r.method = "PUT";
  EXPECT_EQ(status_of(parse(r)), 404);
  r.method = "HEAD";
  EXPECT_EQ(status_of(parse(r)), 404);
}

TEST(ParseTelegram, MalformedBodiesAreBadRequests) {
  struct Case {
    const char* content_type;
    const char* body;
  } cases[] = {
      {"application/json", "{\"chat_id\": 1"},
      {"application/json", "[1,2,3]"},
      {"application/json", "\"hello\""},
      {"application/json", "{\"chat_id\":1,\"chat_id\":2}"},
      {"application/x-www-form-urlencoded", "chat_id=%G1"},
      {"application/x-www-form-urlencoded", "chat id=1"},
  };
  for (const auto& c : cases) {
    auto r = parse(post(bot("getChat"), c.content_type, c.body));
    EXPECT_EQ(status_of(r), 400) << c.body;
    // The error is a Bot API-shaped JSON document.
    auto j = nlohmann::json::parse(error_json(r.status()));
    EXPECT_EQ(j["ok"], false);
    EXPECT_EQ(j["error_code"], 400);
    EXPECT_TRUE(j["description"].get<std::string>().starts_with("Bad Request")) << j.dump();
  }
  EXPECT_EQ(status_of(parse(get(bot("getChat") + "?chat_id=%"))), 400);
  // Duplicate across query and body.
  EXPECT_EQ(
      status_of(parse(post(bot("getChat") + "?chat_id=1", "application/json", R"({"chat_id":1})"))),
      400);
}

TEST(ParseTelegram, BlankJsonBodyAndOtherContentTypesCarryNoParams) {
  auto a = parse(post(bot("getMe"), "application/json", "  \r\n"));
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->params.empty());
  auto b = parse(post(bot("getMe") + "?x=1", "text/plain", "chat_id=5"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(key_string(b->params), "x=1");
}

TEST(ParseTelegram, BodyLimits) {
  auto r = post(bot("sendMessage"), "application/json", R"({"chat_id":1,"text":"hi"})");
  r.limits.max_parsed_body_bytes = 10;
  EXPECT_EQ(status_of(parse(r)), 413);
  auto declared = post(bot("sendMessage"), "application/json", "");
  declared.content_length = 5'000'000;
  EXPECT_EQ(status_of(parse(declared)), 413);
  auto target = get(bot("getChat") + "?chat_id=" + std::string(20000, '1'));
  EXPECT_EQ(status_of(parse(target)), 400);
}

TEST(ParseTelegram, MultipartIsClassifiedFromContentTypeAlone) {
  auto r = post(bot("sendPhoto") + "?chat_id=-100", "multipart/form-data; boundary=xyz",
                "\x01\x02 not parsed at all {{{");
  r.content_length = 10'000'000;
  auto call = parse(r);
  ASSERT_TRUE(call.ok()) << call.status().to_string();
  EXPECT_TRUE(call->multipart);
  EXPECT_EQ(key_string(call->params), "chat_id=-100");
  r.content_length = 60ull * 1024 * 1024;
  EXPECT_EQ(status_of(parse(r)), 413);
}

TEST(ParseTelegram, FileDownloads) {
  auto call = parse(get(std::string("/file/bot") + kToken + "/photos/file_12.jpg"));
  ASSERT_TRUE(call.ok()) << call.status().to_string();
  EXPECT_EQ(call->kind, TelegramCall::Kind::kFile);
  EXPECT_EQ(call->file_path, "photos/file_12.jpg");
  EXPECT_EQ(call->tenant, tenant_from_secret(kToken));
  EXPECT_EQ(status_of(parse(get(std::string("/file/bot") + kToken + "/../etc/passwd"))), 400);
  EXPECT_EQ(status_of(parse(get(std::string("/file/bot") + kToken + "/%2e%2e/x"))), 400);
  EXPECT_EQ(status_of(parse(get(std::string("/file/bot") + kToken + "/"))), 404);
  EXPECT_EQ(status_of(parse(get("/file/bot/photos/x.jpg"))), 404);
  auto p = post(std::string("/file/bot") + kToken + "/a.jpg", "", "");
  EXPECT_EQ(status_of(parse(p)), 404);
}

TEST(ParseTelegram, UsernamesAreCaseInsensitive) {
  auto a = parse(get(bot("getChat") + "?chat_id=@MyChannel"));
  auto b = parse(get(bot("getChat") + "?chat_id=%40mychannel"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(key_string(a->params), key_string(b->params));
}

TEST(RedactTarget, RemovesTheToken) {
  const std::string secret = "ABC-DEF1234ghIkl-zyx57W2v1u123ew11";
  for (std::string t :
       {bot("getChat") + "?chat_id=1", std::string("/file/bot") + kToken + "/a.jpg",
        std::string("/bot123456%3A") + secret + "/getMe", bot(""), std::string("/bot") + kToken}) {
    std::string r = redact_target(t);
    EXPECT_EQ(r.find(secret), std::string::npos) << r;
    EXPECT_NE(r.find("<redacted>"), std::string::npos) << r;
    std::string k = redact_target(t, kDefaultTenantKey);
    EXPECT_EQ(k.find(secret), std::string::npos) << k;
    EXPECT_NE(k.find(to_hex(tenant_from_secret(kToken))), std::string::npos) << k;
  }
  EXPECT_EQ(redact_target(bot("getChat") + "?chat_id=1"), "/bot<redacted>/getChat?chat_id=1");
  EXPECT_EQ(redact_target("/metrics?x=1"), "/metrics?x=1");
}

TEST(RedactTarget, RemovesTheTokenRepeatedInTheQuery) {
  const std::string secret = "ABC-DEF1234ghIkl-zyx57W2v1u123ew11";
  EXPECT_EQ(redact_target(bot("getMe") + "?" + kToken), "/bot<redacted>/getMe?123456:<redacted>");
  EXPECT_EQ(redact_target(bot("getMe") + "?t=" + secret + "&x=" + secret),
            "/bot<redacted>/getMe?t=<redacted>&x=<redacted>");
  // Hidden by percent-encoding: the whole query goes (the path stays).
  std::string encoded = "%41" + secret.substr(1);
  EXPECT_EQ(redact_target(bot("getChat") + "?chat_id=1&t=" + encoded),
            "/bot<redacted>/getChat?<redacted>");
  EXPECT_EQ(redact_target(bot("get" + encoded)), "/bot<redacted>/<redacted>");
  // No secret anywhere else: unchanged, malformed encodings included.
  EXPECT_EQ(redact_target(bot("getChat") + "?chat_id=%ZZ"), "/bot<redacted>/getChat?chat_id=%ZZ");
}

}  // namespace telegram_call_test
}  // namespace callcache::gateway::logic
