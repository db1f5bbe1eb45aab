// Internal (replay): a portable, seeded pseudo-random source.
//
// std::mt19937_64 is specified bit for bit by the standard, but the std
// distributions are not (libstdc++ and libc++ differ, and may change), so the
// distributions the replay needs are written here: same seed, same numbers,
// on every standard library.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "callcache/clock.h"

namespace callcache::replay {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : gen_(seed) {}

  std::uint64_t next() { return gen_(); }

  // Uniform in [0, 1): the top 53 bits of one draw.
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }

  // Uniform integer in [0, n). REQUIRES: n > 0. (Modulo bias is < 2^-40 for
  // the small n used here.)
  std::uint64_t below(std::uint64_t n) { return gen_() % n; }

  // Standard normal by Box-Muller (one draw per call; the pair's second half
  // is dropped so the sequence does not depend on call parity).
  double normal() {
    double u1 = uniform();
    double u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  // A log-normal duration with the given median and shape sigma (0 = always
  // the median), clamped to [median / 10, median * 10] so one unlucky draw
  // cannot dominate a run.
  Duration lognormal(Duration median, double sigma) {
    if (sigma <= 0) return median;
    double f = std::exp(sigma * normal());
    f = std::fmin(10.0, std::fmax(0.1, f));
    return Duration(
        static_cast<std::int64_t>(std::llround(static_cast<double>(median.count()) * f)));
  }

 private:
  std::mt19937_64 gen_;
};

// Draws ranks 0..n-1 with P(k) proportional to 1 / (k + 1)^s (s = 0: uniform).
class ZipfSampler {
 public:
  ZipfSampler(std::size_t n, double s) : cdf_(n) {
    double sum = 0;
    for (std::size_t k = 0; k < n; ++k) {
      sum += 1.0 / std::pow(static_cast<double>(k + 1), s);
      cdf_[k] = sum;
    }
    for (auto& c : cdf_) c /= sum;
  }
  std::size_t draw(Rng& rng) const {
    double u = rng.uniform();
    std::size_t lo = 0, hi = cdf_.size() - 1;
    while (lo < hi) {
      std::size_t mid = (lo + hi) / 2;
      if (cdf_[mid] > u)
        hi = mid;
      else
        lo = mid + 1;
    }
    return lo;
  }

 private:
  std::vector<double> cdf_;
};

}  // namespace callcache::replay
