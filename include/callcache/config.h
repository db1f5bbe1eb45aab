// callcache/config.h — the engine's part of the YAML configuration
// (library callcache_config; libcallcache itself needs no YAML).
//
//   tenant_key: 000102030405060708090a0b0c0d0e0f   # 32 hex digits; keep it secret
//   engine:
//     shards: 0              # 0 = automatic
//     sweep_interval: 1s     # background expiry; 0 = off
//   namespaces:
//     entity:                # defaults mirror the seeds: entity 300 s, message 60 s,
//       ttl: 5m              # full_channel 600 s, discussion 300 s, input_peer 300 s,
//       max_entries: 500     # 500 entries each
//       max_bytes: 10MB
//       max_entries_per_tenant: 100
//       eviction: adaptive   # the default; or s3fifo, wtinylfu, lru
//       negative_ttl: 30s
//       stale_ttl: 1m
//       refresh_ahead: 10s
//       jitter: 0.1
//       load_timeout: 5s
//       shared: false        # true: public data served to every tenant
//
// Durations accept 300, 300s, 250ms, 5m, 1h; sizes 1000, 64KB, 10MB. A bad
// file is rejected with an error naming the key's path and the value, e.g.
// "namespaces.entity.ttl: expected a duration like 300, 300s, 5m or 1h, got 'soon'".
#pragma once

#include <string>
#include <vector>

#include "callcache/engine.h"
#include "callcache/status.h"
#include "callcache/tenant.h"

namespace callcache {

struct EngineConfig {
  TenantKey tenant_key = kDefaultTenantKey;
  std::vector<NamespaceSpec> namespaces = default_namespaces();
  std::size_t shards = 0;
  Duration sweep_interval = std::chrono::seconds(1);

  // Engine options for this configuration (clock and scheduler left default).
  EngineOptions engine_options() const;
};

// Parses the engine sections of a YAML document given as text. Other
// top-level sections are ignored (an application's loader checks them).
Result<EngineConfig> parse_engine_config(const std::string& yaml);
// Same, from a file.
Result<EngineConfig> load_engine_config(const std::string& path);

}  // namespace callcache
