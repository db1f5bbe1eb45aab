#include "plan.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.h"
#include "yaml_reader.h"

namespace callcache::gateway::logic {
namespace plan_test {

using namespace std::chrono_literals;
using testing::bot;
using testing::get;
using testing::kOtherToken;
using testing::kToken;
using testing::post;

class PlanTest : public ::testing::Test {
 protected:
  PlanTest() {
    auto p = builtin_preset();
    EXPECT_TRUE(p.ok()) << p.status().to_string();
    preset_ = std::move(*p);
  }

  TelegramCall call(testing::OwnedRequest r) {
    auto c = parse_telegram(r.view());
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return c.ok() ? std::move(*c) : TelegramCall{};
  }

  // A JSON POST of `method` with `json` params by `token`.
  Plan plan_json(const std::string& method, const std::string& json, const char* token = kToken) {
    return plan(call(post(bot(method, token), "application/json", json)), preset_, clock_.now(),
                state_);
  }

  CachedRead read(const std::string& method, const std::string& json, const char* token = kToken) {
    Plan p = plan_json(method, json, token);
    EXPECT_TRUE(std::holds_alternative<CachedRead>(p)) << method << " " << p.index();
    return std::holds_alternative<CachedRead>(p) ? std::get<CachedRead>(p) : CachedRead{};
  }

  Invalidations write(const std::string& method, const std::string& json,
                      const char* token = kToken) {
    Plan p = plan_json(method, json, token);
    if (auto* w = std::get_if<Write>(&p)) return w->invalidations;
    if (auto* s = std::get_if<PacedSend>(&p)) return s->invalidations;
    ADD_FAILURE() << method << " is not a write (plan index " << p.index() << ")";
    return {};
  }

  // True if `inv` drops the entry `r` would be stored as.
  static bool drops(const Invalidations& inv, const CachedRead& r) {
    KeyInvalidation k{r.ns, r.tenant, r.key};
    if (std::find(inv.keys.begin(), inv.keys.end(), k) != inv.keys.end()) return true;
    return std::any_of(inv.tags.begin(), inv.tags.end(), [&](const std::string& t) {
      return std::find(r.tags.begin(), r.tags.end(), t) != r.tags.end();
    });
  }

  Preset preset_;
  ManualClock clock_;
  PostWriteState state_;
};

TEST_F(PlanTest, CachedReadShape) {
  CachedRead r = read("getChat", R"({"chat_id":"-100123"})");
  EXPECT_EQ(r.ns, "tg_chat");
  EXPECT_EQ(r.key, "getChat?chat_id=-100123");
  EXPECT_EQ(r.tenant, tenant_from_secret(kToken));
  EXPECT_EQ(r.ttl, 5min);
  EXPECT_EQ(r.negative_ttl, 30s);
  EXPECT_FALSE(r.bypass);
  ASSERT_NE(r.method, nullptr);
  EXPECT_EQ(r.method->name, "getChat");
  const std::string hex = to_hex(r.tenant);
  EXPECT_NE(std::find(r.tags.begin(), r.tags.end(), "tg:" + hex + ":getChat"), r.tags.end());
  for (const auto& t : r.tags) EXPECT_NE(t.find(hex), std::string::npos) << t;
  EXPECT_EQ(method_tag(r.tenant, "getChat"), "tg:" + hex + ":getChat");
}

TEST_F(PlanTest, KeysAreCanonicalAcrossTransports) {
  const std::string k = read("getChatMember", R"({"user_id":"42","chat_id":-100123})").key;
  EXPECT_EQ(k, "getChatMember?chat_id=-100123&user_id=42");
  Plan g = plan(call(get(bot("getchatmember") + "?chat_id=-100123&user_id=42")), preset_,
                clock_.now(), state_);
  EXPECT_EQ(std::get<CachedRead>(g).key, k);
  Plan f = plan(call(post(bot("GetChatMember"), "application/x-www-form-urlencoded",
                          "user_id=42&chat_id=%2D100123")),
                preset_, clock_.now(), state_);
  EXPECT_EQ(std::get<CachedRead>(f).key, k);
}

TEST_F(PlanTest, KeyParamsOnlyAndDefaultsDropped) {
  // Parameters outside the key list do not split the cache.
  EXPECT_EQ(read("getChat", R"({"chat_id":1,"junk":2})").key, "getChat?chat_id=1");
  EXPECT_EQ(read("getMe", R"({"x":1})").key, "getMe?");
  // scope {"type":"default"} and no scope are the same question.
  EXPECT_EQ(read("getMyCommands", R"({"scope":{"type":"default"}})").key,
            read("getMyCommands", "{}").key);
  EXPECT_EQ(read("getMyCommands", R"({"language_code":""})").key, "getMyCommands?");
  EXPECT_NE(read("getMyCommands", R"({"scope":{"type":"all_group_chats"}})").key,
            read("getMyCommands", "{}").key);
}

TEST_F(PlanTest, AllParamsKeyWhenPresetSaysAll) {
  auto doc = config::load_string("reads: {getFoo: {namespace: tg_chat}}");
  ASSERT_TRUE(apply_overrides(preset_, *doc, "telegram").ok());
  EXPECT_EQ(read("getFoo", R"({"b":2,"a":"x y"})").key, "getFoo?a=x%20y&b=2");
}

struct Mapping {
  const char* write;
  const char* write_params;
  const char* read;
  const char* read_params;       // must be dropped
  const char* unrelated_params;  // must survive ("" = not checked)
};

TEST_F(PlanTest, EveryInvalidationMapping) {
  const Mapping cases[] = {
      {"setMyCommands",
       R"({"commands":[],"scope":{"type":"chat","chat_id":5},"language_code":"en"})",
       "getMyCommands", R"({"scope":{"chat_id":"5","type":"chat"},"language_code":"en"})",
       R"({"scope":{"type":"chat","chat_id":6},"language_code":"en"})"},
      {"deleteMyCommands", R"({"scope":{"type":"all_private_chats"},"language_code":"de"})",
       "getMyCommands", R"({"scope":{"type":"all_private_chats"},"language_code":"de"})",
       R"({"scope":{"type":"all_private_chats"},"language_code":"en"})"},
      {"setMyCommands", R"({"commands":[]})", "getMyCommands", R"({"language_code":"en"})", ""},
      {"setChatTitle", R"({"chat_id":-100,"title":"t"})", "getChat", R"({"chat_id":-100})",
       R"({"chat_id":-101})"},
      {"setChatDescription", R"({"chat_id":-100})", "getChat", R"({"chat_id":"-100"})",
       R"({"chat_id":-101})"},
      {"deleteChatPhoto", R"({"chat_id":-100})", "getChat", R"({"chat_id":-100})",
       R"({"chat_id":-101})"},
      {"setChatPermissions", R"({"chat_id":-100,"permissions":{}})", "getChat",
       R"({"chat_id":-100})", R"({"chat_id":-101})"},
      {"pinChatMessage", R"({"chat_id":-100,"message_id":1})", "getChat", R"({"chat_id":-100})",
       R"({"chat_id":-101})"},
      {"unpinChatMessage", R"({"chat_id":-100})", "getChat", R"({"chat_id":-100})",
       R"({"chat_id":-101})"},
      {"unpinAllChatMessages", R"({"chat_id":-100})", "getChat", R"({"chat_id":-100})",
       R"({"chat_id":-101})"},
      {"setChatPhoto", R"({"chat_id":-100})", "getChat", R"({"chat_id":-100})",
       R"({"chat_id":-101})"},
      {"setWebhook", R"({"url":"https://x"})", "getWebhookInfo", "{}", ""},
      {"deleteWebhook", "{}", "getWebhookInfo", "{}", ""},
      {"setMyName", R"({"name":"n","language_code":"en"})", "getMyName",
       R"({"language_code":"en"})", R"({"language_code":"de"})"},
      {"setMyDescription", R"({"description":"d"})", "getMyDescription", "{}", ""},
      {"setMyShortDescription", R"({"short_description":"d","language_code":"fr"})",
       "getMyShortDescription", R"({"language_code":"fr"})", R"({"language_code":"it"})"},
      {"setChatMenuButton", R"({"chat_id":42,"menu_button":{"type":"commands"}})",
       "getChatMenuButton", R"({"chat_id":42})", R"({"chat_id":43})"},
      {"setChatMenuButton", R"({"menu_button":{"type":"default"}})", "getChatMenuButton",
       R"({"chat_id":42})", ""},
      {"setMyDefaultAdministratorRights", R"({"for_channels":true})",
       "getMyDefaultAdministratorRights", R"({"for_channels":true})", R"({})"},
      {"setMyDefaultAdministratorRights", R"({"rights":{}})", "getMyDefaultAdministratorRights",
       R"({"for_channels":false})", ""},
  };
  const char* member_writes[] = {"banChatMember", "unbanChatMember", "restrictChatMember",
                                 "promoteChatMember", "setChatAdministratorCustomTitle"};
  const char* sticker_writes_by_name[] = {
      "addStickerToSet",     "setStickerSetTitle", "setStickerSetThumbnail",
      "replaceStickerInSet", "deleteStickerSet",   "setCustomEmojiStickerSetThumbnail",
      "createNewStickerSet"};
  const char* sticker_writes_by_file[] = {"deleteStickerFromSet", "setStickerPositionInSet",
                                          "setStickerEmojiList", "setStickerKeywords",
                                          "setStickerMaskPosition"};
  std::vector<Mapping> all(std::begin(cases), std::end(cases));
  for (const char* w : member_writes) {
    all.push_back({w, R"({"chat_id":-100,"user_id":7})", "getChatMember",
                   R"({"chat_id":-100,"user_id":7})", R"({"chat_id":-100,"user_id":8})"});
    all.push_back({w, R"({"chat_id":-100,"user_id":7})", "getChatAdministrators",
                   R"({"chat_id":-100})", R"({"chat_id":-101})"});
    all.push_back({w, R"({"chat_id":-100,"user_id":7})", "getChatMemberCount",
                   R"({"chat_id":-100})", R"({"chat_id":-101})"});
  }
  for (const char* w : sticker_writes_by_name) {
    all.push_back({w, R"({"name":"cats_by_bot","user_id":1})", "getStickerSet",
                   R"({"name":"cats_by_bot"})", R"({"name":"dogs_by_bot"})"});
  }
  for (const char* w : sticker_writes_by_file) {
    all.push_back(
        {w, R"({"sticker":"CAADAgAD"})", "getStickerSet", R"({"name":"cats_by_bot"})", ""});
  }
  all.push_back({"leaveChat", R"({"chat_id":-100})", "getChatMember",
                 R"({"chat_id":-100,"user_id":9})", R"({"chat_id":-101,"user_id":9})"});

  for (const Mapping& m : all) {
    SCOPED_TRACE(std::string(m.write) + " " + m.write_params + " -> " + m.read + " " +
                 m.read_params);
    Invalidations inv = write(m.write, m.write_params);
    EXPECT_TRUE(drops(inv, read(m.read, m.read_params)));
    if (*m.unrelated_params) {
      EXPECT_FALSE(drops(inv, read(m.read, m.unrelated_params)));
    }
    // Another bot's identical answer is never touched.
    EXPECT_FALSE(drops(inv, read(m.read, m.read_params, kOtherToken)));
  }
}

TEST_F(PlanTest, ExactKeysWhereTheScopeIsTheKey) {
  Invalidations inv = write("setChatTitle", R"({"chat_id":-100,"title":"x"})");
  ASSERT_EQ(inv.keys.size(), 1u);
  EXPECT_EQ(inv.keys[0].ns, "tg_chat");
  EXPECT_EQ(inv.keys[0].key, "getChat?chat_id=-100");
  EXPECT_TRUE(inv.tags.empty());
  EXPECT_EQ(inv.bypass_window, preset_.post_write_bypass);
  EXPECT_FALSE(inv.bypass_scopes.empty());
}

TEST_F(PlanTest, MultipartWriteDropsEveryAnswerOfTheRead) {
  Plan p = plan(call(post(bot("setChatPhoto"), "multipart/form-data; boundary=b", "")), preset_,
                clock_.now(), state_);
  ASSERT_TRUE(std::holds_alternative<Write>(p));
  const Invalidations& inv = std::get<Write>(p).invalidations;
  EXPECT_TRUE(drops(inv, read("getChat", R"({"chat_id":-100})")));
  EXPECT_TRUE(drops(inv, read("getChat", R"({"chat_id":-555})")));
  EXPECT_FALSE(drops(inv, read("getChat", R"({"chat_id":-100})", kOtherToken)));
}

TEST_F(PlanTest, PostWriteBypassWindow) {
  CachedRead before = read("getChat", R"({"chat_id":-100})");
  EXPECT_FALSE(before.bypass);
  (void)write("setChatTitle", R"({"chat_id":-100,"title":"x"})");
  clock_.advance(1s);
  EXPECT_TRUE(read("getChat", R"({"chat_id":-100})").bypass);
  EXPECT_FALSE(read("getChat", R"({"chat_id":-101})").bypass);
  EXPECT_FALSE(read("getChat", R"({"chat_id":-100})", kOtherToken).bypass);
  CachedRead during = read("getChat", R"({"chat_id":-100})");
  EXPECT_EQ(classify_answer(during, 200, R"({"ok":true,"result":{}})").action,
            AnswerAction::kDoNotStore);
  clock_.advance(2s);  // exactly at the window's end: over
  EXPECT_FALSE(read("getChat", R"({"chat_id":-100})").bypass);

  // Members: a ban opens windows for that member and the chat-level reads.
  (void)write("banChatMember", R"({"chat_id":-100,"user_id":7})");
  EXPECT_TRUE(read("getChatMember", R"({"chat_id":-100,"user_id":7})").bypass);
  EXPECT_FALSE(read("getChatMember", R"({"chat_id":-100,"user_id":8})").bypass);
  EXPECT_TRUE(read("getChatAdministrators", R"({"chat_id":-100})").bypass);
  EXPECT_TRUE(read("getChatMemberCount", R"({"chat_id":-100})").bypass);
  // leaveChat: every member of the chat.
  (void)write("leaveChat", R"({"chat_id":-200})");
  EXPECT_TRUE(read("getChatMember", R"({"chat_id":-200,"user_id":1})").bypass);
  // Method-wide windows (setWebhook → getWebhookInfo).
  (void)write("setWebhook", R"({"url":"https://x"})");
  EXPECT_TRUE(read("getWebhookInfo", "{}").bypass);
}

TEST_F(PlanTest, BypassWindowConfigurable) {
  auto doc = config::load_string("post_write_bypass: 0s\nwrites: {setChatTitle: {bypass: 10s}}");
  ASSERT_TRUE(apply_overrides(preset_, *doc, "telegram").ok());
  Invalidations d = write("setChatDescription", R"({"chat_id":-1})");
  EXPECT_TRUE(d.bypass_scopes.empty());
  EXPECT_FALSE(read("getChat", R"({"chat_id":-1})").bypass);
  (void)write("setChatTitle", R"({"chat_id":-1,"title":"t"})");
  clock_.advance(9s);
  EXPECT_TRUE(read("getChat", R"({"chat_id":-1})").bypass);
  clock_.advance(1s);
  EXPECT_FALSE(read("getChat", R"({"chat_id":-1})").bypass);
}

TEST_F(PlanTest, PacedSends) {
  Plan p = plan_json("sendMessage", R"({"chat_id":-100123,"text":"hi"})");
  ASSERT_TRUE(std::holds_alternative<PacedSend>(p));
  const Pacing& g = std::get<PacedSend>(p).pacing;
  EXPECT_EQ(g.bot, tenant_from_secret(kToken));
  EXPECT_EQ(g.scope, PaceScope::kChat);
  EXPECT_EQ(g.chat_id, "-100123");
  EXPECT_TRUE(g.is_group);
  EXPECT_FALSE(g.paid);

  const Pacing priv =
      std::get<PacedSend>(plan_json("sendMessage", R"({"chat_id":"42","text":"hi"})")).pacing;
  EXPECT_EQ(priv.chat_id, "42");
  EXPECT_FALSE(priv.is_group);
  const Pacing channel =
      std::get<PacedSend>(plan_json("copyMessage", R"({"chat_id":"@News","from_chat_id":1})"))
          .pacing;
  EXPECT_EQ(channel.chat_id, "@news");
  EXPECT_TRUE(channel.is_group);
  EXPECT_TRUE(
      std::get<PacedSend>(plan_json("sendPhoto", R"({"chat_id":1,"allow_paid_broadcast":true})"))
          .pacing.paid);
  EXPECT_TRUE(std::get<PacedSend>(plan(call(get(bot("sendMessage") +
                                                "?chat_id=1&allow_paid_broadcast=True&text=x")),
                                       preset_, clock_.now(), state_))
                  .pacing.paid);
  const Pacing action =
      std::get<PacedSend>(plan_json("sendChatAction", R"({"chat_id":1,"action":"typing"})")).pacing;
  EXPECT_EQ(action.scope, PaceScope::kBot);
  EXPECT_TRUE(action.chat_id.empty());
  // Inline edits name no chat: per bot only.
  EXPECT_TRUE(
      std::get<PacedSend>(plan_json("editMessageText", R"({"inline_message_id":"abc","text":"x"})"))
          .pacing.chat_id.empty());
  // Multipart upload: chat from the query string.
  Plan up =
      plan(call(post(bot("sendPhoto") + "?chat_id=-5", "multipart/form-data; boundary=x", "")),
           preset_, clock_.now(), state_);
  ASSERT_TRUE(std::holds_alternative<PacedSend>(up));
  EXPECT_EQ(std::get<PacedSend>(up).pacing.chat_id, "-5");
}

TEST_F(PlanTest, PassthroughAndReject) {
  Plan u = plan_json("getUpdates", R"({"offset":1})");
  ASSERT_TRUE(std::holds_alternative<Passthrough>(u));
  EXPECT_FALSE(std::get<Passthrough>(u).pacing);

  Plan unknown = plan_json("answerWebAppQuery", "{}");
  ASSERT_TRUE(std::holds_alternative<Passthrough>(unknown));
  EXPECT_EQ(std::get<Passthrough>(unknown).reason, "unknown method");
  EXPECT_FALSE(std::get<Passthrough>(unknown).pacing);

  Plan sending = plan_json("sendSomethingNew", R"({"chat_id":-7})");
  ASSERT_TRUE(std::holds_alternative<Passthrough>(sending));
  ASSERT_TRUE(std::get<Passthrough>(sending).pacing);
  EXPECT_EQ(std::get<Passthrough>(sending).pacing->chat_id, "-7");
  EXPECT_EQ(std::get<Passthrough>(sending).pacing->bot, tenant_from_secret(kToken));

  Plan file = plan(call(get(std::string("/file/bot") + kToken + "/documents/f.pdf")), preset_,
                   clock_.now(), state_);
  ASSERT_TRUE(std::holds_alternative<Passthrough>(file));
  EXPECT_EQ(std::get<Passthrough>(file).reason, "file download");

  Plan upload_read = plan(call(post(bot("getChat"), "multipart/form-data; boundary=x", "")),
                          preset_, clock_.now(), state_);
  EXPECT_TRUE(std::holds_alternative<Passthrough>(upload_read));

  auto doc = config::load_string("blocked: [logOut]\nreads: {getMe: {cache: false}}");
  ASSERT_TRUE(apply_overrides(preset_, *doc, "telegram").ok());
  Plan blocked = plan_json("logout", "{}");
  ASSERT_TRUE(std::holds_alternative<Reject>(blocked));
  EXPECT_EQ(std::get<Reject>(blocked).status, 403);
  EXPECT_NE(std::get<Reject>(blocked).json.find("\"error_code\":403"), std::string::npos);
  EXPECT_TRUE(std::holds_alternative<Passthrough>(plan_json("getMe", "{}")));
}

TEST_F(PlanTest, ReadMovedToPassthroughIsNoLongerInvalidated) {
  auto doc = config::load_string("passthrough: [getChat]");
  ASSERT_TRUE(apply_overrides(preset_, *doc, "telegram").ok());
  EXPECT_TRUE(std::holds_alternative<Passthrough>(plan_json("getChat", R"({"chat_id":1})")));
  Invalidations inv = write("setChatTitle", R"({"chat_id":1,"title":"t"})");
  EXPECT_TRUE(inv.empty());
  EXPECT_TRUE(inv.bypass_scopes.empty());
}

TEST_F(PlanTest, CacheableAnswers) {
  EXPECT_TRUE(cacheable_answer(R"({"ok":true,"result":{"id":1}})"));
  EXPECT_TRUE(cacheable_answer(R"( {"result":[1,{"ok":false}],"ok":true} )"));
  EXPECT_FALSE(cacheable_answer(R"({"ok":false,"error_code":400,"description":"x"})"));
  EXPECT_FALSE(cacheable_answer(R"({"result":{"ok":true}})"));
  EXPECT_FALSE(cacheable_answer(R"({"ok":"true"})"));
  EXPECT_FALSE(cacheable_answer(R"({"ok":true,"result":)"));  // truncated
  EXPECT_FALSE(cacheable_answer(R"([{"ok":true}])"));
  EXPECT_FALSE(cacheable_answer(""));
  EXPECT_FALSE(cacheable_answer("<html>502 Bad Gateway</html>"));
  // A raw NUL is not JSON (the parser would stop there and say ok).
  using namespace std::string_literals;
  EXPECT_FALSE(cacheable_answer("{\"ok\":true}\0garbage"s));
  EXPECT_FALSE(cacheable_answer("{\"ok\":true}\0"s));
}

TEST_F(PlanTest, BotApiAnswersAreJsonObjects) {
  EXPECT_TRUE(bot_api_answer(R"({"ok":true,"result":{"id":1}})"));
  EXPECT_TRUE(bot_api_answer(R"({"ok":false,"error_code":502,"description":"Bad Gateway"})"));
  EXPECT_TRUE(bot_api_answer(" {\"ok\":true,\"result\":[]}\n"));
  EXPECT_FALSE(bot_api_answer(R"({"ok":true,"result":{"id":1,)"));  // cut short
  EXPECT_FALSE(bot_api_answer("<html><body><h1>502 Bad Gateway</h1></body></html>"));
  EXPECT_FALSE(bot_api_answer(""));
  EXPECT_FALSE(bot_api_answer("[1,2]"));
  EXPECT_FALSE(bot_api_answer("true"));
  EXPECT_FALSE(bot_api_answer(R"({"ok":true} trailing)"));
}

TEST_F(PlanTest, NegativeCachingFollowsThePreset) {
  CachedRead r = read("getChat", R"({"chat_id":-1})");
  AnswerDecision ok = classify_answer(r, 200, R"({"ok":true,"result":{"id":-1}})");
  EXPECT_EQ(ok.action, AnswerAction::kStore);
  EXPECT_EQ(ok.ttl, 5min);
  const char* not_found =
      R"({"ok":false,"error_code":400,"description":"Bad Request: chat not found"})";
  AnswerDecision neg = classify_answer(r, 400, not_found);
  EXPECT_EQ(neg.action, AnswerAction::kStoreNegative);
  EXPECT_EQ(neg.ttl, 30s);
  EXPECT_EQ(
      classify_answer(
          r, 400, R"({"ok":false,"error_code":400,"description":"Bad Request: CHAT NOT FOUND"})")
          .action,
      AnswerAction::kStoreNegative);
  EXPECT_EQ(
      classify_answer(r, 403,
                      R"({"ok":false,"error_code":403,"description":"Forbidden: chat not found"})")
          .action,
      AnswerAction::kDoNotStore);
  EXPECT_EQ(
      classify_answer(r, 400, R"({"ok":false,"error_code":400,"description":"Bad Request: other"})")
          .action,
      AnswerAction::kDoNotStore);
  EXPECT_EQ(classify_answer(r, 502, "").action, AnswerAction::kDoNotStore);
  EXPECT_EQ(classify_answer(r, 200, R"({"ok":false})").action, AnswerAction::kDoNotStore);
  EXPECT_EQ(classify_answer(r, 400, std::string(not_found) + '\0').action,
            AnswerAction::kDoNotStore);  // a raw NUL: not JSON
  // getMe has no negative caching.
  EXPECT_EQ(classify_answer(read("getMe", "{}"), 400, not_found).action, AnswerAction::kDoNotStore);
}

TEST_F(PlanTest, RetryAfter) {
  EXPECT_EQ(
      retry_after(
          429,
          R"({"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}})",
          std::nullopt),
      7s);
  EXPECT_EQ(retry_after(429, "", std::string_view("12")), 12s);
  EXPECT_EQ(retry_after(429, "{}", std::string_view(" 3 ")), 3s);
  EXPECT_EQ(retry_after(200, R"({"ok":false,"error_code":429,"parameters":{"retry_after":2}})",
                        std::nullopt),
            2s);
  EXPECT_EQ(retry_after(429, R"({"parameters":{"retry_after":1.5}})", std::nullopt), 1500ms);
  EXPECT_EQ(
      retry_after(200, std::string(R"({"error_code":429,"parameters":{"retry_after":2}})") + '\0',
                  std::nullopt),
      std::nullopt);  // a raw NUL: not JSON
  EXPECT_EQ(retry_after(429, "garbage", std::string_view("soon")), std::nullopt);
  EXPECT_EQ(retry_after(429, R"({"parameters":{"retry_after":-1}})", std::nullopt), std::nullopt);
  EXPECT_EQ(retry_after(400, R"({"parameters":{"retry_after":5}})", std::string_view("5")),
            std::nullopt);
}

TEST_F(PlanTest, TheTokenNeverAppearsInAnythingPlanned) {
  const std::string token = kToken;
  const std::string secret = token.substr(token.find(':') + 1);
  std::vector<std::string> outputs;
  auto collect_inv = [&](const Invalidations& inv) {
    for (const auto& k : inv.keys) outputs.push_back(k.ns + " " + k.key + " " + to_hex(k.tenant));
    for (const auto& t : inv.tags) outputs.push_back(t);
    for (const auto& s : inv.bypass_scopes) outputs.push_back(s);
  };
  auto collect = [&](const Plan& p) {
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, CachedRead>) {
            outputs.push_back(v.ns + " " + v.key);
            for (const auto& t : v.tags) outputs.push_back(t);
          } else if constexpr (std::is_same_v<T, PacedSend>) {
            outputs.push_back(v.method + " " + v.pacing.chat_id);
            collect_inv(v.invalidations);
          } else if constexpr (std::is_same_v<T, Write>) {
            outputs.push_back(v.method);
            collect_inv(v.invalidations);
          } else if constexpr (std::is_same_v<T, Passthrough>) {
            outputs.push_back(v.method + " " + v.reason);
          } else {
            outputs.push_back(v.description + v.json);
          }
        },
        p);
  };
  // Every method of the preset, plus unknown ones, through GET and POST.
  std::vector<std::string> methods;
  for (const auto& [l, m] : preset_.reads) methods.push_back(m.name);
  for (const auto& [l, m] : preset_.actions) methods.push_back(m.name);
  for (const auto& [l, m] : preset_.passthrough) methods.push_back(m);
  methods.push_back("sendNew");
  methods.push_back("somethingElse");
  const std::string params =
      R"({"chat_id":-100,"user_id":7,"name":"n","scope":{"type":"chat","chat_id":-100},"language_code":"en","file_id":"f"})";
  for (const auto& m : methods) {
    collect(plan_json(m, params));
    collect(plan(call(get(bot(m) + "?chat_id=1")), preset_, clock_.now(), state_));
    collect(plan(call(post(bot(m), "multipart/form-data; boundary=x", "")), preset_, clock_.now(),
                 state_));
  }
  collect(
      plan(call(get(std::string("/file/bot") + kToken + "/x.jpg")), preset_, clock_.now(), state_));
  // Errors, too, never echo the token.
  for (const char* bad : {"/get_chat", "/getChat?chat_id=%", "/getChat?a=1&a=2"}) {
    auto r = get(std::string("/bot") + kToken + bad);
    auto c = parse_telegram(r.view());
    ASSERT_FALSE(c.ok());
    outputs.push_back(c.status().message() + error_json(c.status()));
  }
  outputs.push_back(redact_target(bot("getChat")));
  outputs.push_back(redact_target(bot("getChat"), kDefaultTenantKey));
  ASSERT_GT(outputs.size(), 300u);
  for (const auto& o : outputs) {
    EXPECT_EQ(o.find(secret), std::string::npos) << o;
    EXPECT_EQ(o.find(token), std::string::npos) << o;
  }
}

}  // namespace plan_test
}  // namespace callcache::gateway::logic
