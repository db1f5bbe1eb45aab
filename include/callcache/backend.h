// callcache/backend.h — a second-level store under the in-memory cache
// (SQLite on one machine, Redis across processes and machines).
//
// Values travel as bytes (typed caches supply a codec). Expiry is carried as a
// remaining TTL, because a tier outlives the process and steady-clock time
// points do not. Tenant ids are already keyed hashes: no secret reaches a
// backend.
//
// Thread-safety: implementations are safe to call from any thread.
// Errors: an unreachable or failing store returns kUnavailable or kIoError;
// callers (the tiered cache) degrade to L1-only and never fail a read on it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/clock.h"
#include "callcache/status.h"
#include "callcache/tenant.h"

namespace callcache {

// Identifies one stored value.
struct BackendKey {
  std::string_view ns;
  TenantId tenant;
  std::string_view key;
};

// A stored value and how much of its TTL is left.
struct StoredValue {
  std::string bytes;
  Duration ttl_left{};
};

struct BackendItem {
  BackendKey key;
  std::string_view bytes;
  Duration ttl;
};

struct BackendStats {
  std::uint64_t gets = 0, hits = 0, puts = 0, deletes = 0, errors = 0;
  std::uint64_t pending_writes = 0;  // write-behind queue depth
  std::uint64_t purged = 0;          // expired rows removed
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "sqlite", "redis", …
  virtual std::string_view name() const noexcept = 0;

  // The value, nullopt if absent or expired.
  virtual Result<std::optional<StoredValue>> get(const BackendKey& key) = 0;
  // One result per key, in order.
  virtual Result<std::vector<std::optional<StoredValue>>> get_many(
      std::span<const BackendKey> keys) = 0;

  // Stores bytes for `ttl` (> 0). May be buffered (write-behind); see flush().
  virtual Status put(const BackendKey& key, std::string_view bytes, Duration ttl) = 0;
  virtual Status put_many(std::span<const BackendItem> items) = 0;

  virtual Status erase(const BackendKey& key) = 0;
  virtual Status erase_tenant(TenantId tenant) = 0;
  // Invalidates a whole namespace by bumping its stored version.
  virtual Status erase_namespace(std::string_view ns) = 0;

  // Removes expired data now. Returns rows removed.
  virtual Result<std::uint64_t> purge_expired() = 0;
  // Makes every accepted write durable (write-behind backends).
  virtual Status flush() = 0;
  // OK when the store answers.
  virtual Status health() = 0;
  virtual BackendStats stats() const = 0;
};

}  // namespace callcache
