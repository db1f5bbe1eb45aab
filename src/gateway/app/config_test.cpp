// The gateway's YAML config: defaults, the shipped config/callcache.yaml, and
// errors that name the key path.
#include "gateway/app/config.h"

#include "gateway/app/gateway.h"
#include "limits_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace callcache::gateway {
namespace config_test {

Result<GatewayConfig> parse(const std::string& yaml) { return parse_config(YAML::Load(yaml)); }

TEST(GatewayConfig, EmptyDocumentGivesDefaults) {
  auto c = parse_config(YAML::Node());
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->listen.to_string(), "127.0.0.1:8081");
  EXPECT_EQ(c->admin_listen.to_string(), "127.0.0.1:8082");
  EXPECT_EQ(c->upstream, "https://api.telegram.org");
  EXPECT_EQ(c->storage.l2, tiers::L2Kind::kSqlite);
  EXPECT_TRUE(c->rate_limits.rules.empty());
}

TEST(GatewayConfig, ShippedConfigParses) {
  const char* src = std::getenv("CALLCACHE_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  auto c = load_config_file(std::string(src) + "/config/callcache.yaml");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->listen.port, 8081);
  EXPECT_EQ(c->storage.path, "./data/callcache.sqlite3");
  EXPECT_EQ(c->storage.l2, tiers::L2Kind::kSqlite);
  EXPECT_TRUE(c->rate_limits.rules.empty());
  EXPECT_TRUE(c->verify_peer);
}

TEST(GatewayConfig, ValuesAndRules) {
  auto c = parse(R"(
server: {listen: "0.0.0.0:9000", threads: 3, max_body_bytes: 1MiB, access_log: false}
admin: {listen: "127.0.0.1:0", token: s3cret}
tenant_key: 000102030405060708090a0b0c0d0e0f
engine: {shards: 8, sweep_interval: 2s}
gateway:
  upstream: http://127.0.0.1:1234
  pacing:
    max_wait: 250ms
rate_limits:
  shards: 4
  rules:
    per_chat: {limit: 2, period: 1s, key: [bot, chat], chat: private, methods: [sendMessage]}
storage: {l2: none}
telegram: {post_write_bypass: 1s}
)");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->listen.host, "0.0.0.0");
  EXPECT_EQ(c->threads, 3u);
  EXPECT_EQ(c->max_body_bytes, 1u << 20);
  EXPECT_TRUE(c->access_log.empty());
  EXPECT_EQ(c->admin_token, "s3cret");
  EXPECT_EQ(c->pacing_max_wait, std::chrono::milliseconds(250));
  ASSERT_EQ(c->rate_limits.rules.size(), 1u);
  EXPECT_EQ(c->rate_limits.rules[0].name, "per_chat");
  EXPECT_EQ(c->rate_limits.rules[0].limit, 2u);
  EXPECT_EQ(c->rate_limits.rules[0].key, key_scope::kBot | key_scope::kChat);
  EXPECT_EQ(c->rate_limits.rules[0].chat, ChatMatch::kPrivate);
  EXPECT_EQ(c->rate_limits.shards, 4u);
  EXPECT_EQ(c->tenant_key[15], 0x0f);
  EXPECT_EQ(c->engine_shards, 8u);
  EXPECT_EQ(c->engine_sweep_interval, std::chrono::seconds(2));
  EXPECT_EQ(c->storage.l2, tiers::L2Kind::kNone);
  EXPECT_TRUE(c->telegram.IsMap());
}

TEST(GatewayConfig, ErrorsNameTheKeyPath) {
  auto expect_error = [](const std::string& yaml, const std::string& needle) {
    auto c = parse(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
  };
  expect_error("server: {listen: nowhere}", "server.listen");
  expect_error("server: {listen: '127.0.0.1:99999'}", "server.listen");
  expect_error("server: {read_timeout: soon}", "server.read_timeout");
  expect_error("server: {bogus: 1}", "server.bogus");
  expect_error("gateway: {pacing: {max_wait: forever}}", "gateway.pacing.max_wait");
  expect_error("tenant_key: xyz", "tenant_key");
  expect_error("engine: {shards: many}", "engine.shards");
  expect_error("rate_limits: {rules: {r: {limit: 0}}}", "rate_limits.rules.r.limit");
  expect_error("rate_limits: {rules: {r: {key: [planet]}}}", "rate_limits.rules.r.key: unknown attribute 'planet'");
  expect_error("rate_limits: {presets: [telegram_bus]}", "rate_limits.presets");
  expect_error("storage: {l2: memcached}", "storage.l2");
  expect_error("storage: {timeout: fast}", "storage.timeout");
  expect_error("storage: {pool_size: 0}", "storage.pool_size");
  expect_error("nonsense: 1", "nonsense");
}

TEST(GatewayConfig, StorageRedis) {
  auto c = parse(R"(
storage:
  l2: redis
  redis_url: "redis://10.0.0.5:6380/2"
  redis_password_env: CC_REDIS_PW
  connect_timeout: 50ms
  timeout: 20ms
  pool_size: 8
  compression_threshold: 4KiB
)");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->storage.l2, tiers::L2Kind::kRedis);
  EXPECT_EQ(c->storage.redis_url, "redis://10.0.0.5:6380/2");
  EXPECT_EQ(c->storage.redis_password_env, "CC_REDIS_PW");
  EXPECT_EQ(c->storage.connect_timeout, std::chrono::milliseconds(50));
  EXPECT_EQ(c->storage.timeout, std::chrono::milliseconds(20));
  EXPECT_EQ(c->storage.pool_size, 8u);
  EXPECT_EQ(c->storage.compression_threshold, 4096u);
}

// The sections the library's modules own are read by their readers: the
// same document gives the gateway what it gives the tiers and limits
// readers on their own.
TEST(GatewayConfig, ModuleSectionsMatchTheModulesReaders) {
  const char* yaml = R"(
storage: {l2: sqlite, path: /tmp/x.sqlite3, timeout: 40ms, write_behind: {max_pending: 7}}
rate_limits: {presets: [telegram_bot], rules: {per_chat: {limit: 3}}}
)";
  auto c = parse(yaml);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  YAML::Node doc = YAML::Load(yaml);
  auto storage = tiers::parse_storage_config(doc["storage"]);
  ASSERT_TRUE(storage.ok());
  EXPECT_EQ(c->storage.path, storage->path);
  EXPECT_EQ(c->storage.timeout, storage->timeout);
  EXPECT_EQ(c->storage.max_pending_writes, 7u);
  auto limits = config::parse_rate_limits(doc["rate_limits"]);
  ASSERT_TRUE(limits.ok());
  ASSERT_EQ(c->rate_limits.rules.size(), limits->rules.size());
  for (std::size_t i = 0; i < limits->rules.size(); ++i) {
    EXPECT_EQ(c->rate_limits.rules[i].name, limits->rules[i].name);
    EXPECT_EQ(c->rate_limits.rules[i].limit, limits->rules[i].limit);
  }
}

// Keys of the earlier gateway-only layouts get an error that says what to
// write instead.
TEST(GatewayConfig, EarlierLayoutsAreRefusedWithTheKeyToWrite) {
  auto expect_error = [](const std::string& yaml, const std::string& needle) {
    auto c = parse(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
  };
  expect_error("storage: {sqlite: {path: /tmp/x}}", "storage.sqlite: the storage section is flat: write storage.path");
  expect_error("storage: {redis: {url: 'redis://h:1/0'}}", "storage.redis: the storage section is flat: write storage.redis_url");
  expect_error("gateway: {tenant_key: 000102030405060708090a0b0c0d0e0f}",
               "gateway.tenant_key: the tenant key is the top-level tenant_key");
  expect_error("gateway: {pacing: {rules: [{name: r, limit: 1}]}}",
               "gateway.pacing.rules: pacing rules are the top-level rate_limits section");
}

TEST(GatewayConfig, StorageErrorsNameTheKey) {
  auto expect_error = [](const std::string& yaml, const std::string& needle) {
    auto c = parse(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
  };
  expect_error("storage: {redis_url: 'http://x'}", "storage.redis_url");
  expect_error("storage: {redis_password: hunter2}", "storage.redis_password: passwords are not read");
  expect_error("storage: {hostname: x}", "storage.hostname");
  expect_error("storage: {backoff: {initial: 1s, max: 10ms}}", "storage.backoff.max");
}

TEST(GatewayConfig, ServeMainRejectsBadStorageOptions) {
  auto run = [](std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return serve_main(static_cast<int>(argv.size()), argv.data());
  };
  EXPECT_EQ(run({"serve", "--storage", "memcached"}), 2);
  EXPECT_EQ(run({"serve", "--storage", "redis", "--redis-url", "http://127.0.0.1:1"}), 2);
}

constexpr const char* kApis = R"(
namespaces:
  sns: {ttl: 5m, max_entries: 100000, stale_ttl: 1m}
  media: {}
apis:
  - name: sns
    prefix: /sns/
    upstream: http://127.0.0.1:9000/v1
    rules:
      - {match: 'GET /templates/{id}', name: template, namespace: sns, key: [query.lang]}
      - {match: 'POST /templates/{id}', invalidates: [template]}
  - name: media
    prefix: /media/v2
    strip_prefix: false
    upstream: https://media.example
    rules:
      - {match: 'GET /media/v2/files/{id}', namespace: media, ttl: 1h}
)";

TEST(GatewayConfig, NamespacesAndApis) {
  auto c = parse(kApis);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  ASSERT_EQ(c->namespaces.size(), 2u);
  EXPECT_EQ(c->namespaces[0].name, "sns");
  EXPECT_EQ(c->namespaces[0].policy.ttl, std::chrono::minutes(5));
  EXPECT_EQ(c->namespaces[0].policy.max_entries, 100000u);
  EXPECT_EQ(c->namespaces[0].policy.stale_ttl, std::chrono::minutes(1));
  EXPECT_EQ(c->namespaces[1].name, "media");
  ASSERT_EQ(c->apis.size(), 2u);
  EXPECT_EQ(c->apis[0].name, "sns");
  EXPECT_EQ(c->apis[0].prefix, "/sns");  // trailing '/' dropped
  EXPECT_TRUE(c->apis[0].strip_prefix);
  EXPECT_EQ(c->apis[0].upstream, "http://127.0.0.1:9000/v1");
  ASSERT_EQ(c->apis[0].rules.rules.size(), 2u);
  EXPECT_EQ(c->apis[0].rules.rules[0].name, "template");
  EXPECT_EQ(c->apis[0].rules.rules[0].origin, "apis[0].rules[0]");
  EXPECT_FALSE(c->apis[1].strip_prefix);
  EXPECT_EQ(c->apis[1].rules.rules[0].ttl, std::chrono::hours(1));
}

TEST(GatewayConfig, ShippedSnsExampleParses) {
  const char* src = std::getenv("CALLCACHE_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  auto c = load_config_file(std::string(src) + "/config/sns_example.yaml");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  ASSERT_EQ(c->apis.size(), 1u);
  EXPECT_EQ(c->apis[0].prefix, "/sns");
  EXPECT_EQ(c->apis[0].rules.namespaces_used(), (std::vector<std::string>{"sns", "sns_public"}));
}

// The commented `namespaces:`/`apis:` example at the end of the shipped
// config must stay true: uncommented, it parses.
TEST(GatewayConfig, ShippedConfigApisExampleParsesWhenUncommented) {
  const char* src = std::getenv("CALLCACHE_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  std::ifstream in(std::string(src) + "/config/callcache.yaml");
  std::string line, text;
  bool in_example = false;
  int uncommented = 0;
  while (std::getline(in, line)) {
    if (line.starts_with("# Generic JSON APIs")) in_example = true;
    if (in_example && (line.starts_with("# namespaces:") || line.starts_with("# apis:") ||
                       line.starts_with("#   "))) {
      line = line.substr(2);
      ++uncommented;
    }
    text += line + "\n";
  }
  ASSERT_GT(uncommented, 5);
  auto c = parse(text);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  ASSERT_EQ(c->apis.size(), 1u);
  EXPECT_EQ(c->apis[0].prefix, "/sns");
  EXPECT_EQ(c->apis[0].rules.rules.size(), 2u);
}

TEST(GatewayConfig, ApiErrorsNameTheKeyPathAndValue) {
  auto expect_error = [](const std::string& yaml, const std::string& needle) {
    auto c = parse(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
  };
  const std::string ns = "namespaces: {sns: {ttl: 5m}, other: {}}\n";
  auto api = [](const std::string& fields) { return "  - {" + fields + "}\n"; };
  const std::string ok_rule = "rules: [{match: 'GET /t/{id}', namespace: sns}]";
  // Unknown namespace (declared or not at all).
  expect_error(ns + "apis:\n" + api("name: a, prefix: /a, upstream: 'http://h', rules: "
                                    "[{match: GET /t, namespace: nope}]"),
               "apis[0].rules[0].namespace: unknown namespace 'nope' (declared: sns, other)");
  expect_error("apis:\n" + api("name: a, prefix: /a, upstream: 'http://h', " + ok_rule),
               "apis[0].rules[0].namespace: unknown namespace 'sns' (declared: none)");
  // Overlapping and shadowing prefixes.
  expect_error(ns + "apis:\n" + api("name: a, prefix: /sns, upstream: 'http://h'") +
                   api("name: b, prefix: /sns/v2, upstream: 'http://h'"),
               "apis[1].prefix: '/sns/v2' overlaps apis[0].prefix '/sns'");
  expect_error(ns + "apis:\n" + api("name: a, prefix: /x, upstream: 'http://h'") +
                   api("name: b, prefix: /x/, upstream: 'http://h'"),
               "apis[1].prefix: '/x' overlaps apis[0].prefix '/x'");
  expect_error("apis:\n" + api("name: a, prefix: /bot, upstream: 'http://h'"),
               "apis[0].prefix: '/bot' would shadow the Bot API routes");
  expect_error("apis:\n" + api("name: a, prefix: /bots/v1, upstream: 'http://h'"),
               "apis[0].prefix: '/bots/v1' would shadow");
  expect_error("apis:\n" + api("name: a, prefix: /file, upstream: 'http://h'"),
               "apis[0].prefix: '/file' would shadow the Bot API file routes");
  expect_error("apis:\n" + api("name: a, prefix: /file/bot1, upstream: 'http://h'"),
               "would shadow the Bot API file routes");
  expect_error("apis:\n" + api("name: a, prefix: /, upstream: 'http://h'"),
               "apis[0].prefix: '/' would capture every request");
  expect_error("apis:\n" + api("name: a, prefix: sns, upstream: 'http://h'"),
               "apis[0].prefix: expected a path such as /sns, got 'sns'");
  expect_error("apis:\n" + api("name: a, prefix: '/s?x', upstream: 'http://h'"), "apis[0].prefix");
  expect_error("apis:\n" + api("name: a, prefix: '/a/../b', upstream: 'http://h'"), "apis[0].prefix");
  // Names, required keys, unknown keys, rule errors with their full path.
  expect_error("apis:\n" + api("name: a, prefix: /a, upstream: 'http://h'") +
                   api("name: a, prefix: /b, upstream: 'http://h'"),
               "apis[1].name: 'a' is already used by apis[0]");
  expect_error("apis:\n" + api("name: 'S N S', prefix: /a, upstream: 'http://h'"),
               "apis[0].name: use a-z, 0-9, '_' and '-', got 'S N S'");
  expect_error("apis:\n" + api("name: a, prefix: /a"), "apis[0].upstream: is required");
  expect_error("apis:\n" + api("prefix: /a, upstream: 'http://h'"), "apis[0].name: is required");
  expect_error("apis:\n" + api("name: a, prefix: /a, upstream: 'http://h', colour: red"),
               "apis[0].colour");
  expect_error("apis:\n" + api("name: a, prefix: /a, upstream: 'http://h', rules: [{match: "
                               "templates, namespace: sns}]"),
               "apis[0].rules[0].match: expected 'METHOD /path', got 'templates'");
  expect_error("apis: {name: a}", "apis: expected a list");
  // A namespace belongs to one API.
  expect_error(ns + "apis:\n" + api("name: a, prefix: /a, upstream: 'http://h', " + ok_rule) +
                   api("name: b, prefix: /b, upstream: 'http://h', " + ok_rule),
               "apis[1].rules[0].namespace: 'sns' is already used by apis[0]");
  // Namespace policies use the engine's keys and messages.
  expect_error("namespaces: {sns: {ttl: soon}}", "namespaces.sns.ttl");
  expect_error("namespaces: {sns: {max_entries: 0}}", "namespaces.sns.max_entries");
  expect_error("namespaces: {sns: {colour: red}}", "namespaces.sns.colour");
  expect_error("namespaces: {'a:b': {}}", "namespace names use a-z");
}

TEST(GatewayConfig, ParseListen) {
  EXPECT_TRUE(parse_listen("127.0.0.1:0", "x").ok());
  EXPECT_TRUE(parse_listen("[::1]:8081", "x").ok());
  EXPECT_FALSE(parse_listen("8081", "x").ok());
  EXPECT_FALSE(parse_listen(":8081", "x").ok());
  EXPECT_FALSE(parse_listen("host:", "x").ok());
}

TEST(GatewayConfig, StreamThreshold) {
  auto d = parse_config(YAML::Node());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->stream_threshold, 256u * 1024);
  auto c = parse("server: {stream_threshold: 1MiB}");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->stream_threshold, 1u << 20);
  auto off = parse("server: {stream_threshold: 0}");
  ASSERT_TRUE(off.ok()) << off.status().to_string();
  EXPECT_EQ(off->stream_threshold, 0u);
  auto bad = parse("server: {stream_threshold: big}");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("server.stream_threshold"), std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("big"), std::string::npos) << bad.status().message();
}

}  // namespace config_test
}  // namespace callcache::gateway
