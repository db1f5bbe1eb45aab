// Internal: event counters that threads bump without sharing a cache line.
//
// One std::atomic per event, bumped by every thread on every hit, is a cache
// line that bounces between cores on each increment: with two threads
// serving hits it costs more than the hit itself. StripedCounters keeps one
// cache-line-aligned lane per thread: a thread's reader record (reclaim.h)
// gives it a lane index that no other living thread has, so an increment is
// a plain load and store on a line only that thread writes — no locked
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

#include "reclaim.h"

namespace callcache::internal {

template <std::size_t N>
class StripedCounters {
 public:
  static constexpr std::size_t kLanes = 32;

  void add(std::size_t i, std::uint64_t n = 1) noexcept {
    const std::size_t lane = my_reader_record().index;
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

}  // namespace callcache::internal
