// Internal: event counters that threads bump without sharing a cache line.
//
// One std::atomic per event, bumped by every thread on every hit, is a cache
// line that bounces between cores on each increment: with two threads
// serving hits it costs more than the hit itself. StripedCounters keeps one
// cache-line-aligned lane per StripedRwLock stripe (the thread's fixed
// stripe); an increment touches only the caller's lane, a read sums the
// lanes. Reads are not a consistent snapshot across counters: fine for stats.
//
// Thread-safety: add() and load() may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "rw_lock.h"

namespace callcache::internal {

template <std::size_t N>
class StripedCounters {
 public:
  void add(std::size_t i, std::uint64_t n = 1) noexcept {
    lanes_[static_cast<std::size_t>(StripedRwLock::my_stripe())].counts[i].fetch_add(
        n, std::memory_order_relaxed);
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
  std::array<Lane, StripedRwLock::kStripes> lanes_{};
};

}  // namespace callcache::internal
