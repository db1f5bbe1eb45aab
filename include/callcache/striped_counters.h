// callcache/striped_counters.h — event counters that threads bump without
// sharing a cache line (the engine's lookup and load counters, the gateway's
// per-outcome counters).
//
// One std::atomic per event, bumped by every thread on every hit, is a cache
// line that bounces between cores on each increment: with two threads
// serving hits it costs more than the hit itself. StripedCounters keeps one
// cache-line-aligned lane per thread: this_thread_lane() gives each living
// thread a lane index that no other living thread has, so an increment is a
// plain load and store on a line only that thread writes — no locked
// instruction. Past kLanes threads alive at once the rest share one overflow
// lane with atomic increments. A read sums the lanes; reads are not a
// consistent snapshot across counters: fine for stats.
//
// Thread-safety: add() and load() may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace callcache {

// The calling thread's lane index: no other living thread has it (an index
// is reused only after its thread exited). Cheap after the first call.
std::size_t this_thread_lane() noexcept;

// N counters. `LaneOf` names the lane lookup: this_thread_lane() for
// applications; the engine passes the same index through an inline lookup.
template <std::size_t N, std::size_t (*LaneOf)() noexcept = &this_thread_lane>
class StripedCounters {
 public:
  static constexpr std::size_t kLanes = 32;

  void add(std::size_t i, std::uint64_t n = 1) noexcept {
    const std::size_t lane = LaneOf();
    if (lane < kLanes) {
      std::atomic<std::uint64_t>& c = lanes_[lane].counts[i];
      c.store(c.load(std::memory_order_relaxed) + n,
              std::memory_order_relaxed);  // this thread's lane only
    } else {
      lanes_[kLanes].counts[i].fetch_add(n, std::memory_order_relaxed);
    }
  }

  std::uint64_t load(std::size_t i) const noexcept {
    std::uint64_t sum = 0;
    for (const auto& lane : lanes_) sum += lane.counts[i].load(std::memory_order_relaxed);
    return sum;
  }

 private:
  struct alignas(64) Lane {
    std::array<std::atomic<std::uint64_t>, N> counts{};
  };
  std::array<Lane, kLanes + 1> lanes_{};
};

}  // namespace callcache
