#include "callcache/config.h"

#include <gtest/gtest.h>

namespace callcache {
namespace engine_config_test {

using namespace std::chrono_literals;

const NamespacePolicy& find(const EngineConfig& c, const std::string& name) {
  for (const auto& s : c.namespaces) {
    if (s.name == name) return s.policy;
  }
  throw std::runtime_error("no namespace " + name);
}

TEST(EngineConfig, DefaultsMirrorTheSeeds) {
  auto c = parse_engine_config("{}");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(find(*c, "entity").ttl, 300s);
  EXPECT_EQ(find(*c, "message").ttl, 60s);
  EXPECT_EQ(find(*c, "full_channel").ttl, 600s);
  EXPECT_EQ(find(*c, "discussion").ttl, 300s);
  EXPECT_EQ(find(*c, "input_peer").ttl, 300s);
  EXPECT_EQ(find(*c, "entity").max_entries, 500u);
}

TEST(EngineConfig, OverridesAndNewNamespaces) {
  auto c = parse_engine_config(R"(
tenant_key: 000102030405060708090a0b0c0d0e0f
engine: {shards: 4, sweep_interval: 250ms}
namespaces:
  entity: {ttl: 5m, max_entries: 1000, eviction: lru, stale_ttl: 1m, jitter: 0.1}
  analytics: {ttl: 1h, max_bytes: 10MB, shared: true, max_entries_per_tenant: 0}
)");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(find(*c, "entity").max_entries, 1000u);
  EXPECT_EQ(find(*c, "entity").eviction, EvictionPolicy::kLru);
  EXPECT_EQ(find(*c, "entity").stale_ttl, 60s);
  EXPECT_EQ(find(*c, "analytics").max_bytes, 10u * 1024 * 1024);
  EXPECT_TRUE(find(*c, "analytics").shared);
  EXPECT_EQ(c->shards, 4u);
  EXPECT_EQ(c->sweep_interval, 250ms);
  EXPECT_EQ(c->tenant_key[15], 0x0f);
  EXPECT_TRUE(Engine::create(c->engine_options()).ok());
}

void expect_error(const std::string& yaml, const std::string& path, const std::string& value) {
  auto c = parse_engine_config(yaml);
  ASSERT_FALSE(c.ok()) << yaml;
  EXPECT_NE(c.status().message().find(path), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find(value), std::string::npos) << c.status().message();
}

TEST(EngineConfig, BadFilesNameTheKeyAndValue) {
  expect_error("namespaces: {entity: {ttl: soon}}", "namespaces.entity.ttl", "soon");
  expect_error("namespaces: {entity: {ttl: -5s}}", "namespaces.entity.ttl", "-5s");
  expect_error("namespaces: {entity: {max_entries: 0}}", "namespaces.entity.max_entries", "0");
  expect_error("namespaces: {entity: {max_entries: -3}}", "namespaces.entity.max_entries", "-3");
  expect_error("namespaces: {entity: {max_entries: many}}", "namespaces.entity.max_entries", "many");
  expect_error("namespaces: {entity: {ttll: 5}}", "namespaces.entity.ttll", "unknown key");
  expect_error("namespaces: {entity: {eviction: fifo}}", "namespaces.entity.eviction", "fifo");
  expect_error("namespaces: {entity: {jitter: 2}}", "namespaces.entity.jitter", "2");
  expect_error("namespaces: {entity: {ttl: 10s, refresh_ahead: 20s}}", "namespaces.entity", "refresh_ahead");
  expect_error("namespaces: {entity: [1, 2]}", "namespaces.entity", "mapping");
  expect_error("engine: {shards: x}", "engine.shards", "x");
  expect_error("tenant_key: abc", "tenant_key", "32 hex digits");
}

TEST(EngineConfig, MissingFileAndMalformedYaml) {
  auto c = load_engine_config("/nonexistent/callcache.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/callcache.yaml"), std::string::npos);
  auto m = parse_engine_config("namespaces: {entity: {ttl: 5}");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("line"), std::string::npos);
}

}  // namespace engine_config_test
}  // namespace callcache
