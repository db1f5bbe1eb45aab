// Test helper: the gateway configuration the end-to-end tests start from.
#pragma once

#include <chrono>
#include <string>
#include <utility>

#include "gateway/app/config.h"

namespace callcache::gateway::testing {

// Both listeners on loopback on ports the system picks, two threads,
// `upstream` as the Bot API, no L2, no access log, 5-second upstream and
// shutdown timeouts. Sets only those fields, so it can follow a parsed YAML.
inline void use_loopback(GatewayConfig& c, std::string upstream) {
  using namespace std::chrono_literals;
  c.listen = {"127.0.0.1", 0};
  c.admin_listen = {"127.0.0.1", 0};
  c.threads = 2;
  c.upstream = std::move(upstream);
  c.storage.l2 = tiers::L2Kind::kNone;
  c.access_log = "";
  c.upstream_timeout = 5s;
  c.shutdown_timeout = 5s;
}

inline GatewayConfig loopback_config(std::string upstream) {
  GatewayConfig c;
  use_loopback(c, std::move(upstream));
  return c;
}

// loopback_config() with Redis (`redis_url`) as the L2.
inline GatewayConfig loopback_redis_config(std::string upstream, std::string redis_url) {
  GatewayConfig c = loopback_config(std::move(upstream));
  c.storage.l2 = tiers::L2Kind::kRedis;
  c.storage.redis_url = std::move(redis_url);
  return c;
}

}  // namespace callcache::gateway::testing
