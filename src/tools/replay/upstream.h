// Internal (replay): the simulated upstream — a Telegram-like API in virtual
// time. Each call is checked against the upstream's own limits when it is
// sent (an independent RuleLimiter: client pacing cannot fake it), and its
// reply arrives after a latency drawn from the method's log-normal
// distribution. A call over a limit is refused like the real services do:
// user accounts get MTProto `FLOOD_WAIT_X` (X = whole seconds to wait), bots
// get HTTP 429 with `retry_after` (whole seconds). A refused call still
// counts as an upstream call (it reached the server).
//
// Thread-safety: none; everything runs on one ManualScheduler.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "callcache/clock.h"
#include "rng.h"
#include "rule_limiter.h"
#include "scenario.h"

namespace callcache::replay {

struct UpstreamReply {
  bool ok = false;
  std::string payload;     // when ok: the object's data
  std::string error;       // when refused: "FLOOD_WAIT_3" or "429 Too Many Requests: retry after 3"
  Duration retry_after{};  // when refused
};

struct MethodCounters {
  std::uint64_t calls = 0;   // calls that reached the upstream (refused ones included)
  std::uint64_t floods = 0;  // of which refused with FLOOD_WAIT / 429
};

class SimUpstream {
 public:
  using Done = std::function<void(const UpstreamReply&)>;

  // REQUIRES: scenario and scheduler outlive the upstream.
  SimUpstream(const Scenario& scenario, Scheduler& scheduler, std::uint64_t seed);

  // Sends `call` now; `done` runs at now + latency with the reply.
  // REQUIRES: call.method is declared by the scenario.
  void call(const CallKey& call, Done done);

  const std::map<std::string, MethodCounters>& counters() const { return counters_; }
  std::uint64_t total_calls() const;
  std::uint64_t total_floods() const;

 private:
  const Scenario& scenario_;
  Scheduler& scheduler_;
  RuleLimiter limits_;
  Rng rng_;
  std::map<std::string, MethodCounters> counters_;
};

}  // namespace callcache::replay
