#include "tools/sim/generators.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace callcache::sim {
namespace {

std::uint64_t splitmix64(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

std::string fmt_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

Status check_zipf(const ZipfOptions& o) {
  if (o.requests == 0) return Status::invalid_argument("requests must be > 0");
  if (o.keys == 0) return Status::invalid_argument("keys must be > 0");
  if (!std::isfinite(o.alpha) || o.alpha < 0) {
    return Status::invalid_argument("alpha must be a finite number >= 0, not " +
                                    fmt_double(o.alpha));
  }
  return Status();
}

}  // namespace

Rng::Rng(std::uint64_t seed) noexcept {
  for (auto& s : s_) s = splitmix64(seed);
}

std::uint64_t Rng::next() noexcept {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

ZipfSampler::ZipfSampler(std::uint32_t n, double alpha) : cdf_(n) {
  double sum = 0;
  for (std::uint32_t r = 0; r < n; ++r) {
    sum += std::pow(static_cast<double>(r) + 1.0, -alpha);
    cdf_[r] = sum;
  }
  for (double& c : cdf_) c /= sum;
  cdf_.back() = 1.0;
}

std::uint32_t ZipfSampler::sample(Rng& rng) const noexcept {
  double u = rng.uniform();
  auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  if (it == cdf_.end()) --it;
  return static_cast<std::uint32_t>(it - cdf_.begin());
}

double ZipfSampler::probability(std::uint32_t r) const noexcept {
  return r == 0 ? cdf_[0] : cdf_[r] - cdf_[r - 1];
}

Result<Trace> generate_zipf(const ZipfOptions& o) {
  if (Status s = check_zipf(o); !s.ok()) return s;
  ZipfSampler zipf(o.keys, o.alpha);
  Rng rng(o.seed);
  std::vector<std::uint64_t> raw(o.requests);
  for (auto& k : raw) k = zipf.sample(rng);
  return densify("zipf(alpha=" + fmt_double(o.alpha) + ", keys=" + std::to_string(o.keys) +
                     ", requests=" + std::to_string(o.requests) +
                     ", seed=" + std::to_string(o.seed) + ")",
                 raw);
}

Result<Trace> generate_scan(const ScanOptions& o) {
  if (Status s = check_zipf(o.zipf); !s.ok()) return s;
  if (o.scan_length == 0) return Status::invalid_argument("scan length must be > 0");
  if (o.scan_every == 0) return Status::invalid_argument("scan interval must be > 0");
  ZipfSampler zipf(o.zipf.keys, o.zipf.alpha);
  Rng rng(o.zipf.seed);
  std::vector<std::uint64_t> raw;
  raw.reserve(o.zipf.requests);
  // Scan keys live above the Zipf key space and are never reused.
  std::uint64_t next_scan_key = o.zipf.keys;
  std::uint64_t since_scan = 0;
  while (raw.size() < o.zipf.requests) {
    if (since_scan == o.scan_every) {
      for (std::uint32_t i = 0; i < o.scan_length && raw.size() < o.zipf.requests; ++i) {
        raw.push_back(next_scan_key++);
      }
      since_scan = 0;
      continue;
    }
    raw.push_back(zipf.sample(rng));
    ++since_scan;
  }
  return densify("scan(alpha=" + fmt_double(o.zipf.alpha) + ", keys=" +
                     std::to_string(o.zipf.keys) + ", requests=" + std::to_string(o.zipf.requests) +
                     ", scan_length=" + std::to_string(o.scan_length) + ", scan_every=" +
                     std::to_string(o.scan_every) + ", seed=" + std::to_string(o.zipf.seed) + ")",
                 raw);
}

Result<Trace> generate_loop(const LoopOptions& o) {
  if (o.requests == 0) return Status::invalid_argument("requests must be > 0");
  if (o.keys == 0) return Status::invalid_argument("keys must be > 0");
  std::vector<std::uint64_t> raw(o.requests);
  for (std::uint64_t i = 0; i < o.requests; ++i) raw[i] = i % o.keys;
  return densify(
      "loop(keys=" + std::to_string(o.keys) + ", requests=" + std::to_string(o.requests) + ")",
      raw);
}

}  // namespace callcache::sim
