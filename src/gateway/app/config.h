// Internal: the configuration of `callcache serve`, with command-line
// overrides applied on top. The gateway's own sections are `server:`,
// `admin:`, `gateway:`, `telegram:` (the Bot API preset's override mapping,
// read by the logic layer) and `apis:` (generic JSON APIs fronted next to the
// Bot API). The sections of the library's modules are read by those modules'
// readers, in the one format every callcache program shares
// (docs/architecture.md, "Configuration"):
//   tenant_key, engine, namespaces   config::read_engine_sections
//   rate_limits                      config::read_rate_limits (pacing rules)
//   storage                          tiers::read_storage_config
//
// Every error names the key path and the offending value
// ("gateway.pacing.max_wait: expected a duration ..., got 'soon'").
//
// Thread-safety: plain values.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "callcache/clock.h"
#include "callcache/policy.h"
#include "callcache/rate_limiter.h"
#include "callcache/status.h"
#include "callcache/tenant.h"
#include "gateway/logic/rules.h"
#include "storage_config.h"

namespace callcache::gateway {

// "127.0.0.1:8081" → host + port. Errors name `what` and the text.
struct ListenAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8081;
  std::string to_string() const;
};
Result<ListenAddress> parse_listen(std::string_view text, std::string_view what);

// One generic JSON API (an `apis:` entry), e.g.
//   - name: sns
//     prefix: /sns                    # requests under /sns go to this API
//     upstream: http://127.0.0.1:9000/v1
//     rules: [...]                    # logic::parse_rules
// Validated by parse_config: name and prefix unique, prefixes do not overlap
// and do not shadow /bot... or /file/bot..., every caching rule's namespace
// is declared under `namespaces:` and used by this API only.
struct ApiConfig {
  std::string name;    // [a-z0-9_-]: metrics labels, logs, invalidation tags
  std::string prefix;  // "/sns": no trailing '/'
  // Forward "/sns/templates/1" as "/templates/1" (rules match that path
  // too); false: the full path is matched and forwarded.
  bool strip_prefix = true;
  // Base URL; its path (if any) is prepended to every forwarded target.
  // Checked when the gateway starts (error "apis[0].upstream: ...").
  std::string upstream;
  logic::Rules rules;
  std::string origin;  // "apis[0]", for messages
};

struct GatewayConfig {
  // ---- server: the client-facing listener ----
  ListenAddress listen{"127.0.0.1", 8081};
  unsigned threads = 0;  // 0 = hardware threads
  std::uint64_t max_connections = 10000;
  std::uint64_t max_header_bytes = 64 * 1024;
  std::uint64_t max_body_bytes = 52ull * 1024 * 1024;
  // Uploads (multipart bodies) declared larger than this, or chunked, stream
  // through to the upstream; so do upstream answers (file downloads) larger
  // than this or of unknown length. 0 = buffer everything.
  std::uint64_t stream_threshold = 256 * 1024;
  Duration read_timeout = std::chrono::seconds(30);
  Duration idle_timeout = std::chrono::seconds(60);
  Duration write_timeout = std::chrono::seconds(30);
  // In-flight requests get this long to finish after SIGINT/SIGTERM.
  Duration shutdown_timeout = std::chrono::seconds(10);
  // "" = off, "-" = stderr, else a file path.
  std::string access_log = "-";
  std::string log_level = "info";

  // ---- admin: metrics, stats, health, invalidation, dashboard ----
  bool admin_enabled = true;
  ListenAddress admin_listen{"127.0.0.1", 8082};
  // Required (Authorization: Bearer <token>) when admin listens on a
  // non-loopback address; optional otherwise.
  std::string admin_token;

  // ---- gateway: upstream, tenancy, pacing ----
  std::string upstream = "https://api.telegram.org";
  Duration connect_timeout = std::chrono::seconds(5);
  Duration upstream_timeout = std::chrono::seconds(75);
  bool verify_peer = true;
  std::string ca_file;
  std::uint64_t max_idle_per_origin = 64;
  std::uint64_t max_response_bytes = 64ull * 1024 * 1024;
  bool pacing_enabled = true;
  // A send that would wait longer gets a 429 with an honest retry_after.
  Duration pacing_max_wait = std::chrono::seconds(10);
  // Upstream 429s retried (after the back-off) at most this many times, and
  // only when the back-off is at most retry_max_delay.
  std::uint64_t retry_429 = 2;
  Duration retry_max_delay = std::chrono::seconds(5);

  // ---- rate_limits: the pacing rules (limits' reader) ----
  // rules empty = the Bot API preset's (telegram_bot_preset(), applied to
  // the calls config/telegram_preset.yaml paces).
  RateLimiterOptions rate_limits;

  // ---- storage: the L2 tier (tiers' reader) ----
  // l2: sqlite (default), redis (shared by every gateway using the same
  // server) or none.
  tiers::StorageConfig storage;

  // ---- telegram: the Bot API preset overrides (logic layer) ----
  YAML::Node telegram;

  // ---- tenant_key, engine, namespaces: the engine's sections ----
  // Bot tokens are hashed with tenant_key into tenant ids.
  TenantKey tenant_key = kDefaultTenantKey;
  std::size_t engine_shards = 0;  // 0 = the engine's choice
  Duration engine_sweep_interval = std::chrono::seconds(1);
  // Engine namespaces for the generic APIs' rules (the engine's policy keys:
  // ttl, max_entries, stale_ttl, ...; names must not clash with the
  // Telegram preset's, checked when the gateway starts).
  std::vector<NamespaceSpec> namespaces;
  // ---- apis: generic JSON APIs ----
  std::vector<ApiConfig> apis;
};

// Reads a config document (a null node = all defaults).
Result<GatewayConfig> parse_config(const YAML::Node& root);
Result<GatewayConfig> load_config_file(const std::string& path);

}  // namespace callcache::gateway
