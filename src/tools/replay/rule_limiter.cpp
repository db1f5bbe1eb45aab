#include "rule_limiter.h"

#include <algorithm>

namespace callcache::replay {

RuleLimiter::RuleLimiter(std::vector<LimitRule> rules) : rules_(std::move(rules)) {}

std::vector<RuleLimiter::Match> RuleLimiter::matches(const CallKey& c) const {
  std::vector<Match> out;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const LimitRule& r = rules_[i];
    std::string method_part;
    if (r.method == c.method) {
      method_part = r.method;
    } else if (r.method == "any") {
      method_part = "*";
    } else if (r.method == "default") {
      bool named = std::any_of(rules_.begin(), rules_.end(), [&](const LimitRule& o) {
        return o.per == r.per && o.method == c.method;
      });
      if (named) continue;
      method_part = std::string(c.method);
    } else {
      continue;
    }
    std::string scope;
    switch (r.per) {
      case Per::kAccount:
        scope = std::string(c.account);
        break;
      case Per::kGroup:
        scope = std::string(c.group);
        break;
      case Per::kAccountGroup:
        scope = std::string(c.account) + "|" + std::string(c.group);
        break;
      case Per::kObject:
        scope = std::string(c.object);
        break;
      case Per::kGlobal:
        break;
    }
    Duration tol = r.interval * static_cast<std::int64_t>(r.burst - 1);
    out.push_back({std::to_string(i) + "|" + method_part + "|" + scope, r.interval, tol});
  }
  return out;
}

TimePoint RuleLimiter::earliest(const CallKey& call, TimePoint now) const {
  TimePoint t = now;
  for (const Match& m : matches(call)) {
    auto it = tat_.find(m.bucket);
    if (it != tat_.end()) t = std::max(t, it->second - m.tolerance);
  }
  return t;
}

void RuleLimiter::commit(const std::vector<Match>& ms, TimePoint t) {
  for (const Match& m : ms) {
    auto [it, fresh] = tat_.try_emplace(m.bucket, t);
    it->second = std::max(it->second, t) + m.interval;
  }
}

std::optional<Duration> RuleLimiter::try_acquire(const CallKey& call, TimePoint now) {
  TimePoint t = earliest(call, now);
  if (t > now) return t - now;
  commit(matches(call), now);
  return std::nullopt;
}

TimePoint RuleLimiter::reserve(const CallKey& call, TimePoint now) {
  TimePoint t = earliest(call, now);
  commit(matches(call), t);
  return t;
}

void RuleLimiter::penalize(const CallKey& call, TimePoint until) {
  for (const Match& m : matches(call)) {
    auto [it, fresh] = tat_.try_emplace(m.bucket, until + m.tolerance);
    it->second = std::max(it->second, until + m.tolerance);
  }
}

}  // namespace callcache::replay
