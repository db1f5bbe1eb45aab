// Reading the `storage:` section (tiers/storage_config.h); make_backend is in
// storage_backend.cpp.
#include "storage_config.h"

#include "callcache/redis_backend.h"

namespace callcache::tiers {

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
  r.boolean("redis_coordination", out.redis_coordination);
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

}  // namespace callcache::tiers
