// callcache/tenant.h — who an entry belongs to.
//
// Every cache entry belongs to a tenant: an account, a bot, or the shared
// tenant for public data. Two tenants' keys never collide, whatever their
// bytes: the tenant id is part of the key's identity, compared exactly.
//
// Secrets (bot tokens, phone numbers) must never be stored, logged or
// exported. Derive the tenant id from a secret with a keyed hash
// (SipHash-2-4, 128-bit key) and keep only the id. Use a fixed key across
// restarts if entries are persisted (SQLite, Redis): the same secret must map
// to the same id to find its entries again.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "callcache/status.h"

namespace callcache {

struct TenantId {
  std::uint64_t value = 0;
  friend constexpr auto operator<=>(TenantId, TenantId) = default;
};

// The tenant of namespaces declared shared (public data seen by all accounts).
inline constexpr TenantId kSharedTenant{0};

// A 128-bit key for tenant hashing.
using TenantKey = std::array<std::uint8_t, 16>;

// The key used when none is configured. Fine for a single deployment's ids,
// but anyone who knows it can test guesses of a secret against an id: set
// your own (`tenant_key` in the config, 32 hex digits) in production.
inline constexpr TenantKey kDefaultTenantKey = {0x63, 0x61, 0x6c, 0x6c, 0x63, 0x61, 0x63, 0x68,
                                                0x65, 0x2d, 0x74, 0x65, 0x6e, 0x61, 0x6e, 0x74};

// SipHash-2-4 of `data` under `key`.
std::uint64_t siphash24(const TenantKey& key, std::string_view data) noexcept;

// The tenant id of a secret (token, phone number). Never returns kSharedTenant.
TenantId tenant_from_secret(std::string_view secret, const TenantKey& key = kDefaultTenantKey);

// The tenant id of a public name ("account-7"). Same function as
// tenant_from_secret; named separately so call sites say which they hold.
inline TenantId tenant_from_name(std::string_view name, const TenantKey& key = kDefaultTenantKey) {
  return tenant_from_secret(name, key);
}

// 16 lowercase hex digits: how ids appear in logs, metrics and tier keys.
std::string to_hex(TenantId id);

// Parses 32 hex digits into a key (config `tenant_key`).
Result<TenantKey> parse_tenant_key(std::string_view hex);

}  // namespace callcache
