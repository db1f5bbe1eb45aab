#include "scope_config.h"

#include <gtest/gtest.h>

#include <chrono>

namespace callcache::config {
namespace scope_config_test {

using namespace std::chrono_literals;

Result<ScopeSettings> parse(const std::string& yaml) {
  auto node = load_string(yaml);
  if (!node.ok()) return node.status();
  return parse_scope_settings(*node);
}

TEST(ScopeConfig, ReadsEverySetting) {
  auto s = parse(R"(
cache:
  scope: process
  namespaces: {}        # another section's key: left alone
process:
  max_size: 10000
  cleanup_interval: 5m
per_account:
  max_entries: 200
gateway: {listen: 8080}  # other sections are not ours to judge
)");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->scope, CacheScope::kProcess);
  EXPECT_EQ(s->process_max_entries, 10000u);
  EXPECT_EQ(s->cleanup_interval, 5min);
  EXPECT_EQ(s->per_tenant_max_entries, 200u);
}

TEST(ScopeConfig, AbsentKeysKeepTheDefaults) {
  auto s = parse("cache: {}\n");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ScopeSettings d;
  EXPECT_EQ(s->scope, d.scope);
  EXPECT_EQ(s->process_max_entries, d.process_max_entries);
  EXPECT_EQ(s->cleanup_interval, d.cleanup_interval);
  EXPECT_EQ(s->per_tenant_max_entries, d.per_tenant_max_entries);
  EXPECT_TRUE(parse("{}").ok());
}

void expect_error(const std::string& yaml, const std::string& fragment) {
  auto s = parse(yaml);
  ASSERT_FALSE(s.ok()) << yaml;
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
  EXPECT_NE(s.status().message().find(fragment), std::string::npos)
      << "'" << s.status().message() << "' lacks '" << fragment << "'";
}

TEST(ScopeConfig, ErrorsNameTheKeyPathAndTheValue) {
  expect_error("cache: {scope: global}\n", "cache.scope");
  expect_error("cache: {scope: global}\n", "global");
  expect_error("cache: {scope: isolated}\n", "cache.scope");  // not a registry scope
  expect_error("process: {max_size: -5}\n", "process.max_size");
  expect_error("process: {max_size: lots}\n", "lots");
  expect_error("process: {cleanup_interval: 0}\n", "process.cleanup_interval");
  expect_error("process: {cleanup_interval: 5 minutes}\n", "process.cleanup_interval");
  expect_error("process: {max_sise: 10}\n", "process.max_sise");  // typo: unknown key
  expect_error("per_account: {max_entries: 1.5}\n", "per_account.max_entries");
  expect_error("per_account: {max_entrys: 3}\n", "per_account.max_entrys");
  expect_error("per_account: 3\n", "per_account");
}

TEST(ScopeConfig, SettingsFeedTheRegistry) {
  auto s = parse("cache: {scope: process}\nper_account: {max_entries: 2}\n");
  ASSERT_TRUE(s.ok());
  ScopeOptions o;
  o.settings = *s;
  auto reg = ScopeRegistry::create(std::move(o));
  ASSERT_TRUE(reg.ok()) << reg.status().to_string();
  auto e = (*reg)->process_engine();
  EXPECT_EQ(e->policy(e->find("entity").value()).max_entries_per_tenant, 2u);
}

}  // namespace scope_config_test
}  // namespace callcache::config
