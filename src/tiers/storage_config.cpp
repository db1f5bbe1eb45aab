#include "storage_config.h"

#include <cstdlib>

#include "callcache/codec.h"
#include "callcache/redis_backend.h"
#include "callcache/sqlite_backend.h"

namespace callcache::tiers {
namespace {

// l2: none — stores nothing, always misses.
class NoneBackend final : public Backend {
 public:
  std::string_view name() const noexcept override { return "none"; }
  Result<std::optional<StoredValue>> get(const BackendKey&) override {
    return std::optional<StoredValue>();
  }
  Result<std::vector<std::optional<StoredValue>>> get_many(
      std::span<const BackendKey> keys) override {
    return std::vector<std::optional<StoredValue>>(keys.size());
  }
  Status put(const BackendKey&, std::string_view, Duration) override { return Status(); }
  Status put_many(std::span<const BackendItem>) override { return Status(); }
  Status erase(const BackendKey&) override { return Status(); }
  Status erase_tenant(TenantId) override { return Status(); }
  Status erase_namespace(std::string_view) override { return Status(); }
  Result<std::uint64_t> purge_expired() override { return std::uint64_t{0}; }
  Status flush() override { return Status(); }
  Status health() override { return Status(); }
  BackendStats stats() const override { return {}; }
};

}  // namespace

Status read_storage_config(config::MapReader& r, StorageConfig& out) {
  r.choice("l2", out.l2,
           {{"none", L2Kind::kNone}, {"sqlite", L2Kind::kSqlite}, {"redis", L2Kind::kRedis}});
  r.string("path", out.path);
  r.string("redis_url", out.redis_url);
  if (r.has("redis_url") && r.error().ok()) {
    RedisOptions probe;
    Status s = parse_redis_url(out.redis_url, probe);
    if (!s.ok()) r.fail("redis_url", s.message());
  }
  if (r.has("redis_password")) {
    (void)r.child("redis_password");
    r.fail("redis_password",
           "passwords are not read from the configuration file; set redis_password_env to "
           "the name of an environment variable that holds it");
  }
  r.string("redis_password_env", out.redis_password_env);
  r.duration("connect_timeout", out.connect_timeout, /*allow_zero=*/false);
  r.duration("timeout", out.timeout, /*allow_zero=*/false);
  r.count("pool_size", out.pool_size, /*allow_zero=*/false);
  if (r.has("write_behind")) {
    config::MapReader wb = r.map("write_behind");
    wb.count("max_pending", out.max_pending_writes, /*allow_zero=*/false);
    wb.duration("flush_interval", out.flush_interval);
    r.merge(wb.finish());
  }
  r.duration("purge_interval", out.purge_interval);
  r.bytes("compression_threshold", out.compression_threshold);
  if (r.has("backoff")) {
    config::MapReader b = r.map("backoff");
    b.duration("initial", out.initial_backoff, /*allow_zero=*/false);
    b.duration("max", out.max_backoff, /*allow_zero=*/false);
    if (b.error().ok() && out.max_backoff < out.initial_backoff) {
      b.fail("max", "must be >= backoff.initial");
    }
    r.merge(b.finish());
  }
  return r.finish();
}

Result<StorageConfig> parse_storage_config(const YAML::Node& node, const std::string& path) {
  config::MapReader r(node, path);
  StorageConfig out;
  if (Status s = read_storage_config(r, out); !s.ok()) return s;
  return out;
}

Result<RedisOptions> redis_options(const StorageConfig& c) {
  RedisOptions o;
  if (Status s = parse_redis_url(c.redis_url, o); !s.ok()) {
    return Status::invalid_argument("storage.redis_url: " + s.message());
  }
  if (!c.redis_password_env.empty()) {
    const char* pw = std::getenv(c.redis_password_env.c_str());
    if (!pw) {
      return Status::invalid_argument("storage.redis_password_env: environment variable '" +
                                      c.redis_password_env + "' is not set");
    }
    o.password = pw;
  }
  o.connect_timeout = c.connect_timeout;
  o.command_timeout = c.timeout;
  o.pool_size = c.pool_size;
  return o;
}

Result<std::shared_ptr<TierCoordinator>> make_coordinator(const StorageConfig& c) {
  if (c.l2 != L2Kind::kRedis) return std::shared_ptr<TierCoordinator>();
  auto o = redis_options(c);
  if (!o.ok()) return o.status();
  RedisCoordinatorOptions co;
  co.redis = std::move(*o);
  return open_redis_coordinator(std::move(co));
}

Result<std::unique_ptr<Backend>> make_backend(const StorageConfig& c,
                                              const BackendEnvironment& env) {
  std::unique_ptr<Backend> store;
  switch (c.l2) {
    case L2Kind::kNone:
      return std::unique_ptr<Backend>(std::make_unique<NoneBackend>());
    case L2Kind::kSqlite: {
      SqliteOptions o;
      o.path = c.path;
      o.max_pending_writes = c.max_pending_writes;
      o.flush_interval = c.flush_interval;
      o.purge_interval = c.purge_interval;
      o.call_timeout = c.timeout;
      o.clock = env.clock;
      o.scheduler = env.scheduler;
      auto r = open_sqlite_backend(std::move(o));
      if (!r.ok()) return Status(r.status().code(), "storage.path: " + r.status().message());
      store = std::move(*r);
      break;
    }
    case L2Kind::kRedis: {
      auto o = redis_options(c);
      if (!o.ok()) return o.status();
      auto r = open_redis_backend(std::move(*o));
      if (!r.ok()) return Status(r.status().code(), "storage: " + r.status().message());
      store = std::move(*r);
      break;
    }
  }
  CompressionOptions z;
  z.threshold = c.compression_threshold;
  DegradeOptions d;
  d.initial_backoff = c.initial_backoff;
  d.max_backoff = c.max_backoff;
  d.slow_call = c.timeout;
  d.clock = env.clock;
  d.log = env.log;
  return std::unique_ptr<Backend>(
      std::make_unique<DegradingBackend>(wrap_compression(std::move(store), z), std::move(d)));
}

}  // namespace callcache::tiers
