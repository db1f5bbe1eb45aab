// Internal: the 64-bit hash used for shard choice and table probing
// (multiply-fold mixing in the style of wyhash; not cryptographic — tenant ids
// use SipHash, see tenant.h).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace callcache::internal {

__extension__ using u128 = unsigned __int128;

inline std::uint64_t mix64(std::uint64_t a, std::uint64_t b) noexcept {
  u128 r = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Hash of (tenant, key) under `seed`.
inline std::uint64_t hash_key(std::uint64_t seed, std::uint64_t tenant,
                              std::string_view key) noexcept {
  constexpr std::uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL,
                          k2 = 0x8ebc6af09c88c6e3ULL, k3 = 0x589965cc75374cc3ULL;
  std::uint64_t h = mix64(seed ^ k0, tenant ^ k1);
  const char* p = key.data();
  std::size_t n = key.size();
  while (n >= 16) {
    h = mix64(load64(p) ^ k1 ^ h, load64(p + 8) ^ k2);
    p += 16;
    n -= 16;
  }
  std::uint64_t a = 0, b = 0;
  if (n >= 8) {
    a = load64(p);
    p += 8;
    n -= 8;
  }
  if (n > 0) std::memcpy(&b, p, n);
  h = mix64(a ^ k2 ^ h, b ^ k3);
  return mix64(h ^ key.size(), k1 ^ k3);
}

}  // namespace callcache::internal
