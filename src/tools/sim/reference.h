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
//   s3fifo-ref  textbook S3-FIFO (Yang et al., SOSP'23) with an exact ghost
//         and tunable parameters: what the engine's S3-FIFO would do with
//         other settings (see S3FifoParams), for tuning it.
//   wtinylfu-ref  textbook W-TinyLFU (Einziger et al., ACM ToS 2017): an LRU
//         window, a count-min sketch with aging admitting the window's
//         victim to a segmented-LRU main only if it is more frequent than
//         main's victim (see WTinyLfuParams). The engine's W-TinyLFU is a
//         CLOCK approximation of it (src/core/two_queue.h).
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

// "No key" in the reference policies' intrusive lists of dense key ids.
inline constexpr std::uint32_t kNil = 0xffffffffu;

enum class ReferencePolicy : std::uint8_t { kOpt, kFifo, kLru, kS3Fifo, kWTinyLfu };

// S3-FIFO settings. The defaults are the paper's and the engine's.
struct S3FifoParams {
  double small = 0.10;  // small FIFO's share of the capacity (at least 1 entry)
  double ghost = 1.0;   // keys the ghost remembers, as a multiple of main's share
                        // (capacity - small entries)
  int promote = 1;      // hits in the small FIFO needed to move to main
  int max_freq = 3;     // saturation of the hit counter (main's second chances)
  // Floor on the small FIFO in entries, itself capped at small_cap of the
  // capacity; 0 = no floor.
  std::uint64_t min_small = 0;
  double small_cap = 0.5;
};

// W-TinyLFU settings. The defaults are the paper's, Caffeine's initial ones
// and the engine's.
struct WTinyLfuParams {
  double window = 0.01;          // the LRU window's share of the capacity (at least 1 entry)
  double protected_share = 0.8;  // protected segment's share of main
};

struct ReferenceSpec {
  ReferencePolicy policy = ReferencePolicy::kOpt;
  S3FifoParams s3fifo;      // for kS3Fifo
  WTinyLfuParams wtinylfu;  // for kWTinyLfu
};

std::string_view reference_policy_name(ReferencePolicy p) noexcept;
// "opt", "fifo", "lru-exact", "s3fifo-ref" optionally followed by
// ":small=F", ":ghost=F", ":promote=N", ":maxfreq=N", ":minsmall=N", ":smallcap=F" in any
// order, e.g. "s3fifo-ref:small=0.25:ghost=1", or "wtinylfu-ref" optionally
// followed by ":window=F", ":protected=F". Errors name the bad part.
Result<ReferenceSpec> parse_reference(std::string_view name);
Result<ReferencePolicy> parse_reference_policy(std::string_view name);

// Misses of `policy` on `trace` with room for `capacity` entries (cold
// misses included). REQUIRES: capacity > 0.
std::uint64_t simulate_reference(const ReferenceSpec& spec, const Trace& trace,
                                 std::uint64_t capacity);
inline std::uint64_t simulate_reference(ReferencePolicy policy, const Trace& trace,
                                        std::uint64_t capacity) {
  return simulate_reference(ReferenceSpec{policy, {}, {}}, trace, capacity);
}

// Textbook S3-FIFO, as the engine runs it: a miss inserts the key (into main
// if the ghost remembers it, else into small), then evicts while over
// capacity. Eviction: if small holds more than its share (or main is empty),
// its oldest entry moves to main if it was hit `promote` times, else is
// evicted and remembered by the ghost; otherwise main's oldest entry is
// reinserted with one hit fewer if it has any, else evicted.
std::uint64_t simulate_s3fifo(const Trace& trace, std::uint64_t capacity, const S3FifoParams& p);

// Textbook W-TinyLFU: every request increments the key's sketch counters; a
// hit moves the key to the head of its LRU segment (window, or protected —
// from probation it is promoted, demoting protected's LRU entry to
// probation when protected is over its share); a miss inserts into the
// window, whose LRU entry, once the window is over its share, enters
// probation if main has room, else replaces main's LRU victim (probation's,
// or protected's when probation is empty) if the sketch rates it strictly
// more frequent, else is evicted.
std::uint64_t simulate_wtinylfu(const Trace& trace, std::uint64_t capacity,
                                const WTinyLfuParams& p);

// For each request, the index of the next request of the same key, or
// trace.requests.size() + key id when it is never requested again (so all
// values are distinct).
std::vector<std::uint64_t> next_use(const Trace& trace);

}  // namespace callcache::sim
