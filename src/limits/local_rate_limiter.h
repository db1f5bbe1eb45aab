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
#include "method_name.h"

namespace callcache::limits {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// A key stored with its hash, computed once per call: the stripe and the
// stripe's map bucket both come from it.
struct HashedKey {
  std::string text;
  std::size_t hash;
};
struct HashedView {
  std::string_view text;
  std::size_t hash;
};
struct HashedKeyHash {
  using is_transparent = void;
  std::size_t operator()(const HashedKey& k) const noexcept { return k.hash; }
  std::size_t operator()(const HashedView& k) const noexcept { return k.hash; }
};
struct HashedKeyEq {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return a.hash == b.hash && std::string_view(a.text) == std::string_view(b.text);
  }
};

// Counters of one rule row within one stripe, guarded by that stripe's
// mutex (no shared atomics on the hot path); stats() sums the stripes.
struct RuleCounters {
  std::uint64_t calls = 0;
  std::uint64_t waits = 0;
  std::int64_t total_wait_ns = 0;
  std::int64_t max_wait_ns = 0;
  std::uint64_t refusals = 0;
  std::uint64_t penalties = 0;
  std::int64_t keys = 0;  // slots of this row held by the stripe
};

struct CompiledRule {
  Rule rule;
  std::int64_t interval_ns = 0;   // emission interval T
  std::int64_t tolerance_ns = 0;  // burst tolerance (burst - 1) * T
  std::string prefix;             // the rule index in two bytes: a short, unique key prefix
  MethodSet methods;              // case-insensitive (method_name.h)
  MethodSet except_methods;
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
    mutable std::mutex mu;  // guards map, next_sweep_ns and rows
    std::unordered_map<HashedKey, Slot, HashedKeyHash, HashedKeyEq> map;
    std::int64_t next_sweep_ns = 0;
    // Counters of the keys in this stripe: rules_.size() + 1 rows (last: penalty).
    std::vector<RuleCounters> rows;
  };

  bool matches(const CompiledRule& r, const CallAttributes& call) const;
  // REQUIRES: shard.mu held. Drops slots whose time is <= now_ns.
  std::size_t sweep_locked(Shard& shard, std::int64_t now_ns);

  const Clock* clock_;
  std::int64_t sweep_interval_ns_;
  std::vector<Rule> plain_rules_;
  std::vector<CompiledRule> rules_;
  std::vector<Shard> shards_;
  // Live penalty slots per scope, and in total (skip penalty lookups when 0).
  std::atomic<std::int64_t> penalties_by_scope_[key_scope::kAll + 1] = {};
  std::atomic<std::int64_t> penalties_live_{0};
};

}  // namespace callcache::limits
