// make_backend (tiers/storage_config.h): the configured L2 tier, wrapped in
// compression framing and a DegradingBackend. Apart from the configuration
// reader, which needs no SQLite or Redis client. Also the Redis options and
// the cross-process coordinator the same section configures.
#include <cstdlib>

#include "callcache/codec.h"
#include "callcache/redis_backend.h"
#include "callcache/sqlite_backend.h"
#include "storage_config.h"

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
