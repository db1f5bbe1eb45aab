// The rate_limits and account_locks config sections: presets, overrides, and
// errors that name the key path and the value.
#include "limits_config.h"

#include <gtest/gtest.h>

namespace callcache::config {
namespace limits_config_test {

YAML::Node yaml(const std::string& text) {
  auto n = load_string(text);
  EXPECT_TRUE(n.ok()) << n.status().to_string();
  return n.ok() ? *n : YAML::Node();
}

std::string rate_error(const std::string& text) {
  auto r = parse_rate_limits(yaml(text));
  EXPECT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  return r.status().message();
}

const Rule* find(const std::vector<Rule>& rules, std::string_view name) {
  for (const auto& r : rules) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

TEST(LimitsConfig, ReadsRulesAndPresets) {
  auto r = parse_rate_limits(yaml(R"(
presets: [telegram_bot]
shards: 8
sweep_interval: 5s
rules:
  group_chat:            # replaces the preset's rule of that name
    limit: 15
  per_account_method:
    interval: 250ms
    key: [account, method]
    methods: [get_entity, get_messages]
  others:
    interval: 200ms
    key: [account, method]
    except_methods: [get_entity, get_messages]
  broadcast:
    limit: 100
    period: 1m
    burst: 10
    key: [bot, paid]
    methods: ["@telegram_send"]
    chat: group
    paid: yes
)"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->shards, 8u);
  EXPECT_EQ(r->sweep_interval, std::chrono::seconds(5));
  ASSERT_EQ(r->rules.size(), 7u);
  const Rule* group = find(r->rules, "group_chat");
  ASSERT_NE(group, nullptr);
  EXPECT_EQ(group->limit, 15u);
  EXPECT_EQ(group->period, std::chrono::minutes(1));  // kept from the preset
  EXPECT_EQ(group->chat, ChatMatch::kGroup);
  const Rule* pam = find(r->rules, "per_account_method");
  ASSERT_NE(pam, nullptr);
  EXPECT_EQ(pam->limit, 1u);
  EXPECT_EQ(pam->period, std::chrono::milliseconds(250));
  EXPECT_EQ(pam->key, key_scope::kAccount | key_scope::kMethod);
  EXPECT_EQ(pam->methods, (std::vector<std::string>{"get_entity", "get_messages"}));
  const Rule* b = find(r->rules, "broadcast");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->burst, 10u);
  EXPECT_EQ(b->key, key_scope::kBot | key_scope::kPaid);
  EXPECT_EQ(b->methods, telegram_send_methods());
  const Rule* others = find(r->rules, "others");
  ASSERT_NE(others, nullptr);
  EXPECT_TRUE(others->methods.empty());
  EXPECT_EQ(others->except_methods, (std::vector<std::string>{"get_entity", "get_messages"}));
  EXPECT_EQ(b->paid, PaidMatch::kPaid);
  // The options build a working limiter.
  EXPECT_TRUE(make_local_rate_limiter(std::move(r).value()).ok());
}

TEST(LimitsConfig, AbsentSectionMeansNoRules) {
  auto r = parse_rate_limits(YAML::Node());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->rules.empty());
  auto l = parse_account_locks(YAML::Node());
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->mode, LockMode::kStrict);
  EXPECT_EQ(l->wait_timeout, Duration::zero());
}

TEST(LimitsConfig, ErrorsNameTheKeyPathAndValue) {
  EXPECT_EQ(rate_error("rules: {per_chat: {key: [bot, chan]}}"),
            "rate_limits.rules.per_chat.key: unknown attribute 'chan' (expected one of method, "
            "account, chat, bot, paid, or global)");
  EXPECT_EQ(rate_error("rules: {r: {limit: 0}}"),
            "rate_limits.rules.r.limit: must be greater than zero, got '0'");
  EXPECT_EQ(rate_error("rules: {r: {limit: -3}}"),
            "rate_limits.rules.r.limit: expected a non-negative whole number, got '-3'");
  EXPECT_NE(rate_error("rules: {r: {period: 5 minutes}}")
                .find("rate_limits.rules.r.period: expected a duration"),
            std::string::npos);
  EXPECT_EQ(rate_error("rules: {r: {interval: 1s, limit: 2}}"),
            "rate_limits.rules.r.interval: give either interval or limit and period, not both");
  EXPECT_EQ(rate_error("rules: {r: {chat: groups}}"),
            "rate_limits.rules.r.chat: expected one of any, private, group, got 'groups'");
  EXPECT_EQ(rate_error("rules: {r: {paid: maybe}}"),
            "rate_limits.rules.r.paid: expected one of any, yes, no, got 'maybe'");
  EXPECT_EQ(rate_error("presets: [telegram]"),
            "rate_limits.presets: unknown preset 'telegram' (expected one of telegram_bot, "
            "telegram_user, seeds_global)");
  EXPECT_NE(rate_error("rules: {r: {limits: 3}}").find("rate_limits.rules.r.limits: unknown key"),
            std::string::npos);
  EXPECT_NE(rate_error("rule: {}").find("rate_limits.rule: unknown key"), std::string::npos);
  EXPECT_NE(rate_error("rules: {r: 5}").find("rate_limits.rules.r: expected a mapping"),
            std::string::npos);
  EXPECT_EQ(rate_error("rules: {r: {methods: ['@sends']}}"),
            "rate_limits.rules.r.methods: unknown method group '@sends' (expected @telegram_send)");
  EXPECT_EQ(rate_error("rules: {r: {methods: [a], except_methods: [a]}}"),
            "rate_limits.rules: rule #1 'r': method 'a' is in both methods and except_methods");
  EXPECT_EQ(rate_error("shards: 0"), "rate_limits.shards: must be greater than zero, got '0'");
}

TEST(LimitsConfig, AccountLocks) {
  auto l = parse_account_locks(yaml("mode: warn\nwait_timeout: 30s\n"));
  ASSERT_TRUE(l.ok()) << l.status().to_string();
  EXPECT_EQ(l->mode, LockMode::kWarn);
  EXPECT_EQ(l->wait_timeout, std::chrono::seconds(30));
  auto bad = parse_account_locks(yaml("mode: lenient\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "account_locks.mode: expected one of strict, warn, got 'lenient'");
  auto bad2 = parse_account_locks(yaml("wait_timeout: soon\n"));
  ASSERT_FALSE(bad2.ok());
  EXPECT_NE(bad2.status().message().find("account_locks.wait_timeout: expected a duration"),
            std::string::npos);
}

}  // namespace limits_config_test
}  // namespace callcache::config
