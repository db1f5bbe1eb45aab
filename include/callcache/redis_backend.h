// callcache/redis_backend.h — the shared second-level tier: entries in Redis,
// visible to every process and machine that uses the same server.
//
// Key layout (all keys start with `prefix`, default "cc"):
//   cc:<ns>:version                       the namespace's version (INCR'd by
//                                         erase_namespace; absent = 0)
//   cc:<ns>:v<version>:<tenant-hex>:<key> one value, with native expiry (PX)
//   cc::tenant:<tenant-hex>               per-tenant index: a SET of the full
//                                         keys above, for erase_tenant
// <tenant-hex> is the 16-hex-digit tenant id (already a keyed hash: no secret
// reaches Redis); <key> is the caller's key, byte for byte. Namespace names
// must not contain ':'.
//
// Every get/put/erase runs one Lua script (EVALSHA) that reads the namespace
// version and touches the value in one atomic step, so a concurrent
// erase_namespace from another process is never half-seen. get_many/put_many
// pipeline one script call per key in a single round trip. erase_tenant uses
// the tenant index (SPOP in chunks, then UNLINK), never SCAN; the index
// expires with the longest-lived value put into it, and purge_expired()
// removes index members whose value has already expired. The scripts touch
// keys they do not declare: standalone Redis (or a single-shard setup), not
// Redis Cluster.
//
// Connections: a small pool (at most `pool_size`), created lazily; a
// connection that fails is closed and replaced on next use. Connect and each
// command are bounded by their timeouts; waiting for a free pooled connection
// is bounded by command_timeout. Errors: kUnavailable (cannot connect, pool
// exhausted, connection lost), kTimeout (a command timed out), kIoError
// (Redis answered with an error).
//
// Thread-safety: all members may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "callcache/backend.h"
#include "callcache/status.h"

namespace callcache {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  // Sent with AUTH after connecting when non-empty. The storage config reads
  // it from an environment variable; never put it in a file.
  std::string password;
  Duration connect_timeout = std::chrono::milliseconds(200);
  Duration command_timeout = std::chrono::milliseconds(100);
  // Most connections open at once. REQUIRES: > 0.
  std::size_t pool_size = 4;
  // First segment of every key.
  std::string prefix = "cc";
};

// Parses "redis://host:port/db" (port defaults to 6379, db to 0) into
// host/port/db of `out`. A password in the URL is refused (use an
// environment variable). Errors (kInvalidArgument) quote the URL.
Status parse_redis_url(std::string_view url, RedisOptions& out);

// Creates the backend. Does not connect yet (the first call does), so a Redis
// that is down at start-up is an outage, not a start-up failure; call
// health() to check. Errors: kInvalidArgument for bad options.
Result<std::unique_ptr<Backend>> open_redis_backend(RedisOptions options);

}  // namespace callcache
