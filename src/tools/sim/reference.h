// tools/sim/reference.h — reference eviction policies computed by the
// simulator itself, NOT by the engine: yardsticks for the engine's policies.
//
//   opt   Belady's MIN: on a miss with a full cache, evict the cached key
//         whose next request is farthest in the future (never requested
//         again = farthest). Offline (needs the whole trace), so no real
//         cache can do it; it is the lowest miss ratio any demand-fill cache
//         of that size can reach, i.e. the gap to the optimum.
//   fifo  first in, first out; a hit changes nothing.
//   lru   exact least-recently-used (used by the tests to check that the
//         engine's LRU, run single-threaded, is exact).
//
// Every policy admits every missed key (demand fill), like the engine.
// Capacity is in entries. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "callcache/status.h"
#include "tools/sim/trace.h"

namespace callcache::sim {

enum class ReferencePolicy : std::uint8_t { kOpt, kFifo, kLru };

std::string_view reference_policy_name(ReferencePolicy p) noexcept;
Result<ReferencePolicy> parse_reference_policy(std::string_view name);

// Misses of `policy` on `trace` with room for `capacity` entries (cold
// misses included). REQUIRES: capacity > 0.
std::uint64_t simulate_reference(ReferencePolicy policy, const Trace& trace,
                                 std::uint64_t capacity);

// For each request, the index of the next request of the same key, or
// trace.requests.size() + key id when it is never requested again (so all
// values are distinct).
std::vector<std::uint64_t> next_use(const Trace& trace);

}  // namespace callcache::sim
