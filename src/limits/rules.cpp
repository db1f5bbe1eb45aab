// The rule model shared by every RateLimiter implementation: matching, key
// building, validation and the presets.
#include <algorithm>
#include <charconv>
#include <limits>
#include <set>

#include "callcache/rate_limiter.h"
#include "method_name.h"

namespace callcache {
namespace {

// Method names compare case-insensitively (method_name.h).
bool contains(const std::vector<std::string>& v, std::string_view method) {
  return std::any_of(v.begin(), v.end(),
                     [&](const std::string& m) { return limits::same_method(m, method); });
}

// Appends "<tag><decimal length>:<value>". Hot (once per rule per call), so
// the length is written by hand rather than through to_chars.
void append_part(std::string& out, char tag, std::string_view value, bool lowercase = false) {
  char buf[24];
  char* end = buf + sizeof buf;
  char* p = end;
  *--p = ':';
  std::size_t n = value.size();
  do {
    *--p = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n);
  *--p = tag;
  out.append(p, static_cast<std::size_t>(end - p));
  if (lowercase) {
    limits::append_method(out, value);
  } else {
    out.append(value);
  }
}

Rule interval_rule(std::string name, Duration interval, KeyScope key,
                   std::vector<std::string> methods, std::vector<std::string> except = {}) {
  Rule r;
  r.name = std::move(name);
  r.limit = 1;
  r.period = interval;
  r.burst = 1;
  r.key = key;
  r.methods = std::move(methods);
  r.except_methods = std::move(except);
  return r;
}

// The seeds' per-method minimum intervals, keyed by `key`.
std::vector<Rule> seeds_intervals(KeyScope key) {
  using std::chrono::milliseconds;
  std::vector<Rule> rules;
  rules.push_back(interval_rule("get_entity", milliseconds(3000), key, {"get_entity"}));
  rules.push_back(interval_rule("get_messages", milliseconds(300), key, {"get_messages"}));
  rules.push_back(interval_rule("send_reaction", milliseconds(500), key, {"send_reaction"}));
  rules.push_back(interval_rule("send_message", milliseconds(500), key, {"send_message"}));
  rules.push_back(interval_rule("default", milliseconds(200), key, {},
                                {"get_entity", "get_messages", "send_reaction", "send_message"}));
  return rules;
}

}  // namespace

bool rule_matches(const Rule& rule, const CallAttributes& call) {
  using namespace key_scope;
  if ((rule.key & kMethod) && call.method.empty()) return false;
  if ((rule.key & kAccount) && call.account.empty()) return false;
  if ((rule.key & kBot) && call.bot.empty()) return false;
  if ((rule.key & kChat) && !call.chat) return false;
  switch (rule.chat) {
    case ChatMatch::kAny:
      break;
    case ChatMatch::kPrivate:
      if (!call.chat || *call.chat <= 0) return false;
      break;
    case ChatMatch::kGroup:
      if (!call.chat || *call.chat >= 0) return false;
      break;
  }
  if (rule.paid == PaidMatch::kPaid && !call.paid) return false;
  if (rule.paid == PaidMatch::kUnpaid && call.paid) return false;
  if (!rule.methods.empty() && !contains(rule.methods, call.method)) return false;
  if (contains(rule.except_methods, call.method)) return false;
  return true;
}

Duration emission_interval(const Rule& rule) {
  const auto period = rule.period.count();
  const auto limit = static_cast<std::int64_t>(rule.limit);
  return Duration(period / limit + (period % limit != 0 ? 1 : 0));
}

void append_scope_key(std::string& out, std::string_view prefix, KeyScope scope,
                      const CallAttributes& call) {
  using namespace key_scope;
  append_part(out, 'r', prefix);
  if (scope & kMethod) append_part(out, 'm', call.method, /*lowercase=*/true);
  if (scope & kAccount) append_part(out, 'a', call.account);
  if (scope & kBot) append_part(out, 'b', call.bot);
  if (scope & kChat) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, call.chat.value_or(0));
    (void)ec;
    out += 'c';
    out.append(digits, end);
    out += ';';
  }
  if (scope & kPaid) out += call.paid ? "p1" : "p0";
}

Status validate_rules(const std::vector<Rule>& rules) {
  std::set<std::string, std::less<>> names;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const Rule& r = rules[i];
    const std::string where = "rule #" + std::to_string(i + 1) +
                              (r.name.empty() ? std::string() : " '" + r.name + "'");
    if (r.name.empty()) return Status::invalid_argument(where + ": name must not be empty");
    if (!names.insert(r.name).second) {
      return Status::invalid_argument(where + ": name '" + r.name + "' is used by another rule");
    }
    if (r.limit == 0) return Status::invalid_argument(where + ": limit must be at least 1, got 0");
    if (r.limit > static_cast<std::uint64_t>(r.period.count()) && r.period.count() > 0) {
      return Status::invalid_argument(where + ": limit " + std::to_string(r.limit) +
                                      " is more than one call per nanosecond of the period");
    }
    if (r.period <= Duration::zero()) {
      return Status::invalid_argument(where + ": period must be greater than zero, got " +
                                      std::to_string(r.period.count()) + "ns");
    }
    if (r.burst == 0) return Status::invalid_argument(where + ": burst must be at least 1, got 0");
    if (r.burst > 1'000'000'000) {
      return Status::invalid_argument(where + ": burst " + std::to_string(r.burst) + " is too large");
    }
    if (r.burst > 1 && emission_interval(r).count() >
                           std::numeric_limits<std::int64_t>::max() / 4 /
                               static_cast<std::int64_t>(r.burst - 1)) {
      return Status::invalid_argument(where + ": burst " + std::to_string(r.burst) + " times period/limit exceeds the time range");
    }
    if (r.key & ~key_scope::kAll) {
      return Status::invalid_argument(where + ": unknown key scope bits " + std::to_string(r.key));
    }
    for (const auto& m : r.methods) {
      if (contains(r.except_methods, m)) {
        return Status::invalid_argument(where + ": method '" + m +
                                        "' is in both methods and except_methods");
      }
    }
  }
  return Status();
}

const std::vector<std::string>& telegram_send_methods() {
  static const std::vector<std::string> methods = {
      "sendMessage",  "sendPhoto",    "sendAudio",      "sendDocument",    "sendVideo",
      "sendAnimation", "sendVoice",   "sendVideoNote",  "sendPaidMedia",   "sendMediaGroup",
      "sendLocation", "sendVenue",    "sendContact",    "sendPoll",        "sendDice",
      "sendSticker",  "sendInvoice",  "sendGame",       "forwardMessage",  "forwardMessages",
      "copyMessage",  "copyMessages",
  };
  return methods;
}

std::vector<Rule> telegram_bot_preset() {
  using namespace key_scope;
  std::vector<Rule> rules;
  Rule bot;
  bot.name = "bot";
  bot.limit = 30;
  bot.period = std::chrono::seconds(1);
  bot.key = kBot;
  bot.methods = telegram_send_methods();
  bot.paid = PaidMatch::kUnpaid;
  rules.push_back(bot);

  Rule paid = bot;
  paid.name = "bot_paid_broadcast";
  paid.limit = 1000;
  paid.paid = PaidMatch::kPaid;
  rules.push_back(paid);

  Rule private_chat;
  private_chat.name = "private_chat";
  private_chat.limit = 1;
  private_chat.period = std::chrono::seconds(1);
  private_chat.key = kBot | kChat;
  private_chat.methods = telegram_send_methods();
  private_chat.chat = ChatMatch::kPrivate;
  rules.push_back(private_chat);

  Rule group = private_chat;
  group.name = "group_chat";
  group.limit = 20;
  group.period = std::chrono::minutes(1);
  group.chat = ChatMatch::kGroup;
  rules.push_back(group);
  return rules;
}

std::vector<Rule> telegram_user_preset() { return seeds_intervals(key_scope::kAccount | key_scope::kMethod); }

std::vector<Rule> seeds_global_preset() { return seeds_intervals(key_scope::kMethod); }

}  // namespace callcache
