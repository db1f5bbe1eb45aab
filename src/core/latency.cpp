#include "latency.h"

#include <bit>

namespace callcache::internal {
namespace {

int bucket_of(std::uint64_t ns) noexcept {
  if (ns < 8) return static_cast<int>(ns);
  int msb = 63 - std::countl_zero(ns);
  int sub = static_cast<int>((ns >> (msb - 3)) & 7);
  return msb * 8 + sub;
}

// A representative value (the bucket's midpoint) in nanoseconds.
double value_of(int bucket) noexcept {
  if (bucket < 8) return bucket;
  int msb = bucket / 8, sub = bucket % 8;
  double lo =
      static_cast<double>((std::uint64_t{8} + static_cast<std::uint64_t>(sub)) << (msb - 3));
  double width = static_cast<double>(std::uint64_t{1} << (msb - 3));
  return lo + width / 2;
}

}  // namespace

void LatencyHistogram::record(Duration d) noexcept {
  std::uint64_t ns = d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
  buckets_[static_cast<std::size_t>(bucket_of(ns))].fetch_add(1, std::memory_order_relaxed);
  std::uint64_t m = max_ns_.load(std::memory_order_relaxed);
  while (ns > m && !max_ns_.compare_exchange_weak(m, ns, std::memory_order_relaxed)) {
  }
}

void LatencyHistogram::merge_into(std::array<std::uint64_t, 512>& into,
                                  std::uint64_t& max_ns) const noexcept {
  for (int i = 0; i < kBuckets; ++i)
    into[static_cast<std::size_t>(i)] +=
        buckets_[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
  std::uint64_t m = max_ns_.load(std::memory_order_relaxed);
  if (m > max_ns) max_ns = m;
}

LatencySummary LatencyHistogram::summarise(const std::array<std::uint64_t, 512>& counts,
                                           std::uint64_t max_ns) noexcept {
  LatencySummary s;
  for (auto c : counts) s.count += c;
  if (s.count == 0) return s;
  auto pct = [&](double q) {
    std::uint64_t rank = static_cast<std::uint64_t>(q * static_cast<double>(s.count - 1)) + 1;
    std::uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts[static_cast<std::size_t>(i)];
      if (seen >= rank) return std::min(value_of(i), static_cast<double>(max_ns)) / 1e6;
    }
    return static_cast<double>(max_ns) / 1e6;
  };
  s.p50_ms = pct(0.50);
  s.p90_ms = pct(0.90);
  s.p99_ms = pct(0.99);
  s.max_ms = static_cast<double>(max_ns) / 1e6;
  return s;
}

LatencySummary LatencyHistogram::summary() const noexcept {
  std::array<std::uint64_t, 512> counts{};
  std::uint64_t max_ns = 0;
  merge_into(counts, max_ns);
  return summarise(counts, max_ns);
}

}  // namespace callcache::internal
