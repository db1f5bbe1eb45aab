// Internal: the in-process RateLimiter (see callcache/rate_limiter.h).
//
// State: one time stamp per key (GCRA's theoretical arrival time, TAT) in a
// striped hash map. A key is absent exactly when its TAT is in the past, which
// is the same as a fresh key, so dropping idle keys never changes a decision.
//
// Reservation: a call computes the keys of every rule it matches (plus active
// penalties), locks their stripes in ascending stripe order (no deadlock
// between calls with overlapping keys), reads every TAT, picks the start time
// that satisfies all of them, and then either commits every rule at that
// start or none (refusal).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "callcache/rate_limiter.h"

namespace callcache::limits {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
using StringSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

// Counters of one rule row; updated with relaxed atomics outside stripe locks.
struct RuleCounters {
  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::uint64_t> waits{0};
  std::atomic<std::int64_t> total_wait_ns{0};
  std::atomic<std::int64_t> max_wait_ns{0};
  std::atomic<std::uint64_t> refusals{0};
  std::atomic<std::uint64_t> penalties{0};
  std::atomic<std::int64_t> keys{0};
};

struct CompiledRule {
  Rule rule;
  std::int64_t interval_ns = 0;   // emission interval T
  std::int64_t tolerance_ns = 0;  // burst tolerance (burst - 1) * T
  std::string prefix;             // "#<index>": short, unique key prefix
  StringSet methods;
  StringSet except_methods;
};

// The outcome of one reservation attempt.
struct Reservation {
  bool admitted = false;
  TimePoint start{};        // when the call may start (admitted or not)
  Duration wait{0};         // start - now
  std::size_t binding = 0;  // row that demanded the longest wait (rules.size() = penalty)
};

class LimiterCore {
 public:
  explicit LimiterCore(RateLimiterOptions options);

  // try_only: admit only without waiting. Otherwise admit when wait <= max_wait.
  Reservation reserve(const CallAttributes& call, Duration max_wait, bool try_only);
  Status penalize(const CallAttributes& call, KeyScope scope, Duration retry_after);
  RateLimiterStats stats() const;
  std::size_t sweep_all();

  const std::vector<Rule>& rules() const { return plain_rules_; }
  const Clock& clock() const { return *clock_; }
  std::string row_name(std::size_t row) const;

 private:
  static constexpr std::uint16_t kPenaltyOwner = 0x8000;  // | scope bits
  struct Slot {
    std::int64_t tat_ns;  // next free time (rules) or end of penalty
    std::uint16_t owner;  // rule index, or kPenaltyOwner | scope
  };
  struct alignas(64) Shard {
    mutable std::mutex mu;  // guards map and next_sweep_ns
    std::unordered_map<std::string, Slot, StringHash, std::equal_to<>> map;
    std::int64_t next_sweep_ns = 0;
  };

  bool matches(const CompiledRule& r, const CallAttributes& call) const;
  // REQUIRES: shard.mu held. Drops slots whose time is <= now_ns.
  std::size_t sweep_locked(Shard& shard, std::int64_t now_ns);
  void forget(const Slot& slot);
  void record_admitted(std::size_t row, std::int64_t own_wait_ns);

  const Clock* clock_;
  std::int64_t sweep_interval_ns_;
  std::vector<Rule> plain_rules_;
  std::vector<CompiledRule> rules_;
  std::vector<Shard> shards_;
  std::vector<RuleCounters> counters_;  // rules_.size() + 1 rows (last: penalty)
  // Live penalty slots per scope, and in total (skip penalty lookups when 0).
  std::atomic<std::int64_t> penalties_by_scope_[key_scope::kAll + 1] = {};
  std::atomic<std::int64_t> penalties_live_{0};
};

}  // namespace callcache::limits
