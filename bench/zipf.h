// Zipf-distributed key indices for benchmarks (rejection-inversion sampling,
// Hörmann & Derflinger), deterministic for a seed.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace callcache::bench {

class Zipf {
 public:
  Zipf(std::uint64_t n, double s) : n_(static_cast<double>(n)), s_(s) {
    h_x1_ = h(1.5) - 1.0;
    h_n_ = h(n_ + 0.5);
    c_ = 2.0 - h_inv(h(2.5) - std::pow(2.0, -s_));
  }
  // Returns a rank in [0, n).
  template <class Rng>
  std::uint64_t operator()(Rng& rng) {
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    for (;;) {
      double u = h_n_ + u01(rng) * (h_x1_ - h_n_);
      double x = h_inv(u);
      double k = std::floor(x + 0.5);
      if (k < 1) k = 1;
      if (k > n_) k = n_;
      if (k - x <= c_ || u >= h(k + 0.5) - std::pow(k, -s_)) return static_cast<std::uint64_t>(k) - 1;
    }
  }

 private:
  double h(double x) const { return s_ == 1.0 ? std::log(x) : (std::pow(x, 1.0 - s_) - 1.0) / (1.0 - s_); }
  double h_inv(double x) const {
    return s_ == 1.0 ? std::exp(x) : std::pow(1.0 + x * (1.0 - s_), 1.0 / (1.0 - s_));
  }
  double n_, s_, h_x1_, h_n_, c_;
};

// `count` Zipf(s) draws over [0, n).
inline std::vector<std::uint32_t> zipf_sequence(std::uint64_t n, double s, std::size_t count, std::uint64_t seed) {
  Zipf z(n, s);
  std::mt19937_64 rng(seed);
  std::vector<std::uint32_t> out(count);
  for (auto& v : out) v = static_cast<std::uint32_t>(z(rng));
  return out;
}

}  // namespace callcache::bench
