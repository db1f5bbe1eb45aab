// Internal: the gateway's builders — each makes one part of the gateway
// from its config section (engine, L2 tier, tiers, pacing limiter, upstream
// client, API fronts, access log, listeners) or fails with a Status that
// names the config key and value. Gateway::Impl::init() chains them in
// dependency order and stops at the first error.
//
// Thread-safety: called once, from the thread creating the Gateway.
// Ownership: every part is returned owned; what a part only points at
// (engine, tiers, metrics, io_contexts, the router) must outlive it.
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "callcache/backend.h"
#include "callcache/engine.h"
#include "callcache/rate_limiter.h"
#include "callcache/redis_backend.h"
#include "callcache/status.h"
#include "callcache/tiers.h"
#include "gateway/admin/admin_handler.h"
#include "gateway/admin/stats_history.h"
#include "gateway/admin/stats_sampler.h"
#include "gateway/app/config.h"
#include "gateway/app/router.h"
#include "gateway/generic/generic_handler.h"
#include "gateway/logic/preset.h"
#include "gateway/metrics.h"
#include "gateway/net/server.h"
#include "gateway/net/upstream.h"
#include "gateway/telegram/bot_api_handler.h"

namespace callcache::gateway {

// Moves a built part into its place, or returns why it could not be built.
template <typename T>
Status take(Result<T> built, T& into) {
  if (!built.ok()) return built.status();
  into = std::move(*built);
  return Status();
}

// The engine: the Telegram preset's namespaces, the generic APIs' beside them.
Result<std::unique_ptr<Engine>> build_engine(const GatewayConfig& c, const logic::Preset& preset);

// The L2 tier (storage:), if any, and what shares it with other gateways.
struct Storage {
  std::unique_ptr<Backend> backend;              // null: no L2
  std::shared_ptr<TierCoordinator> coordinator;  // redis_coordination only
  std::optional<RedisOptions> shared_redis;      // l2: redis — also pacing's store
  std::string description;  // "sqlite <path>" / "redis <url>", for the start-up line
};

// The store behind the tiers library's framing and DegradingBackend, and the
// invalidation keeper; the coordinator when gateways share Redis.
Result<Storage> build_storage(const GatewayConfig& c, Engine& engine);

// Both tiers as one: read-through for the handlers, invalidation of both for
// writes and the admin routes. L2 failures never fail a request: they are
// counted (Metrics::tier_error). Outages are logged once per outage by the
// DegradingBackend; other failures (a value the tier refuses) once here
// (`warned`), then at debug level.
std::unique_ptr<Tiers> build_tiers(Engine& engine, const Storage& storage, Metrics& metrics,
                                   std::atomic<bool>& warned);

// Pacing (rate_limits:): shared through Redis when L2 is Redis, else local;
// null when pacing is off.
Result<std::unique_ptr<RateLimiter>> build_limiter(const GatewayConfig& c, const Storage& storage,
                                                   Engine& engine);

// The pooled upstream client (gateway: timeouts, TLS, answer limits).
Result<std::unique_ptr<UpstreamClient>> build_upstream(const GatewayConfig& c,
                                                       boost::asio::any_io_executor executor);

// The API fronts and the router between them.
struct Fronts {
  std::unique_ptr<BotApiHandler> bot_api;
  std::vector<std::unique_ptr<GenericHandler>> generic;
  std::unique_ptr<Router> router;
};

// The Bot API front (gateway.upstream), each generic API's front (apis:)
// under its prefix, and the router; `deps` are what every front reads
// through.
Result<Fronts> build_fronts(const GatewayConfig& c, const BotApiHandlerDeps& deps);

// The access log (server.access_log): "-" = stderr, a file, "" = none.
Result<std::shared_ptr<spdlog::logger>> build_access_log(const GatewayConfig& c);

// The client-facing listener (server:), bound; its own refusals in the shape
// of the front the request was for (Router::error_answer).
Result<std::unique_ptr<HttpServer>> build_server(const GatewayConfig& c,
                                                 std::vector<boost::asio::io_context*> contexts,
                                                 Router& router,
                                                 std::shared_ptr<spdlog::logger> access_log);

// The admin routes and the dashboard's history behind them.
struct Admin {
  std::unique_ptr<StatsHistory> history;
  std::unique_ptr<HistorySampler> sampler;
  std::unique_ptr<AdminHandler> handler;
  std::unique_ptr<HttpServer> server;
};

// The admin listener (admin:): loopback unless a token guards it; its
// history sampled once a second from `sources` while the gateway runs.
Result<Admin> build_admin(const GatewayConfig& c, AdminDeps deps, SamplerSources sources,
                          boost::asio::io_context& ioc, std::shared_ptr<spdlog::logger> access_log);

}  // namespace callcache::gateway
