// Textbook S3-FIFO on dense key ids, with an exact ghost (see reference.h).
#include <algorithm>
#include <cmath>
#include <deque>

#include "tools/sim/reference.h"

namespace callcache::sim {

std::uint64_t simulate_s3fifo(const Trace& trace, std::uint64_t capacity, const S3FifoParams& p) {
  enum : std::uint8_t { kOut, kSmall, kMain };
  std::uint64_t small_target = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::floor(p.small * static_cast<double>(capacity) + 1e-9)));
  if (p.min_small > small_target) {
    const auto cap = static_cast<std::uint64_t>(p.small_cap * static_cast<double>(capacity));
    small_target = std::max(small_target, std::min(p.min_small, cap));
  }
  const std::uint64_t main_share = capacity > small_target ? capacity - small_target : 1;
  const auto ghost_cap =
      static_cast<std::uint64_t>(std::llround(p.ghost * static_cast<double>(main_share)));
  std::vector<std::uint8_t> where(trace.distinct, kOut), freq(trace.distinct, 0);
  // Ghost: key k is remembered iff ghost_at[k] != 0 and fewer than ghost_cap
  // keys were added after it (an exact FIFO of the last ghost_cap keys).
  std::vector<std::uint64_t> ghost_at(trace.distinct, 0);
  std::uint64_t ghost_added = 0;
  std::deque<std::uint32_t> small, main;
  std::uint64_t misses = 0;
  const auto max_freq = static_cast<std::uint8_t>(p.max_freq);

  auto evict_one = [&] {
    for (;;) {
      if (small.size() > small_target || main.empty()) {
        std::uint32_t t = small.front();
        small.pop_front();
        if (freq[t] >= p.promote) {
          freq[t] = 0;
          where[t] = kMain;
          main.push_back(t);
          continue;
        }
        where[t] = kOut;
        ghost_at[t] = ++ghost_added;
        return;
      }
      std::uint32_t t = main.front();
      main.pop_front();
      if (freq[t] > 0) {
        --freq[t];
        main.push_back(t);
        continue;
      }
      where[t] = kOut;
      return;
    }
  };

  for (std::uint32_t k : trace.requests) {
    if (where[k] != kOut) {
      if (freq[k] < max_freq) ++freq[k];
      continue;
    }
    ++misses;
    freq[k] = 0;
    bool ghost_hit = ghost_at[k] != 0 && ghost_added - ghost_at[k] < ghost_cap;
    ghost_at[k] = 0;
    if (ghost_hit) {
      where[k] = kMain;
      main.push_back(k);
    } else {
      where[k] = kSmall;
      small.push_back(k);
    }
    if (small.size() + main.size() > capacity) evict_one();
  }
  return misses;
}

}  // namespace callcache::sim
