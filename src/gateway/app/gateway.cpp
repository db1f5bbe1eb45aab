// Gateway: wiring, I/O threads, signals, the shutdown sequence, and
// serve_main() (the command line; here, not in a file of its own, to keep
// the headers it shares with Gateway compiled once). The
// wiring is a chain of builders, one per part (engine, L2 tier, tiers,
// limiter, upstream client, API fronts, access log, listeners), each from its
// config section; Impl::init() calls them in dependency order and stops at
// the first error, which names the config key.
#include "gateway/app/gateway.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "callcache/redis_backend.h"
#include "gateway/app/builders.h"

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

  // Builds every part, in dependency order; stops at the first error.
  Status init() {
    if (Status s = take(logic::load_telegram_preset(config_.telegram), preset_); !s.ok()) return s;
    post_write_ = std::make_unique<logic::PostWriteState>(
        std::max<std::uint64_t>(1, preset_.post_write_max_entries));
    if (Status s = take(build_engine(config_, preset_), engine_); !s.ok()) return s;
    Storage storage;
    if (Status s = take(build_storage(config_, *engine_), storage); !s.ok()) return s;
    tiers_ = build_tiers(*engine_, storage, metrics_, tier_warned_);
    backend_ = std::move(storage.backend);
    coordinator_ = storage.coordinator;
    l2_description_ = storage.description;
    if (Status s = take(build_limiter(config_, storage, *engine_), limiter_); !s.ok()) return s;
    if (Status s = take(build_upstream(config_, contexts_.front()->get_executor()), upstream_);
        !s.ok()) {
      return s;
    }
    BotApiHandlerDeps deps;
    deps.preset = &preset_;
    deps.post_write = post_write_.get();
    deps.tiers = tiers_.get();
    deps.limiter = limiter_.get();
    deps.upstream = upstream_.get();
    deps.metrics = &metrics_;
    Fronts fronts;
    if (Status s = take(build_fronts(config_, deps), fronts); !s.ok()) return s;
    handler_ = std::move(fronts.bot_api);
    generic_handlers_ = std::move(fronts.generic);
    router_ = std::move(fronts.router);
    if (Status s = take(build_access_log(config_), access_log_); !s.ok()) return s;
    std::vector<net::io_context*> contexts;
    for (auto& ctx : contexts_) contexts.push_back(ctx.get());
    if (Status s = take(build_server(config_, std::move(contexts), *router_, access_log_), server_);
        !s.ok()) {
      return s;
    }
    if (!config_.admin_enabled) return Status();
    AdminDeps ad;
    ad.engine = engine_.get();
    ad.metrics = &metrics_;
    ad.limiter = limiter_.get();
    ad.tiers = tiers_.get();
    ad.preset = &preset_;
    HttpServer* server = server_.get();
    ad.connections = [server] { return server->connections(); };
    ad.busy = [server] { return server->busy(); };
    ad.stopping = &stopping_;
    Admin admin;
    if (Status s = take(build_admin(config_, std::move(ad),
                                    SamplerSources{&metrics_, engine_.get(), backend_.get()},
                                    *contexts_.front(), access_log_),
                        admin);
        !s.ok()) {
      return s;
    }
    history_ = std::move(admin.history);
    sampler_ = std::move(admin.sampler);
    admin_handler_ = std::move(admin.handler);
    admin_ = std::move(admin.server);
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

// The command line: a config file, then flags over it, then the Gateway
// until SIGINT/SIGTERM.
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
