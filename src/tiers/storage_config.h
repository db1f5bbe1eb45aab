// The `storage:` section of the YAML configuration, and the factory that
// builds the configured second-level tier.
//
//   storage:
//     l2: sqlite                  # none | sqlite | redis (default sqlite)
//     path: ./data/callcache.sqlite3
//     redis_url: redis://127.0.0.1:6379/0
//     redis_password_env: CALLCACHE_REDIS_PASSWORD   # the NAME of an env variable
//     connect_timeout: 200ms      # Redis connect
//     timeout: 100ms              # one L2 call (Redis command, SQLite statement)
//     pool_size: 4                # Redis connections
//     redis_coordination: true    # processes on one Redis: coherent L1s, one load per key
//     write_behind:               # SQLite
//       max_pending: 1024
//       flush_interval: 100ms
//     purge_interval: 60s         # SQLite background purge (0 = off)
//     compression_threshold: 1KiB # zstd at or above this size (0 = off)
//     backoff:                    # after an L2 failure
//       initial: 100ms
//       max: 30s
//
// Every key is optional. Errors name the key path, e.g.
// "storage.write_behind.max_pending: must be greater than zero, got '0'".
// A password is never read from the file: `redis_password` is refused with
// a message pointing at redis_password_env.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "callcache/backend.h"
#include "callcache/clock.h"
#include "callcache/degrading_backend.h"
#include "callcache/redis_backend.h"
#include "callcache/status.h"
#include "yaml_reader.h"

namespace callcache::tiers {

enum class L2Kind : std::uint8_t { kNone, kSqlite, kRedis };

struct StorageConfig {
  L2Kind l2 = L2Kind::kSqlite;
  std::string path = "./data/callcache.sqlite3";
  std::string redis_url = "redis://127.0.0.1:6379/0";
  std::string redis_password_env;  // empty = no AUTH
  Duration connect_timeout = std::chrono::milliseconds(200);
  Duration timeout = std::chrono::milliseconds(100);
  std::uint64_t pool_size = 4;
  // l2: redis — keep every process's L1 coherent and make one load per key
  // across processes (make_coordinator). Off only to measure what it saves.
  bool redis_coordination = true;
  std::uint64_t max_pending_writes = 1024;
  Duration flush_interval = std::chrono::milliseconds(100);
  Duration purge_interval = std::chrono::seconds(60);
  std::uint64_t compression_threshold = 1024;
  Duration initial_backoff = std::chrono::milliseconds(100);
  Duration max_backoff = std::chrono::seconds(30);
};

// Reads the `storage` mapping with `reader` (positioned on it, so errors
// carry its path) into `out`. Returns the first error (reader.finish()).
Status read_storage_config(config::MapReader& reader, StorageConfig& out);

// Convenience: parses `node` as the mapping at `path` ("storage").
Result<StorageConfig> parse_storage_config(const YAML::Node& node,
                                           const std::string& path = "storage");

struct BackendEnvironment {
  TierLogSink log;                 // outage log lines; empty = stderr
  const Clock* clock = nullptr;    // nullptr = default_clock()
  Scheduler* scheduler = nullptr;  // SQLite background work; nullptr = its own thread
};

// Builds the configured tier: for sqlite and redis, the store wrapped in
// compression framing (callcache/codec.h) and a DegradingBackend (so the
// returned Backend is a DegradingBackend: dynamic_cast for degrade_stats());
// for none, a Backend named "none" that stores nothing and always misses.
// Errors: kInvalidArgument naming the key (bad URL, password variable not
// set in the environment), or the store's own error (SQLite file cannot be
// opened). A Redis that is down is not an error here (it is an outage).
Result<std::unique_ptr<Backend>> make_backend(const StorageConfig& config,
                                              const BackendEnvironment& env = {});

// The Redis connection options of a `redis` config (URL, password from the
// environment, timeouts, pool size). Errors as make_backend.
Result<RedisOptions> redis_options(const StorageConfig& config);

// For l2: redis, the coordinator that keeps every process's L1 coherent and
// makes one load per key across processes (TiersOptions::coordinator);
// nullptr for other stores. Errors as make_backend.
Result<std::shared_ptr<TierCoordinator>> make_coordinator(const StorageConfig& config);

}  // namespace callcache::tiers
