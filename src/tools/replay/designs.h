// Internal (replay): the client designs a replay compares. Each turns one
// step of a task ("account A calls get_messages on post P") into upstream
// calls, its own way:
//   no cache   every step goes upstream, paced by the seeds' global limiter;
//   seeds      a task-scoped cache (get / put, no coalescing, no persistence)
//              in front of the seeds' global per-method limiter;
//   callcache  the library's read path (TieredCache::get_or_load_async: single
//              flight, L1 → L2 → loader), per-account and per-chat pacing
//              by the toolkit's RateLimiter, and optionally the SQLite tier.
// Every design honours FLOOD_WAIT/429: it waits retry_after and retries
// (callcache also penalizes exactly the key the back-off concerns).
//
// Thread-safety: none (single-threaded virtual time).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "callcache/backend.h"
#include "callcache/clock.h"
#include "callcache/rate_limiter.h"
#include "scenario.h"
#include "upstream.h"

namespace callcache::replay {

// One step to perform.
struct StepCall {
  std::string account;
  const MethodDef* method = nullptr;
  std::string group;   // channel / chat name
  std::string object;  // the step's target: the group, or the post "group/post"
  std::int64_t chat_id = 0;
};

// What a design's caches did, per namespace.
struct NamespaceCounters {
  std::uint64_t requests = 0;   // steps that asked the cache
  std::uint64_t hits = 0;       // served from memory (L1)
  std::uint64_t l2_hits = 0;    // served from the SQLite tier
  std::uint64_t coalesced = 0;  // joined another caller's load
  std::uint64_t loads = 0;      // went upstream
  // Of loads + l2_hits: how many fetched a key already being fetched (no
  // single flight), and how many fetched a key fetched before (it expired).
  std::uint64_t duplicates = 0;
  std::uint64_t reloads = 0;
};

class Design {
 public:
  virtual ~Design() = default;
  // Performs `call`; `done` runs later (never inline) on the scheduler.
  virtual void step(std::shared_ptr<const StepCall> call, std::function<void()> done) = 0;
  // Per-namespace counters so far.
  virtual std::map<std::string, NamespaceCounters> namespace_counters() const = 0;
  // Called once when the run is over (flush tiers, drop task scopes).
  virtual Status finish() { return Status(); }
};

// Converts scenario rules to the toolkit's rule model. kInvalidArgument for
// a rule the toolkit cannot express (per: object).
Result<std::vector<Rule>> to_toolkit_rules(const std::vector<LimitRule>& rules, AccountKind kind);

struct DesignEnv {
  const Scenario* scenario;
  ManualClock* clock;
  ManualScheduler* scheduler;
  SimUpstream* upstream;
};

Result<std::unique_ptr<Design>> make_no_cache_design(const DesignEnv& env);
Result<std::unique_ptr<Design>> make_seeds_design(const DesignEnv& env);
// `tier` may be null (L1 only). When set, loads read through it and write to it.
Result<std::unique_ptr<Design>> make_callcache_design(const DesignEnv& env, Backend* tier);

}  // namespace callcache::replay
