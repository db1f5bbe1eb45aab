// Internal (replay): GCRA buckets over a list of LimitRules. The simulated
// upstream uses one to decide FLOOD_WAIT/429 (try_acquire); the simulated
// clients use one to pace (reserve). The upstream's copy is independent of
// any client pacing, so a client that paces wrongly is caught by FLOOD_WAITs.
//
// Thread-safety: none (the replay is single-threaded, in virtual time).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "scenario.h"

namespace callcache::replay {

// Who makes a call, and on what.
struct CallKey {
  std::string_view account;
  std::string_view method;
  std::string_view group;   // channel / chat
  std::string_view object;  // post (or the group itself)
};

class RuleLimiter {
 public:
  explicit RuleLimiter(std::vector<LimitRule> rules);

  // The earliest time >= now at which `call` passes every matching rule.
  TimePoint earliest(const CallKey& call, TimePoint now) const;
  // If `call` passes every rule at `now`, records it and returns nullopt;
  // otherwise records nothing and returns how long until it would pass.
  std::optional<Duration> try_acquire(const CallKey& call, TimePoint now);
  // Books the earliest slot >= now and returns it (the caller calls then).
  TimePoint reserve(const CallKey& call, TimePoint now);
  // Blocks every bucket matching `call` until `until` (an upstream back-off).
  void penalize(const CallKey& call, TimePoint until);

  bool empty() const { return rules_.empty(); }

 private:
  struct Match {
    std::string bucket;
    Duration interval;
    Duration tolerance;  // (burst - 1) * interval
  };
  std::vector<Match> matches(const CallKey& call) const;
  void commit(const std::vector<Match>& ms, TimePoint t);

  std::vector<LimitRule> rules_;
  // Theoretical arrival time per bucket (absent = idle: passes now).
  std::unordered_map<std::string, TimePoint> tat_;
};

}  // namespace callcache::replay
