// callcache/redis_backend.h — Redis for more than one process or machine:
// the shared second-level tier (entries visible to every process using the
// same server), and the distributed rate limiter and account locks (below).
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
#include <utility>
#include <vector>

#include "callcache/account_locks.h"
#include "callcache/backend.h"
#include "callcache/rate_limiter.h"
#include "callcache/status.h"
#include "callcache/tiers.h"

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
  // Redis Sentinel: when not empty, `host`/`port` are ignored and every new
  // connection asks these sentinels, in order, for the current address of
  // the master named `sentinel_master` (SENTINEL get-master-addr-by-name), so
  // after a fail-over connections that broke reconnect to the new master
  // (and one that answers READONLY, to a demoted master, is dropped). The
  // sentinels themselves are reached without AUTH.
  std::vector<std::pair<std::string, int>> sentinels;
  std::string sentinel_master;
};

// Parses "redis://host:port/db" (port defaults to 6379, db to 0) into
// host/port/db of `out`, or "redis-sentinel://host:port[,host:port...]/
// master[/db]" (sentinel port defaults to 26379) into sentinels,
// sentinel_master and db. A password in the URL is refused (use an
// environment variable). Errors (kInvalidArgument) quote the URL.
Status parse_redis_url(std::string_view url, RedisOptions& out);

// Creates the backend. Does not connect yet (the first call does), so a Redis
// that is down at start-up is an outage, not a start-up failure; call
// health() to check. Errors: kInvalidArgument for bad options.
Result<std::unique_ptr<Backend>> open_redis_backend(RedisOptions options);

// ---- Cross-process coordination of Tiers ------------------------------------
//
// The TierCoordinator (callcache/tiers.h) over Redis, for every process whose
// Tiers share one Redis as L2: invalidations published on the channel
// <prefix>:events:<db> and applied to every other process's L1; leases as
// keys <prefix>:lease:<ns><tenant-hex><key> (SET NX PX) whose
// release is announced on the same channel. One thread per coordinator holds
// the subscription on its own connection and PINGs it every `heartbeat`; the
// subscription counts as lost when its connection fails or nothing arrives
// for `heartbeat_timeout`. While lost, Tiers drops its L1 at once and every
// `flush_interval`, and once more when it is back: an L1 value outlives a
// missed invalidation by at most heartbeat_timeout + flush_interval (and by
// nothing when Redis itself is killed: the connection fails at once).

struct RedisCoordinatorOptions {
  RedisOptions redis;  // pool_size is ignored (two connections, plus the subscription)
  Duration heartbeat = std::chrono::milliseconds(250);
  Duration heartbeat_timeout = std::chrono::seconds(1);  // REQUIRES: > heartbeat
  Duration flush_interval = std::chrono::seconds(1);
  Duration retry = std::chrono::milliseconds(100);  // between reconnection attempts
};

// Creates the coordinator; it connects when Tiers starts it. Errors:
// kInvalidArgument naming the option.
Result<std::shared_ptr<TierCoordinator>> open_redis_coordinator(RedisCoordinatorOptions options);

// ---- Distributed rate limiter -------------------------------------------
//
// The RateLimiter interface (callcache/rate_limiter.h) over Redis: every
// process built with the same rules shares one GCRA state per key, so two
// processes sharing a bot never exceed its limits together. One Lua script
// (EVALSHA) reads every matching rule's TAT and every applicable penalty,
// picks the start satisfying all, and commits all of them or none — the same
// decision as the local limiter, made atomically in Redis on Redis's clock
// (TIME), so hosts need no clock agreement.
//
// Keys: <prefix>:rl:r:<rule name + scope key> (a rule's TAT, in µs) and
// <prefix>:rl:p:<scope + key> (a penalty's end), each with a PX expiry at
// the moment it goes idle, so idle keys cost Redis nothing. Rules are
// identified by name: processes sharing a Redis must use the same rules.
//
// Waiting: acquire() sleeps the calling thread for the wait Redis granted
// (real time); acquire_async() needs a Scheduler. sweep_idle() returns 0
// (Redis expires idle keys itself). stats() counts this process's calls;
// `keys`/`tracked_keys` are 0 (the keys live in Redis).
//
// Degradation: when Redis fails, calls fall back to an in-process limiter
// with the same rules (each process then paces on its own, so the combined
// rate may exceed a limit during the outage), logged once per outage through
// `log`; Redis is tried again `retry_after_failure` after the last failure.

struct RedisRateLimiterOptions {
  RedisOptions redis;
  std::vector<Rule> rules;
  // Runs acquire_async() completions; nullptr = no async form. Must outlive
  // the limiter.
  Scheduler* scheduler = nullptr;
  // Outage lines (once per outage). Empty = stderr.
  std::function<void(std::string_view message)> log;
  // While Redis is failing, calls use the local fallback for this long
  // before trying Redis again.
  Duration retry_after_failure = std::chrono::seconds(1);
};

// Errors: kInvalidArgument naming the rule or option.
Result<std::unique_ptr<RateLimiter>> make_redis_rate_limiter(RedisRateLimiterOptions options);

// ---- Distributed account locks ---------------------------------------------
//
// The AccountLocks interface (callcache/account_locks.h) over Redis, so one
// account is driven by one task across every process:
//   - a hold is the key <prefix>:lock:<account> = "<token> <since-unix-ms>
//     <task>", set with SET-NX semantics and a PX lease; several accounts are
//     taken all-or-nothing by one Lua script;
//   - release deletes a key only if it still holds our token (Lua
//     compare-and-delete), so a holder whose lease lapsed never frees
//     another's lock;
//   - while held, a background thread renews every lease each lease/3
//     (compare-and-PEXPIRE); a holder that crashes stops renewing and its
//     lock expires after at most one lease;
//   - strict waits poll Redis (every 10-50 ms) until the wait timeout;
//     acquire_all_async() polls on `locks.scheduler` instead of parking a
//     thread (kInvalidArgument without one). Waits run on real time (the
//     leases are Redis's), not on `locks.clock`, which only dates `since`.
// Warn mode takes the free accounts, logs and counts the held ones, and
// proceeds. holders() scans <prefix>:lock:*. When Redis cannot be reached,
// acquire returns kUnavailable (a lock must never be assumed).

struct RedisAccountLockOptions {
  RedisOptions redis;
  AccountLockOptions locks;
  // How long a hold survives without renewal. REQUIRES: >= 30 ms.
  Duration lease = std::chrono::seconds(10);
};

// Errors: kInvalidArgument naming the option.
Result<std::unique_ptr<AccountLocks>> make_redis_account_locks(RedisAccountLockOptions options);

}  // namespace callcache
