// serve_main(): the `callcache serve` command line — a config file, then
// flags over it, then the Gateway until SIGINT/SIGTERM (gateway/app/gateway.h).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "callcache/redis_backend.h"
#include "gateway/app/gateway.h"

namespace callcache::gateway {

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
