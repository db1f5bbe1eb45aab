// Gateway: wiring, I/O threads, signals and the shutdown sequence.
#include "gateway/app/gateway.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "callcache/redis_backend.h"
#include "callcache/tiers.h"
#include "gateway/admin/admin_handler.h"
#include "gateway/admin/stats_history.h"
#include "gateway/admin/stats_sampler.h"
#include "gateway/app/invalidation_keeper.h"
#include "gateway/app/router.h"
#include "gateway/generic/generic_handler.h"
#include "gateway/logic/preset.h"
#include "gateway/metrics.h"
#include "gateway/net/server.h"
#include "gateway/net/upstream.h"
#include "gateway/telegram/bot_api_handler.h"
#include "storage_config.h"

namespace callcache::gateway {

namespace net = boost::asio;

class Gateway::Impl {
  static std::vector<std::unique_ptr<net::io_context>> make_contexts(unsigned n) {
    std::vector<std::unique_ptr<net::io_context>> out;
    for (unsigned i = 0; i < n; ++i) out.push_back(std::make_unique<net::io_context>(1));
    return out;
  }

 public:
  explicit Impl(GatewayConfig config)
      : config_(std::move(config)),
        threads_n_(config_.threads ? config_.threads
                                   : std::max(1u, std::thread::hardware_concurrency())),
        contexts_(make_contexts(threads_n_)),
        signals_(std::in_place, *contexts_.front()) {
    for (auto& ctx : contexts_) work_.push_back(net::make_work_guard(*ctx));
  }

  Status init() {
    auto preset = logic::load_telegram_preset(config_.telegram);
    if (!preset.ok()) return preset.status();
    preset_ = std::move(*preset);
    post_write_ = std::make_unique<logic::PostWriteState>(
        std::max<std::uint64_t>(1, preset_.post_write_max_entries));

    EngineOptions eo;
    eo.shards = config_.engine_shards;
    eo.sweep_interval = config_.engine_sweep_interval;
    eo.namespaces = preset_.namespaces;
    // The generic APIs' namespaces (apis:) sit beside the preset's.
    for (const auto& spec : config_.namespaces) {
      for (const auto& taken : preset_.namespaces) {
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
    if (!engine.ok()) return engine.status();
    engine_ = std::move(*engine);
    engine_->set_scope_label("process");

    std::optional<RedisOptions> shared_redis;  // l2: redis — also pacing's store
    if (config_.storage.l2 != tiers::L2Kind::kNone) {
      // The tiers library's factory: the store behind compression framing
      // and a DegradingBackend, so an L2 outage costs a counter per call and
      // one log line per outage (its recovery is logged too).
      const tiers::StorageConfig& sc = config_.storage;
      l2_description_ = sc.l2 == tiers::L2Kind::kRedis ? "redis " + sc.redis_url
                                                       : "sqlite " + sc.path;
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
      backend_ = std::make_unique<InvalidationKeeper>(std::move(*backend),
                                                      engine_->namespace_names(),
                                                      &engine_->scheduler());
      // Several gateways sharing one Redis: invalidations reach every
      // gateway's L1, and one upstream call per key across them.
      auto coordinator = sc.redis_coordination
                             ? tiers::make_coordinator(sc)
                             : Result<std::shared_ptr<TierCoordinator>>(nullptr);
      if (!coordinator.ok()) {
        const std::string& m = coordinator.status().message();
        return Status(coordinator.status().code(), m.starts_with("storage.") ? m : "storage: " + m);
      }
      coordinator_ = std::move(*coordinator);
      if (sc.l2 == tiers::L2Kind::kRedis) shared_redis = tiers::redis_options(sc).value();
    }
    // Both tiers as one: read-through for the handlers, invalidation of
    // both for writes and the admin routes. L2 failures never fail a
    // request: they are counted (Metrics::tier_error). Outages are logged
    // once per outage by the DegradingBackend; other failures (a value the
    // tier refuses) once here, then at debug level.
    TiersOptions to;
    to.on_error = [this](const Status& s, std::string_view what) {
      metrics_.tier_error();
      const Code c = s.code();
      const bool outage = c == Code::kUnavailable || c == Code::kTimeout || c == Code::kIoError ||
                          c == Code::kCorruption || c == Code::kInternal || c == Code::kShutdown ||
                          c == Code::kDeadlineExceeded;
      std::string_view name = backend_ ? backend_->name() : std::string_view("-");
      if (!outage && !tier_warned_.exchange(true, std::memory_order_relaxed)) {
        spdlog::warn("L2 {} {} failed: {} (further failures are logged at debug level)", name, what,
                     s.to_string());
      } else {
        spdlog::debug("L2 {} {} failed: {}", name, what, s.to_string());
      }
    };
    to.coordinator = coordinator_;
    tiers_ = std::make_unique<Tiers>(*engine_, backend_.get(), std::move(to));

    if (config_.pacing_enabled) {
      RateLimiterOptions ro = config_.rate_limits;
      if (ro.rules.empty()) {
        // The Bot API preset (config/telegram_preset.yaml) decides which calls
        // are paced and whether per chat; the limits are Telegram's.
        ro.rules = telegram_bot_preset();
        for (auto& rule : ro.rules) rule.methods.clear();
      }
      // With Redis, every gateway sharing it paces one bot together (one
      // GCRA state per key in Redis), and a 429 penalises the chat in all of
      // them; during a Redis outage each falls back to pacing on its own.
      Result<std::unique_ptr<RateLimiter>> limiter = Status::internal("unset");
      if (shared_redis) {
        RedisRateLimiterOptions rro;
        rro.redis = *shared_redis;
        rro.rules = std::move(ro.rules);
        rro.log = [](std::string_view message) { spdlog::warn("pacing: {}", message); };
        limiter = make_redis_rate_limiter(std::move(rro));
      } else {
        // Idle keys (a chat or bot not seen for a period) are dropped by the
        // engine's scheduler too, not only when their stripe is next touched:
        // after a burst of distinct chats the limiter's memory goes back down.
        ro.scheduler = &engine_->scheduler();
        limiter = make_local_rate_limiter(std::move(ro));
      }
      if (!limiter.ok()) {
        return Status(limiter.status().code(), "rate_limits: " + limiter.status().message());
      }
      limiter_ = std::move(*limiter);
    }

    auto origin = Origin::parse(config_.upstream);
    if (!origin.ok())
      return Status::invalid_argument("gateway.upstream: " + origin.status().message());
    UpstreamOptions uo;
    uo.connect_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(config_.connect_timeout);
    uo.read_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(config_.upstream_timeout);
    uo.verify_peer = config_.verify_peer;
    uo.ca_file = config_.ca_file;
    uo.max_idle_per_origin = config_.max_idle_per_origin;
    uo.max_response_bytes = config_.max_response_bytes;
    uo.stream_threshold = config_.stream_threshold;
    auto upstream = UpstreamClient::create(contexts_.front()->get_executor(), uo);
    if (!upstream.ok()) return upstream.status();
    upstream_ = std::move(*upstream);

    BotApiHandlerDeps deps;
    deps.preset = &preset_;
    deps.post_write = post_write_.get();
    deps.tiers = tiers_.get();
    deps.limiter = limiter_.get();
    deps.upstream = upstream_.get();
    deps.metrics = &metrics_;
    BotApiHandlerOptions ho;
    ho.upstream = *origin;
    ho.tenant_key = config_.tenant_key;
    ho.limits.max_upload_bytes = config_.max_body_bytes;
    ho.pacing_max_wait = config_.pacing_max_wait;
    ho.retry_429 = config_.retry_429;
    ho.retry_max_delay = config_.retry_max_delay;
    ho.log_targets = !config_.access_log.empty();
    auto handler = BotApiHandler::create(deps, ho);
    if (!handler.ok()) return handler.status();
    handler_ = std::move(*handler);

    // Generic JSON APIs (apis:), each under its prefix, beside the Bot API.
    std::vector<Router::Route> routes;
    for (const ApiConfig& api : config_.apis) {
      auto api_origin = Origin::parse(api.upstream);
      if (!api_origin.ok()) {
        return Status::invalid_argument(api.origin + ".upstream: " + api_origin.status().message());
      }
      GenericHandlerDeps gd;
      gd.tiers = tiers_.get();
      gd.upstream = upstream_.get();
      gd.metrics = &metrics_;
      GenericHandlerOptions go;
      go.name = api.name;
      go.prefix = api.prefix;
      go.strip_prefix = api.strip_prefix;
      go.upstream = *api_origin;
      go.rules = api.rules;
      go.tenant_key = config_.tenant_key;
      go.log_targets = !config_.access_log.empty();
      auto generic = GenericHandler::create(gd, std::move(go));
      if (!generic.ok()) return generic.status();
      routes.push_back({api.prefix, generic->get()});
      generic_handlers_.push_back(std::move(*generic));
    }
    router_ = std::make_unique<Router>(*handler_, std::move(routes), metrics_);

    if (!config_.access_log.empty()) {
      try {
        if (config_.access_log == "-") {
          access_log_ = std::make_shared<spdlog::logger>(
              "access", std::make_shared<spdlog::sinks::stderr_sink_mt>());
        } else {
          access_log_ = std::make_shared<spdlog::logger>(
              "access", std::make_shared<spdlog::sinks::basic_file_sink_mt>(config_.access_log));
        }
        access_log_->set_pattern("%Y-%m-%dT%H:%M:%S.%e %v");
      } catch (const spdlog::spdlog_ex& e) {
        return Status::io_error("server.access_log: " + std::string(e.what()));
      }
    }

    ServerOptions so;
    so.address = config_.listen.host;
    so.port = config_.listen.port;
    so.max_connections = config_.max_connections;
    so.max_header_bytes = static_cast<std::uint32_t>(config_.max_header_bytes);
    so.max_body_bytes = config_.max_body_bytes;
    so.stream_threshold = config_.stream_threshold;
    so.read_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config_.read_timeout);
    so.idle_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config_.idle_timeout);
    so.write_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config_.write_timeout);
    so.name = "gateway";
    so.access_log = access_log_;
    // The server's own refusals in the shape of the front the request was for.
    so.error_answer = [router = router_.get()](int status, std::string_view reason,
                                               std::string_view target) {
      return router->error_answer(status, reason, target);
    };
    std::vector<net::io_context*> contexts;
    for (auto& ctx : contexts_) contexts.push_back(ctx.get());
    auto server = HttpServer::create(std::move(contexts), so, *router_);
    if (!server.ok())
      return Status(server.status().code(), "server.listen: " + server.status().message());
    server_ = std::move(*server);

    if (config_.admin_enabled) {
      boost::system::error_code ec;
      auto addr = boost::asio::ip::make_address(config_.admin_listen.host, ec);
      if (ec) {
        return Status::invalid_argument("admin.listen: '" + config_.admin_listen.host +
                                        "' is not an IP address (e.g. 127.0.0.1:8082)");
      }
      if (!addr.is_loopback() && config_.admin_token.empty()) {
        return Status::invalid_argument(
            "admin.listen: " + config_.admin_listen.to_string() +
            " is not a loopback address; set admin.token to expose the admin routes");
      }
      AdminDeps ad;
      ad.engine = engine_.get();
      ad.metrics = &metrics_;
      ad.limiter = limiter_.get();
      ad.tiers = tiers_.get();
      ad.preset = &preset_;
      HttpServer* s = server_.get();
      ad.connections = [s] { return s->connections(); };
      ad.busy = [s] { return s->busy(); };
      ad.stopping = &stopping_;
      ad.tenant_key = config_.tenant_key;
      ad.admin_token = config_.admin_token;
      // The dashboard's history: sampled once a second while the gateway runs.
      history_ = std::make_unique<StatsHistory>();
      sampler_ = std::make_unique<HistorySampler>(
          SamplerSources{&metrics_, engine_.get(), backend_.get()}, *history_);
      ad.history = history_.get();
      admin_handler_ = std::make_unique<AdminHandler>(std::move(ad));
      ServerOptions as = so;
      as.address = config_.admin_listen.host;
      as.port = config_.admin_listen.port;
      as.max_connections = 64;
      as.max_body_bytes = 64 * 1024;
      as.name = "admin";
      as.error_answer = [](int status, std::string_view reason, std::string_view) {
        return bot_api_error(status, reason);  // the admin routes' own errors' shape
      };
      auto admin = HttpServer::create(*contexts_.front(), as, *admin_handler_);
      if (!admin.ok()) {
        return Status(admin.status().code(), "admin.listen: " + admin.status().message());
      }
      admin_ = std::move(*admin);
    }
    return Status();
  }

  void start() {
    if (sampler_) sampler_->start();  // its baseline sample first: before any request
    server_->start();
    if (admin_) admin_->start();
    for (auto& ctx : contexts_) {
      threads_.emplace_back([ctx = ctx.get()] {
        for (;;) {
          try {
            ctx->run();
            return;
          } catch (const std::exception& e) {
            spdlog::error("I/O thread: {}", e.what());
          }
        }
      });
    }
  }

  void stop() {
    std::lock_guard lock(mu_);
    if (!stop_requested_) spdlog::info("callcache serve: shutting down");
    stop_requested_ = true;
    stopping_ = true;
    cv_.notify_all();
  }

  int wait() {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_requested_; });
    }
    server_->stop_accepting();
    server_->close_idle();
    auto deadline = std::chrono::steady_clock::now() + config_.shutdown_timeout;
    while (server_->connections() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      server_->close_idle();
    }
    if (server_->connections() > 0) {
      spdlog::warn(
          "callcache serve: {} connections still busy after {} ms; closing them",
          server_->connections(),
          std::chrono::duration_cast<std::chrono::milliseconds>(config_.shutdown_timeout).count());
      server_->force_close();
    }
    if (admin_) admin_->force_close();
    if (sampler_) sampler_->stop();
    upstream_->close_idle();
    signals_->cancel();
    work_.clear();
    for (auto& ctx : contexts_) ctx->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    int code = 0;
    if (backend_) {
      Status s = backend_->flush();
      if (!s.ok()) {
        spdlog::error("callcache serve: flushing the L2 tier failed: {}", s.to_string());
        code = 1;
      }
    }
    return code;
  }

  int run_until_signal() {
    signals_->add(SIGINT);
    signals_->add(SIGTERM);
    signals_->async_wait([this](const boost::system::error_code& ec, int) {
      if (!ec) stop();
    });
    start();
    spdlog::info(
        "callcache serve: listening on http://{}:{} (upstream {}), admin {}, L2 {}, {} threads",
        config_.listen.host, server_->port(), config_.upstream,
        admin_ ? "http://" + config_.admin_listen.host + ":" + std::to_string(admin_->port())
               : std::string("off"),
        backend_ ? l2_description_ : std::string("none"), threads_n_);
    return wait();
  }

  std::uint16_t port() const { return server_->port(); }
  std::uint16_t admin_port() const { return admin_ ? admin_->port() : 0; }
  Engine& engine() { return *engine_; }
  const Metrics& metrics() const { return metrics_; }

  ~Impl() {
    if (!threads_.empty()) {
      stop();
      (void)wait();
    }
    // No lease wait may resume a load (which posts to an io_context) once
    // the contexts start going away.
    if (coordinator_) coordinator_->stop();
    // Sockets must go before their io_context; the io_context (and the
    // coroutine frames it still holds) before the handlers those frames use.
    server_.reset();
    admin_.reset();
    if (upstream_) upstream_->close_idle();
    signals_.reset();
    work_.clear();
    contexts_.clear();
  }

 private:
  GatewayConfig config_;
  unsigned threads_n_;
  // Destruction order matters: the servers and handlers go before what they use.
  logic::Preset preset_;
  std::unique_ptr<logic::PostWriteState> post_write_;
  Metrics metrics_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Backend> backend_;
  std::atomic<bool> tier_warned_{false};  // a non-outage L2 failure was logged at warn level
  std::shared_ptr<TierCoordinator> coordinator_;  // l2: redis only
  std::unique_ptr<Tiers> tiers_;
  std::unique_ptr<RateLimiter> limiter_;
  // One io_context per I/O thread, each run by that thread alone: sessions
  // need no strands and requests cross no threads. The first one also runs
  // the acceptors, the admin listener, signals and the upstream pool.
  std::vector<std::unique_ptr<net::io_context>> contexts_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::optional<net::signal_set> signals_;
  std::unique_ptr<UpstreamClient> upstream_;
  std::unique_ptr<BotApiHandler> handler_;
  std::vector<std::unique_ptr<GenericHandler>> generic_handlers_;
  std::unique_ptr<Router> router_;
  std::string l2_description_;  // "sqlite <path>" / "redis <url>", for the start-up line
  std::unique_ptr<StatsHistory> history_;
  std::unique_ptr<HistorySampler>
      sampler_;  // reads metrics_, engine_, backend_; records into history_
  std::unique_ptr<AdminHandler> admin_handler_;
  std::shared_ptr<spdlog::logger> access_log_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<HttpServer> admin_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;  // guards stop_requested_
  std::condition_variable cv_;
  bool stop_requested_ = false;
};

Result<std::unique_ptr<Gateway>> Gateway::create(GatewayConfig config) {
  auto impl = std::make_unique<Impl>(std::move(config));
  Status s = impl->init();
  if (!s.ok()) return s;
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() = default;
std::uint16_t Gateway::port() const { return impl_->port(); }
std::uint16_t Gateway::admin_port() const { return impl_->admin_port(); }
void Gateway::start() { impl_->start(); }
void Gateway::stop() { impl_->stop(); }
int Gateway::wait() { return impl_->wait(); }
int Gateway::run_until_signal() { return impl_->run_until_signal(); }
Engine& Gateway::engine() { return impl_->engine(); }
const Metrics& Gateway::metrics() const { return impl_->metrics(); }

int serve_main(int argc, char** argv) {
  CLI::App app{"callcache serve: a caching, coalescing, pacing proxy for the Telegram Bot API"};
  std::string config_file, listen, upstream, admin_listen, admin_token, storage, sqlite_path,
      redis_url, access_log, log_level;
  unsigned threads = 0;
  bool no_admin = false;
  app.add_option("-c,--config", config_file, "YAML config file (see config/callcache.yaml)");
  app.add_option("--listen", listen, "client listener HOST:PORT (server.listen)");
  app.add_option("--upstream", upstream, "upstream base URL (gateway.upstream)");
  app.add_option("--threads", threads, "I/O threads, 0 = hardware threads (server.threads)");
  app.add_option("--admin-listen", admin_listen, "admin listener HOST:PORT (admin.listen)");
  app.add_flag("--no-admin", no_admin, "disable the admin listener");
  app.add_option("--admin-token", admin_token, "require this Bearer token on admin routes");
  app.add_option("--storage", storage, "L2 tier: sqlite, redis or none (storage.l2)");
  app.add_option("--sqlite-path", sqlite_path, "SQLite file (storage.path)");
  app.add_option("--redis-url", redis_url, "redis://host:port/db (storage.redis_url)");
  app.add_option("--access-log", access_log, "'-' (stderr), 'off', or a file (server.access_log)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto config = config_file.empty() ? parse_config(YAML::Node()) : load_config_file(config_file);
  if (!config.ok()) {
    std::fprintf(stderr, "callcache serve: %s\n", config.status().message().c_str());
    return 2;
  }
  GatewayConfig& c = *config;
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "callcache serve: %s\n", s.message().c_str());
    return 2;
  };
  if (!listen.empty()) {
    auto a = parse_listen(listen, "--listen");
    if (!a.ok()) return fail(a.status());
    c.listen = *a;
  }
  if (!admin_listen.empty()) {
    auto a = parse_listen(admin_listen, "--admin-listen");
    if (!a.ok()) return fail(a.status());
    c.admin_listen = *a;
  }
  if (!upstream.empty()) c.upstream = upstream;
  if (app.count("--threads")) c.threads = threads;
  if (no_admin) c.admin_enabled = false;
  if (!admin_token.empty()) c.admin_token = admin_token;
  if (!storage.empty()) {
    if (storage == "sqlite") {
      c.storage.l2 = tiers::L2Kind::kSqlite;
    } else if (storage == "redis") {
      c.storage.l2 = tiers::L2Kind::kRedis;
    } else if (storage == "none") {
      c.storage.l2 = tiers::L2Kind::kNone;
    } else {
      return fail(Status::invalid_argument("--storage: expected sqlite, redis or none, got '" +
                                           storage + "'"));
    }
  }
  if (!sqlite_path.empty()) c.storage.path = sqlite_path;
  if (!redis_url.empty()) {
    RedisOptions probe;
    Status u = parse_redis_url(redis_url, probe);
    if (!u.ok()) return fail(Status::invalid_argument("--redis-url: " + u.message()));
    c.storage.redis_url = redis_url;
  }
  if (!access_log.empty()) c.access_log = access_log == "off" ? "" : access_log;
  if (!log_level.empty()) c.log_level = log_level;
  auto level = spdlog::level::from_str(c.log_level);
  if (level == spdlog::level::off && c.log_level != "off") {
    return fail(Status::invalid_argument("--log-level: unknown level '" + c.log_level + "'"));
  }
  spdlog::set_level(level);

  auto gateway = Gateway::create(std::move(c));
  if (!gateway.ok()) return fail(gateway.status());
  return (*gateway)->run_until_signal();
}

}  // namespace callcache::gateway
