// The gateway's builders (gateway/app/builders.h).
#include "gateway/app/builders.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ip/address.hpp>

#include "gateway/app/invalidation_keeper.h"
#include "storage_config.h"

namespace callcache::gateway {

namespace net = boost::asio;

Result<std::unique_ptr<Engine>> build_engine(const GatewayConfig& c, const logic::Preset& preset) {
  EngineOptions eo;
  eo.shards = c.engine_shards;
  eo.sweep_interval = c.engine_sweep_interval;
  eo.namespaces = preset.namespaces;
  for (const auto& spec : c.namespaces) {
    for (const auto& taken : preset.namespaces) {
      if (taken.name == spec.name) {
        return Status::invalid_argument(
            "namespaces." + spec.name +
            ": the Telegram preset already declares this namespace (override its policy under "
            "telegram.namespaces, or pick another name)");
      }
    }
    eo.namespaces.push_back(spec);
  }
  auto engine = Engine::create(std::move(eo));
  if (engine.ok()) (*engine)->set_scope_label("process");
  return engine;
}

Result<Storage> build_storage(const GatewayConfig& c, Engine& engine) {
  Storage out;
  if (c.storage.l2 == tiers::L2Kind::kNone) return out;
  // An L2 outage costs a counter per call and one log line per outage (its
  // recovery is logged too).
  const tiers::StorageConfig& sc = c.storage;
  out.description = sc.l2 == tiers::L2Kind::kRedis ? "redis " + sc.redis_url : "sqlite " + sc.path;
  tiers::BackendEnvironment env;
  env.log = [](TierLogLevel level, std::string_view message) {
    if (level == TierLogLevel::kWarning) {
      spdlog::warn("{}", message);
    } else {
      spdlog::info("{}", message);
    }
  };
  auto backend = tiers::make_backend(sc, env);
  if (!backend.ok()) return backend.status();  // names the storage key
  // Invalidations of L2 are committed before a write is answered, and
  // remembered and replayed if the store misses them
  // (gateway/app/invalidation_keeper.h).
  out.backend = std::make_unique<InvalidationKeeper>(std::move(*backend), engine.namespace_names(),
                                                     &engine.scheduler());
  // Several gateways sharing one Redis: invalidations reach every gateway's
  // L1, and one upstream call per key across them.
  auto coordinator = sc.redis_coordination ? tiers::make_coordinator(sc)
                                           : Result<std::shared_ptr<TierCoordinator>>(nullptr);
  if (!coordinator.ok()) {
    const Status why = coordinator.status();  // by value: keep it while its message is read
    const std::string& m = why.message();
    return Status(why.code(), m.starts_with("storage.") ? m : "storage: " + m);
  }
  out.coordinator = std::move(*coordinator);
  if (sc.l2 == tiers::L2Kind::kRedis) out.shared_redis = tiers::redis_options(sc).value();
  return out;
}

std::unique_ptr<Tiers> build_tiers(Engine& engine, const Storage& storage, Metrics& metrics,
                                   std::atomic<bool>& warned) {
  TiersOptions to;
  to.on_error = [&metrics, &warned, backend = storage.backend.get()](const Status& s,
                                                                     std::string_view what) {
    metrics.tier_error();
    const Code c = s.code();
    const bool outage = c == Code::kUnavailable || c == Code::kTimeout || c == Code::kIoError ||
                        c == Code::kCorruption || c == Code::kInternal || c == Code::kShutdown ||
                        c == Code::kDeadlineExceeded;
    std::string_view name = backend ? backend->name() : std::string_view("-");
    if (!outage && !warned.exchange(true, std::memory_order_relaxed)) {
      spdlog::warn("L2 {} {} failed: {} (further failures are logged at debug level)", name, what,
                   s.to_string());
    } else {
      spdlog::debug("L2 {} {} failed: {}", name, what, s.to_string());
    }
  };
  to.coordinator = storage.coordinator;
  return std::make_unique<Tiers>(engine, storage.backend.get(), std::move(to));
}

Result<std::unique_ptr<RateLimiter>> build_limiter(const GatewayConfig& c, const Storage& storage,
                                                   Engine& engine) {
  if (!c.pacing_enabled) return std::unique_ptr<RateLimiter>();
  RateLimiterOptions ro = c.rate_limits;
  if (ro.rules.empty()) {
    // The Bot API preset (config/telegram_preset.yaml) decides which calls
    // are paced and whether per chat; the limits are Telegram's.
    ro.rules = telegram_bot_preset();
    for (auto& rule : ro.rules) rule.methods.clear();
  }
  // With Redis, every gateway sharing it paces one bot together (one GCRA
  // state per key in Redis), and a 429 penalises the chat in all of them;
  // during a Redis outage each falls back to pacing on its own.
  Result<std::unique_ptr<RateLimiter>> limiter = Status::internal("unset");
  if (storage.shared_redis) {
    RedisRateLimiterOptions rro;
    rro.redis = *storage.shared_redis;
    rro.rules = std::move(ro.rules);
    rro.log = [](std::string_view message) { spdlog::warn("pacing: {}", message); };
    limiter = make_redis_rate_limiter(std::move(rro));
  } else {
    // Idle keys (a chat or bot not seen for a period) are dropped by the
    // engine's scheduler too, not only when their stripe is next touched:
    // after a burst of distinct chats the limiter's memory goes back down.
    ro.scheduler = &engine.scheduler();
    limiter = make_local_rate_limiter(std::move(ro));
  }
  if (!limiter.ok()) {
    return Status(limiter.status().code(), "rate_limits: " + limiter.status().message());
  }
  return limiter;
}

Result<std::unique_ptr<UpstreamClient>> build_upstream(const GatewayConfig& c,
                                                       net::any_io_executor executor) {
  UpstreamOptions uo;
  uo.connect_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.connect_timeout);
  uo.read_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.upstream_timeout);
  uo.verify_peer = c.verify_peer;
  uo.ca_file = c.ca_file;
  uo.max_idle_per_origin = c.max_idle_per_origin;
  uo.max_response_bytes = c.max_response_bytes;
  uo.stream_threshold = c.stream_threshold;
  return UpstreamClient::create(std::move(executor), uo);
}

Result<Fronts> build_fronts(const GatewayConfig& c, const BotApiHandlerDeps& deps) {
  auto origin = Origin::parse(c.upstream);
  if (!origin.ok())
    return Status::invalid_argument("gateway.upstream: " + origin.status().message());
  BotApiHandlerOptions ho;
  ho.upstream = *origin;
  ho.tenant_key = c.tenant_key;
  ho.limits.max_upload_bytes = c.max_body_bytes;
  ho.pacing_max_wait = c.pacing_max_wait;
  ho.retry_429 = c.retry_429;
  ho.retry_max_delay = c.retry_max_delay;
  ho.log_targets = !c.access_log.empty();
  Fronts out;
  if (Status s = take(BotApiHandler::create(deps, ho), out.bot_api); !s.ok()) return s;

  std::vector<Router::Route> routes;
  for (const ApiConfig& api : c.apis) {
    auto api_origin = Origin::parse(api.upstream);
    if (!api_origin.ok()) {
      return Status::invalid_argument(api.origin + ".upstream: " + api_origin.status().message());
    }
    GenericHandlerDeps gd;
    gd.tiers = deps.tiers;
    gd.upstream = deps.upstream;
    gd.metrics = deps.metrics;
    GenericHandlerOptions go;
    go.name = api.name;
    go.prefix = api.prefix;
    go.strip_prefix = api.strip_prefix;
    go.upstream = *api_origin;
    go.rules = api.rules;
    go.tenant_key = c.tenant_key;
    go.log_targets = !c.access_log.empty();
    auto generic = GenericHandler::create(gd, std::move(go));
    if (!generic.ok()) return generic.status();
    routes.push_back({api.prefix, generic->get()});
    out.generic.push_back(std::move(*generic));
  }
  out.router = std::make_unique<Router>(*out.bot_api, std::move(routes), *deps.metrics);
  return out;
}

Result<std::shared_ptr<spdlog::logger>> build_access_log(const GatewayConfig& c) {
  std::shared_ptr<spdlog::logger> log;
  if (c.access_log.empty()) return log;
  try {
    if (c.access_log == "-") {
      log = std::make_shared<spdlog::logger>("access",
                                             std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else {
      log = std::make_shared<spdlog::logger>(
          "access", std::make_shared<spdlog::sinks::basic_file_sink_mt>(c.access_log));
    }
    log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %v");
  } catch (const spdlog::spdlog_ex& e) {
    return Status::io_error("server.access_log: " + std::string(e.what()));
  }
  return log;
}

namespace {

// What both listeners take from server: (header limit, streaming, timeouts,
// access log); each sets its address, connections, body limit and shape.
ServerOptions listener_options(const GatewayConfig& c, std::shared_ptr<spdlog::logger> access_log) {
  ServerOptions o;
  o.max_header_bytes = static_cast<std::uint32_t>(c.max_header_bytes);
  o.stream_threshold = c.stream_threshold;
  o.read_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.read_timeout);
  o.idle_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.idle_timeout);
  o.write_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.write_timeout);
  o.access_log = std::move(access_log);
  return o;
}

}  // namespace

Result<std::unique_ptr<HttpServer>> build_server(const GatewayConfig& c,
                                                 std::vector<net::io_context*> contexts,
                                                 Router& router,
                                                 std::shared_ptr<spdlog::logger> access_log) {
  ServerOptions so = listener_options(c, std::move(access_log));
  so.address = c.listen.host;
  so.port = c.listen.port;
  so.max_connections = c.max_connections;
  so.max_body_bytes = c.max_body_bytes;
  so.name = "gateway";
  so.error_answer = [&router](int status, std::string_view reason, std::string_view target) {
    return router.error_answer(status, reason, target);
  };
  auto server = HttpServer::create(std::move(contexts), so, router);
  if (!server.ok()) {
    return Status(server.status().code(), "server.listen: " + server.status().message());
  }
  return server;
}

Result<Admin> build_admin(const GatewayConfig& c, AdminDeps deps, SamplerSources sources,
                          net::io_context& ioc, std::shared_ptr<spdlog::logger> access_log) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(c.admin_listen.host, ec);
  if (ec) {
    return Status::invalid_argument("admin.listen: '" + c.admin_listen.host +
                                    "' is not an IP address (e.g. 127.0.0.1:8082)");
  }
  if (!addr.is_loopback() && c.admin_token.empty()) {
    return Status::invalid_argument(
        "admin.listen: " + c.admin_listen.to_string() +
        " is not a loopback address; set admin.token to expose the admin routes");
  }
  Admin out;
  out.history = std::make_unique<StatsHistory>();
  out.sampler = std::make_unique<HistorySampler>(sources, *out.history);
  deps.history = out.history.get();
  deps.tenant_key = c.tenant_key;
  deps.admin_token = c.admin_token;
  out.handler = std::make_unique<AdminHandler>(std::move(deps));
  ServerOptions as = listener_options(c, std::move(access_log));
  as.address = c.admin_listen.host;
  as.port = c.admin_listen.port;
  as.max_connections = 64;
  as.max_body_bytes = 64 * 1024;
  as.name = "admin";
  as.error_answer = [](int status, std::string_view reason, std::string_view) {
    return bot_api_error(status, reason);  // the admin routes' own errors' shape
  };
  auto server = HttpServer::create(ioc, as, *out.handler);
  if (!server.ok()) {
    return Status(server.status().code(), "admin.listen: " + server.status().message());
  }
  out.server = std::move(*server);
  return out;
}

}  // namespace callcache::gateway
