// Internal: a lock-free log-linear latency histogram (8 sub-buckets per power
// of two of nanoseconds: ~12% relative precision), for load-latency
// percentiles.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "callcache/clock.h"
#include "callcache/stats.h"

namespace callcache::internal {

class LatencyHistogram {
 public:
  void record(Duration d) noexcept;
  LatencySummary summary() const noexcept;
  // Adds this histogram's counts into `into` (for totals).
  void merge_into(std::array<std::uint64_t, 512>& into, std::uint64_t& max_ns) const noexcept;
  static LatencySummary summarise(const std::array<std::uint64_t, 512>& counts,
                                  std::uint64_t max_ns) noexcept;

 private:
  static constexpr int kBuckets = 512;
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> max_ns_{0};
};

}  // namespace callcache::internal
