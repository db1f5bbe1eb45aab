#include "preset.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "request.h"
#include "yaml_reader.h"

namespace callcache::gateway::logic {
namespace preset_test {

using namespace std::chrono_literals;

Preset builtin() {
  auto p = builtin_preset();
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(*p) : Preset{};
}

// Applies `yaml` (a telegram: section body) over the built-in preset.
Result<Preset> with_overrides(const std::string& yaml) {
  auto doc = config::load_string(yaml);
  if (!doc.ok()) return doc.status();
  return load_telegram_preset(*doc);
}

void expect_error(const Result<Preset>& r, std::initializer_list<const char*> needles) {
  ASSERT_FALSE(r.ok());
  for (const char* n : needles) {
    EXPECT_NE(r.status().message().find(n), std::string::npos)
        << "missing '" << n << "' in: " << r.status().message();
  }
}

TEST(BuiltinPreset, EmbeddedTextIsTheConfigFile) {
  const char* src = std::getenv("CALLCACHE_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "ctest sets CALLCACHE_SOURCE_DIR";
  std::ifstream in(std::filesystem::path(src) / "config" / "telegram_preset.yaml");
  ASSERT_TRUE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), builtin_preset_text());
}

TEST(BuiltinPreset, CoversTheReadMethods) {
  Preset p = builtin();
  for (const char* m : {"getMe",
                        "getChat",
                        "getChatMember",
                        "getChatAdministrators",
                        "getChatMemberCount",
                        "getFile",
                        "getWebhookInfo",
                        "getMyCommands",
                        "getMyName",
                        "getMyDescription",
                        "getMyShortDescription",
                        "getChatMenuButton",
                        "getMyDefaultAdministratorRights",
                        "getStickerSet",
                        "getCustomEmojiStickers",
                        "getForumTopicIconStickers",
                        "getUserProfilePhotos",
                        "getBusinessConnection",
                        "getUserChatBoosts",
                        "getAvailableGifts"}) {
    const ReadMethod* r = p.find_read(ascii_lower(m));
    ASSERT_NE(r, nullptr) << m;
    EXPECT_EQ(r->name, m);
    EXPECT_GT(r->ttl, 0s) << m;
    ASSERT_NE(p.find_namespace(r->ns), nullptr) << m;
  }
  EXPECT_LT(p.find_read("getfile")->ttl, 1h);  // file_path validity
  EXPECT_LE(p.find_read("getwebhookinfo")->ttl, 1min);
  const ReadMethod* chat = p.find_read("getchat");
  EXPECT_GT(chat->negative_ttl, 0s);
  EXPECT_LE(chat->negative_ttl, 1min);
  EXPECT_EQ(chat->negative_match, std::vector<std::string>{"chat not found"});
  EXPECT_FALSE(chat->all_params);
  EXPECT_EQ(chat->key, std::vector<std::string>{"chat_id"});
  EXPECT_EQ(p.find_read("getmycommands")->defaults.at("scope"), R"({"type":"default"})");
  EXPECT_GT(p.post_write_bypass, 0s);
}

TEST(BuiltinPreset, SendsWritesAndPassthrough) {
  Preset p = builtin();
  for (const char* m :
       {"sendMessage", "sendPhoto", "sendMediaGroup", "forwardMessage", "forwardMessages",
        "copyMessage", "copyMessages", "editMessageText", "sendDocument", "sendPoll"}) {
    const ActionMethod* a = p.find_action(ascii_lower(m));
    ASSERT_NE(a, nullptr) << m;
    EXPECT_EQ(a->pace, PaceScope::kChat) << m;
    EXPECT_EQ(a->chat_param, "chat_id");
    EXPECT_EQ(a->paid_param, "allow_paid_broadcast");
  }
  EXPECT_EQ(p.find_action("sendchataction")->pace, PaceScope::kBot);
  EXPECT_EQ(p.find_action("setchattitle")->pace, PaceScope::kNone);
  EXPECT_TRUE(p.passthrough.contains("getupdates"));
  EXPECT_TRUE(p.blocked.empty());
  EXPECT_FALSE(p.sending_prefixes.empty());
  // Derived scopes: writes invalidate getChatMember by (chat, user) and by chat.
  const auto& scopes = p.find_read("getchatmember")->scopes;
  EXPECT_NE(std::find(scopes.begin(), scopes.end(), std::vector<std::string>{"chat_id", "user_id"}),
            scopes.end());
  EXPECT_NE(std::find(scopes.begin(), scopes.end(), std::vector<std::string>{"chat_id"}),
            scopes.end());
}

TEST(BuiltinPreset, NamespacesAreValidPolicies) {
  Preset p = builtin();
  ASSERT_FALSE(p.namespaces.empty());
  for (const auto& ns : p.namespaces) {
    EXPECT_TRUE(validate(ns.name, ns.policy).ok()) << ns.name;
    EXPECT_GT(ns.policy.max_entries, 0u);
  }
  const NamespaceSpec* chat = p.find_namespace("tg_chat");
  ASSERT_NE(chat, nullptr);
  EXPECT_EQ(chat->policy.max_bytes, 256ull * 1024 * 1024);
  EXPECT_EQ(chat->policy.negative_ttl, 30s);
}

TEST(PresetOverrides, NullSectionIsTheBuiltin) {
  auto p = load_telegram_preset(YAML::Node());
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->reads.size(), builtin().reads.size());
}

TEST(PresetOverrides, ChangeFieldsKeepOthers) {
  auto p = with_overrides(R"(
post_write_bypass: 7s
reads:
  GetChat: {ttl: 10m}
  getFoo: {namespace: tg_chat, ttl: 1m, key: [chat_id]}
writes:
  setFoo: {invalidates: {getFoo: [chat_id]}, bypass: 1s}
sends:
  sendMessage: {paid: ""}
namespaces:
  tg_chat: {max_entries: 1000}
  extra: {ttl: 5s, max_entries: 10}
)");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->post_write_bypass, 7s);
  const ReadMethod* chat = p->find_read("getchat");
  EXPECT_EQ(chat->ttl, 10min);
  EXPECT_EQ(chat->ns, "tg_chat");                             // kept
  EXPECT_EQ(chat->key, std::vector<std::string>{"chat_id"});  // kept
  EXPECT_GT(chat->negative_ttl, 0s);                          // kept
  EXPECT_EQ(p->find_read("getfoo")->ttl, 1min);
  EXPECT_EQ(p->find_action("setfoo")->bypass, 1s);
  EXPECT_EQ(p->find_read("getfoo")->scopes.size(), 1u);
  EXPECT_EQ(p->find_action("sendmessage")->paid_param, "");
  EXPECT_EQ(p->find_action("sendmessage")->pace, PaceScope::kChat);  // kept
  EXPECT_EQ(p->find_namespace("tg_chat")->policy.max_entries, 1000u);
  EXPECT_EQ(p->find_namespace("tg_chat")->policy.ttl, 5min);  // kept
  EXPECT_EQ(p->find_namespace("extra")->policy.ttl, 5s);
}

TEST(PresetOverrides, TtlShorthand) {
  auto p = with_overrides("ttl: {getChatMember: 30s, GETME: 1d}");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->find_read("getchatmember")->ttl, 30s);
  EXPECT_EQ(p->find_read("getme")->ttl, 24h);
  expect_error(with_overrides("ttl: {getNothing: 5s}"), {"telegram.ttl.getNothing", "not a read"});
  expect_error(with_overrides("ttl: {getMe: 0}"), {"telegram.ttl.getMe", "greater than zero"});
  expect_error(with_overrides("ttl: {getMe: a while}"), {"telegram.ttl.getMe", "a while"});
}

TEST(PresetOverrides, NewReadTakesNamespaceTtlByDefault) {
  auto p = with_overrides("reads: {getFoo: {namespace: tg_file}}");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->find_read("getfoo")->ttl, 50min);
  EXPECT_TRUE(p->find_read("getfoo")->all_params);
}

TEST(PresetOverrides, SectionsMoveMethods) {
  auto p = with_overrides("passthrough: [getChatMember]\nblocked: [logOut]\n");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->find_read("getchatmember"), nullptr);
  EXPECT_TRUE(p->passthrough.contains("getchatmember"));
  EXPECT_TRUE(p->blocked.contains("logout"));
  EXPECT_FALSE(p->passthrough.contains("logout"));
  // Writes that invalidated the moved read simply have nothing to drop.
  auto q = with_overrides("passthrough: [getChat]\n");
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  EXPECT_EQ(q->find_read("getchat"), nullptr);
}

// Method names are case-insensitive: an override may spell a method in any
// case, and the method keeps its documented name (keys, tags, metrics).
TEST(PresetOverrides, OverridesInAnyCaseKeepTheMethodsName) {
  auto p = with_overrides(R"(
reads: {GETCHAT: {ttl: 7m}}
writes: {setchattitle: {bypass: 1s}}
ttl: {getchatmember: 9m}
passthrough: [GETMYCOMMANDS]
)");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  const ReadMethod* chat = p->find_read("getchat");
  ASSERT_NE(chat, nullptr);
  EXPECT_EQ(chat->name, "getChat");
  EXPECT_EQ(chat->ttl, 7min);
  EXPECT_EQ(p->find_read("getchatmember")->ttl, 9min);
  const ActionMethod* title = p->find_action("setchattitle");
  ASSERT_NE(title, nullptr);
  EXPECT_EQ(title->name, "setChatTitle");
  EXPECT_EQ(title->bypass, std::optional<Duration>(1s));
  EXPECT_EQ(p->passthrough.at("getmycommands"), "getMyCommands");
}

TEST(PresetOverrides, ReadCanBeDisabled) {
  auto p = with_overrides("reads: {getChat: {cache: false}}");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->find_read("getchat")->cache);
}

TEST(PresetOverrides, IgnoredKeysBelongToTheCaller) {
  auto doc = config::load_string("upstream: https://example.org\nreads: {getMe: {ttl: 5m}}\n");
  auto p = load_telegram_preset(*doc, "telegram", {"upstream"});
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  auto q = load_telegram_preset(*doc, "telegram");
  expect_error(q, {"telegram.upstream", "unknown key"});
}

TEST(PresetOverrides, ErrorsNameKeyPathAndValue) {
  expect_error(with_overrides("reads: {getChat: {ttl: soon}}"),
               {"telegram.reads.getChat.ttl", "soon"});
  expect_error(with_overrides("reads: {getChat: {tll: 5m}}"),
               {"telegram.reads.getChat.tll", "unknown key"});
  expect_error(with_overrides("reads: {getChat: {namespace: nowhere}}"),
               {"telegram.reads.getChat.namespace", "nowhere"});
  expect_error(with_overrides("reads: {getFoo: {ttl: 5m}}"),
               {"telegram.reads.getFoo.namespace", "required"});
  expect_error(with_overrides("reads: {get_foo: {namespace: tg_chat}}"),
               {"telegram.reads.get_foo", "letters only"});
  expect_error(with_overrides("reads: {getChat: {key: 5}}"), {"telegram.reads.getChat.key"});
  expect_error(with_overrides("reads: {getChat: {key: [chat-id]}}"),
               {"telegram.reads.getChat.key", "chat-id"});
  expect_error(with_overrides("reads: {getChat: {negative: {ttl: 5s, match: []}}}"),
               {"telegram.reads.getChat.negative.match"});
  expect_error(with_overrides("writes: {setFoo: {invalidates: {getNothing: [chat_id]}}}"),
               {"telegram.writes.setFoo.invalidates.getNothing", "not a read method"});
  expect_error(with_overrides("sends: {sendMessage: {pace: sometimes}}"),
               {"telegram.sends.sendMessage.pace", "sometimes"});
  expect_error(with_overrides("post_write_bypass: -1s"), {"telegram.post_write_bypass", "-1s"});
  expect_error(with_overrides("namespaces: {tg_chat: {max_entries: 0}}"),
               {"telegram.namespaces.tg_chat.max_entries"});
  expect_error(with_overrides("namespaces: {tg_chat: {jitter: 2}}"),
               {"telegram.namespaces.tg_chat.jitter", "2"});
  expect_error(with_overrides("reads: {getChat: {ttl: 1m}}\nwrites: {getChat: {}}\n"),
               {"telegram.writes.getChat", "already defined at telegram.reads.getChat"});
  expect_error(with_overrides("passthrough: [getMe, get-me]"), {"telegram.passthrough", "get-me"});
  expect_error(with_overrides("reads: [getChat]"), {"telegram.reads", "mapping"});
  expect_error(with_overrides("preset: /nonexistent/preset.yaml"),
               {"telegram.preset", "/nonexistent/preset.yaml"});
}

TEST(PresetFile, AlternativeFileAndItsErrorsNameTheFile) {
  auto dir = std::filesystem::temp_directory_path() / ("cc_preset_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path d;
    ~Cleanup() { std::filesystem::remove_all(d); }
  } cleanup{dir};
  auto good = dir / "good.yaml";
  std::ofstream(good) << "namespaces: {n: {ttl: 1m}}\nreads: {getMe: {namespace: n}}\n";
  auto p = with_overrides("preset: " + good.string() + "\nreads: {getMe: {ttl: 2m}}\n");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->reads.size(), 1u);
  EXPECT_EQ(p->find_read("getme")->ttl, 2min);

  auto bad = dir / "bad.yaml";
  std::ofstream(bad) << "namespaces: {n: {ttl: 1m}}\nreads: {getMe: {namespace: n, ttl: 3 days}}\n";
  expect_error(with_overrides("preset: " + bad.string()),
               {bad.string().c_str(), "reads.getMe.ttl", "3 days"});
  auto broken = dir / "broken.yaml";
  std::ofstream(broken) << "reads: {getMe: [\n";
  expect_error(with_overrides("preset: " + broken.string()), {"broken.yaml", "line"});
}

TEST(PresetText, DuplicateWithinOneDocumentIsAnError) {
  auto p = parse_preset_text(
      "namespaces: {n: {ttl: 1m}}\nreads: {getMe: {namespace: n}}\npassthrough: [getme]\n",
      "x.yaml");
  expect_error(p, {"x.yaml: passthrough", "already defined at reads.getMe"});
}

}  // namespace preset_test
}  // namespace callcache::gateway::logic
