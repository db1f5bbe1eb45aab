// tools/sim/generators.h — synthetic request traces, deterministic for a seed
// (same options → same trace, on every platform: the generators use their
// own PRNG and sampling, not <random>'s implementation-defined ones).
//
//   zipf   keys drawn from a Zipf(alpha) distribution over `keys` keys:
//          P(rank r) ∝ 1 / r^alpha (alpha 0 = uniform).
//   scan   Zipf traffic in which, after every `scan_every` Zipf requests, a
//          scan of `scan_length` sequential keys that are never requested
//          again is inserted (a batch job, a crawler, a full-table read):
//          the pattern that flushes an LRU cache.
//   loop   keys 0, 1, …, keys-1, 0, 1, … (a cyclic scan; LRU misses every
//          request when the cache is smaller than the loop).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "callcache/status.h"
#include "tools/sim/trace.h"

namespace callcache::sim {

// xoshiro256** seeded through splitmix64: small, fast, reproducible.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept;
  std::uint64_t next() noexcept;
  // Uniform in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t s_[4];
};

// Samples ranks 0 .. n-1 with P(r) ∝ 1/(r+1)^alpha by inverse CDF (a table
// of n doubles and a binary search per sample).
class ZipfSampler {
 public:
  // REQUIRES: n > 0, alpha >= 0.
  ZipfSampler(std::uint32_t n, double alpha);
  std::uint32_t sample(Rng& rng) const noexcept;
  // P(rank r).
  double probability(std::uint32_t r) const noexcept;

 private:
  std::vector<double> cdf_;
};

struct ZipfOptions {
  std::uint64_t requests = 1'000'000;
  std::uint32_t keys = 100'000;
  double alpha = 0.9;
  std::uint64_t seed = 1;
};

struct ScanOptions {
  ZipfOptions zipf;  // zipf.requests = total requests, scans included
  std::uint32_t scan_length = 5'000;
  std::uint64_t scan_every = 20'000;  // Zipf requests between scans
};

struct LoopOptions {
  std::uint64_t requests = 1'000'000;
  std::uint32_t keys = 10'000;
};

// Errors (kInvalidArgument, naming the option): requests == 0, keys == 0,
// alpha < 0 or not finite, scan_length == 0, scan_every == 0.
Result<Trace> generate_zipf(const ZipfOptions& o);
Result<Trace> generate_scan(const ScanOptions& o);
Result<Trace> generate_loop(const LoopOptions& o);

}  // namespace callcache::sim
