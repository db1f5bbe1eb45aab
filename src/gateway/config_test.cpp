// The gateway's YAML config: defaults, the shipped config/callcache.yaml, and
// errors that name the key path.
#include "gateway/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace callcache::gateway {
namespace {

Result<GatewayConfig> parse(const std::string& yaml) { return parse_config(YAML::Load(yaml)); }

TEST(GatewayConfig, EmptyDocumentGivesDefaults) {
  auto c = parse_config(YAML::Node());
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->listen.to_string(), "127.0.0.1:8081");
  EXPECT_EQ(c->admin_listen.to_string(), "127.0.0.1:8082");
  EXPECT_EQ(c->upstream, "https://api.telegram.org");
  EXPECT_EQ(c->l2, "sqlite");
  EXPECT_TRUE(c->pacing_rules.empty());
}

TEST(GatewayConfig, ShippedConfigParses) {
  const char* src = std::getenv("CALLCACHE_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  auto c = load_config_file(std::string(src) + "/config/callcache.yaml");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->listen.port, 8081);
  EXPECT_EQ(c->sqlite_path, "./data/callcache.sqlite3");
  EXPECT_TRUE(c->verify_peer);
}

TEST(GatewayConfig, ValuesAndRules) {
  auto c = parse(R"(
server: {listen: "0.0.0.0:9000", threads: 3, max_body_bytes: 1MiB, access_log: false}
admin: {listen: "127.0.0.1:0", token: s3cret}
gateway:
  upstream: http://127.0.0.1:1234
  tenant_key: 000102030405060708090a0b0c0d0e0f
  pacing:
    max_wait: 250ms
    rules:
      - {name: per_chat, limit: 2, period: 1s, key: [bot, chat], chat: private}
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
  ASSERT_EQ(c->pacing_rules.size(), 1u);
  EXPECT_EQ(c->pacing_rules[0].limit, 2u);
  EXPECT_EQ(c->pacing_rules[0].key, key_scope::kBot | key_scope::kChat);
  EXPECT_EQ(c->tenant_key[15], 0x0f);
  EXPECT_EQ(c->l2, "none");
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
  expect_error("gateway: {tenant_key: xyz}", "gateway.tenant_key");
  expect_error("gateway: {pacing: {rules: [{name: r, limit: 0}]}}", "gateway.pacing.rules[0].limit");
  expect_error("gateway: {pacing: {rules: [{name: r, key: [planet]}]}}", "planet");
  expect_error("storage: {l2: memcached}", "storage.l2");
  expect_error("nonsense: 1", "nonsense");
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

}  // namespace
}  // namespace callcache::gateway
