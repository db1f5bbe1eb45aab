// tools/sim/engine_policies.h — the engine's eviction policies, driven
// through the real engine (callcache/engine.h + cache.h), for the simulator.
//
// Each run creates an Engine with one namespace ("sim") of max_entries =
// size under the policy, one shard (an exact global policy), a ManualClock
// that never advances (no entry expires) and no background sweep; then, per
// request, Cache::get and on a miss Cache::put. Single-threaded.
//
// Thread-safety: simulate_engine() may run concurrently (separate engines).
#pragma once

#include <cstdint>
#include <vector>

#include "callcache/policy.h"
#include "callcache/status.h"
#include "tools/sim/reference.h"
#include "tools/sim/simulate.h"
#include "tools/sim/trace.h"

namespace callcache::sim {

// Every value of callcache::EvictionPolicy, in table order. A policy added
// to the engine is simulated once it is listed here (one line).
inline constexpr EvictionPolicy kEnginePolicies[] = {
    EvictionPolicy::kLru,
    EvictionPolicy::kS3Fifo,
    EvictionPolicy::kWTinyLfu,
    EvictionPolicy::kAdaptive,
};

// The textbook S3-FIFO settings closest to the engine's S3-FIFO
// (src/core/eviction.h); a test checks that the engine stays near them.
inline constexpr S3FifoParams kEngineS3FifoParams{};

// Misses of the engine under `policy` with max_entries = size. Errors:
// whatever Engine::create / Cache::put return, e.g. a rejected policy.
Result<std::uint64_t> simulate_engine(EvictionPolicy policy, const Trace& trace,
                                      std::uint64_t size);

// kEnginePolicies as PolicyRuns; the engine's default (NamespacePolicy{}.
// eviction) is marked is_default.
std::vector<PolicyRun> engine_policy_runs();

}  // namespace callcache::sim
