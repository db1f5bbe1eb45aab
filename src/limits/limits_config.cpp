#include "limits_config.h"

#include <algorithm>

namespace callcache::config {
namespace {

void read_key_scope(MapReader& r, KeyScope& out) {
  if (!r.has("key")) return;
  std::vector<std::string> parts;
  r.string_list("key", parts);
  if (!r.error().ok()) return;
  KeyScope scope = key_scope::kGlobal;
  for (const auto& p : parts) {
    KeyScope bit = 0;
    if (p == "method") bit = key_scope::kMethod;
    else if (p == "account") bit = key_scope::kAccount;
    else if (p == "chat") bit = key_scope::kChat;
    else if (p == "bot") bit = key_scope::kBot;
    else if (p == "paid") bit = key_scope::kPaid;
    else if (p == "global" && parts.size() == 1) bit = key_scope::kGlobal;
    else {
      return r.fail("key", "unknown attribute '" + p +
                               "' (expected one of method, account, chat, bot, paid, or global)");
    }
    scope |= bit;
  }
  out = scope;
}

void read_methods(MapReader& r, std::string_view key, std::vector<std::string>& out) {
  if (!r.has(key)) return;
  std::vector<std::string> raw;
  r.string_list(key, raw);
  if (!r.error().ok()) return;
  std::vector<std::string> methods;
  for (const auto& m : raw) {
    if (m == "@telegram_send") {
      const auto& send = telegram_send_methods();
      methods.insert(methods.end(), send.begin(), send.end());
    } else if (m.empty()) {
      return r.fail(key, "method names must not be empty");
    } else if (m[0] == '@') {
      return r.fail(key, "unknown method group '" + m + "' (expected @telegram_send)");
    } else {
      methods.push_back(m);
    }
  }
  out = std::move(methods);
}

Rule read_rule(MapReader& r, const std::string& name, const Rule* base) {
  Rule rule = base ? *base : Rule{};
  rule.name = name;
  if (r.has("interval") && (r.has("limit") || r.has("period"))) {
    r.fail("interval", "give either interval or limit and period, not both");
    return rule;
  }
  if (r.has("interval")) {
    Duration interval{};
    r.duration("interval", interval, /*allow_zero=*/false);
    rule.limit = 1;
    rule.period = interval;
  }
  r.count("limit", rule.limit, /*allow_zero=*/false);
  r.duration("period", rule.period, /*allow_zero=*/false);
  r.count("burst", rule.burst, /*allow_zero=*/false);
  read_key_scope(r, rule.key);
  read_methods(r, "methods", rule.methods);
  read_methods(r, "except_methods", rule.except_methods);
  r.choice("chat", rule.chat,
           {{"any", ChatMatch::kAny}, {"private", ChatMatch::kPrivate}, {"group", ChatMatch::kGroup}});
  r.choice("paid", rule.paid,
           {{"any", PaidMatch::kAny}, {"yes", PaidMatch::kPaid}, {"no", PaidMatch::kUnpaid}});
  r.merge(r.finish());
  return rule;
}

}  // namespace

void read_rate_limits(MapReader& r, RateLimiterOptions& out) {
  std::vector<Rule> rules;
  std::vector<std::string> presets;
  // (has() first: MapReader::string_list reports an absent key as a type error.)
  if (r.has("presets")) r.string_list("presets", presets);
  for (const auto& p : presets) {
    std::vector<Rule> add;
    if (p == "telegram_bot") add = telegram_bot_preset();
    else if (p == "telegram_user") add = telegram_user_preset();
    else if (p == "seeds_global") add = seeds_global_preset();
    else {
      return r.fail("presets", "unknown preset '" + p +
                                   "' (expected one of telegram_bot, telegram_user, seeds_global)");
    }
    rules.insert(rules.end(), add.begin(), add.end());
  }
  std::uint64_t shards = out.shards;
  r.count("shards", shards, /*allow_zero=*/false);
  if (shards > 65536) return r.fail("shards", "must be at most 65536, got '" + std::to_string(shards) + "'");
  out.shards = static_cast<std::size_t>(shards);
  r.duration("sweep_interval", out.sweep_interval, /*allow_zero=*/false);

  MapReader rules_reader = r.map("rules");
  for (const auto& name : rules_reader.keys()) {
    if (!r.error().ok() || !rules_reader.error().ok()) break;
    if (name.empty()) {
      rules_reader.fail(name, "a rule name must not be empty");
      break;
    }
    auto existing = std::find_if(rules.begin(), rules.end(), [&](const Rule& x) { return x.name == name; });
    MapReader rule_reader = rules_reader.map(name);
    Rule rule = read_rule(rule_reader, name, existing != rules.end() ? &*existing : nullptr);
    rules_reader.merge(rule_reader.error());
    if (existing != rules.end()) *existing = std::move(rule);
    else rules.push_back(std::move(rule));
  }
  r.merge(rules_reader.finish());
  if (!r.error().ok()) return;
  if (Status s = validate_rules(rules); !s.ok()) {
    return r.fail("rules", s.message());
  }
  out.rules = std::move(rules);
}

void read_account_locks(MapReader& r, AccountLockOptions& out) {
  r.choice("mode", out.mode, {{"strict", LockMode::kStrict}, {"warn", LockMode::kWarn}});
  r.duration("wait_timeout", out.wait_timeout);
}

Result<RateLimiterOptions> parse_rate_limits(const YAML::Node& node, const std::string& path) {
  MapReader r(node, path);
  RateLimiterOptions out;
  read_rate_limits(r, out);
  if (Status s = r.finish(); !s.ok()) return s;
  return out;
}

Result<AccountLockOptions> parse_account_locks(const YAML::Node& node, const std::string& path) {
  MapReader r(node, path);
  AccountLockOptions out;
  read_account_locks(r, out);
  if (Status s = r.finish(); !s.ok()) return s;
  return out;
}

}  // namespace callcache::config
