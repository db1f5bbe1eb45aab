// The Redis tier (callcache/redis_backend.h).
#include "callcache/redis_backend.h"

#include <atomic>
#include <charconv>

#include "redis_pool.h"
#include "stored_record.h"

namespace callcache {
namespace {

using tiers::Args;
using tiers::RedisPool;
using tiers::RedisScript;
using tiers::Reply;

// ARGV: 1 = "<prefix>:<ns>", 2 = "<tenant-hex>:<key>".
// Returns nil, or {value, pttl}.
const char* const kGetScript = R"lua(
local v = redis.call('GET', ARGV[1] .. ':version') or '0'
local k = ARGV[1] .. ':v' .. v .. ':' .. ARGV[2]
local val = redis.call('GET', k)
if not val then return false end
return {val, redis.call('PTTL', k)}
)lua";

// ARGV: 1 = "<prefix>:<ns>", 2 = "<tenant-hex>:<key>", 3 = value, 4 = ttl ms,
// 5 = tenant index key. The index lives as long as its longest-lived value.
const char* const kPutScript = R"lua(
local v = redis.call('GET', ARGV[1] .. ':version') or '0'
local k = ARGV[1] .. ':v' .. v .. ':' .. ARGV[2]
redis.call('SET', k, ARGV[3], 'PX', ARGV[4])
redis.call('SADD', ARGV[5], k)
if redis.call('PTTL', ARGV[5]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', ARGV[5], ARGV[4])
end
return 1
)lua";

// ARGV: 1 = "<prefix>:<ns>", 2 = "<tenant-hex>:<key>", 3 = tenant index key.
const char* const kEraseScript = R"lua(
local v = redis.call('GET', ARGV[1] .. ':version') or '0'
local k = ARGV[1] .. ':v' .. v .. ':' .. ARGV[2]
redis.call('SREM', ARGV[3], k)
return redis.call('DEL', k)
)lua";

// ARGV: 1 = tenant index key. Drops members whose value has expired.
const char* const kPruneIndexScript = R"lua(
local n = 0
for _, k in ipairs(redis.call('SMEMBERS', ARGV[1])) do
  if redis.call('EXISTS', k) == 0 then
    redis.call('SREM', ARGV[1], k)
    n = n + 1
  end
end
return n
)lua";

class RedisBackend final : public Backend {
 public:
  explicit RedisBackend(RedisOptions options)
      : pool_(std::move(options)),
        get_script_(kGetScript),
        put_script_(kPutScript),
        erase_script_(kEraseScript),
        prune_script_(kPruneIndexScript) {}

  std::string_view name() const noexcept override { return "redis"; }

  Result<std::optional<StoredValue>> get(const BackendKey& key) override {
    auto r = get_many(std::span<const BackendKey>(&key, 1));
    if (!r.ok()) return r.status();
    return std::move((*r)[0]);
  }

  Result<std::vector<std::optional<StoredValue>>> get_many(
      std::span<const BackendKey> keys) override {
    std::vector<std::string> ns(keys.size()), rest(keys.size());
    std::vector<Args> argvs;
    argvs.reserve(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (Status s = check(keys[i]); !s.ok()) return s;
      ns[i] = ns_prefix(keys[i].ns);
      rest[i] = tenant_key(keys[i]);
      argvs.push_back({ns[i], rest[i]});
    }
    gets_.fetch_add(keys.size(), std::memory_order_relaxed);
    if (keys.empty()) return std::vector<std::optional<StoredValue>>();
    auto replies = pool_.eval_many(get_script_, argvs);
    if (!replies.ok()) return fail(replies.status());
    std::vector<std::optional<StoredValue>> out(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const redisReply* r = (*replies)[i].get();
      if (Status s = tiers::reply_error(r, "redis get"); !s.ok()) return fail(s);
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) continue;  // nil: miss
      const redisReply* val = r->element[0];
      const redisReply* ttl = r->element[1];
      if (val->type != REDIS_REPLY_STRING || ttl->type != REDIS_REPLY_INTEGER) {
        return fail(Status::io_error("redis get: unexpected reply shape"));
      }
      if (ttl->integer <= 0) continue;  // expiring this very moment, or no expiry (not ours)
      out[i] = StoredValue{std::string(val->str, val->len), tiers::ttl_from_ms(ttl->integer)};
      hits_.fetch_add(1, std::memory_order_relaxed);
    }
    return out;
  }

  Status put(const BackendKey& key, std::string_view bytes, Duration ttl) override {
    BackendItem item{key, bytes, ttl};
    return put_many(std::span<const BackendItem>(&item, 1));
  }

  Status put_many(std::span<const BackendItem> items) override {
    std::vector<std::string> ns(items.size()), rest(items.size()), ttl(items.size()),
        idx(items.size());
    std::vector<Args> argvs;
    argvs.reserve(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (Status s = check(items[i].key); !s.ok()) return s;
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(items[i].ttl).count();
      if (items[i].ttl <= Duration::zero())
        return Status::invalid_argument("redis put: ttl must be > 0");
      ns[i] = ns_prefix(items[i].key.ns);
      rest[i] = tenant_key(items[i].key);
      ttl[i] = std::to_string(ms > 0 ? ms : 1);
      idx[i] = tenant_index(items[i].key.tenant);
      argvs.push_back({ns[i], rest[i], items[i].bytes, ttl[i], idx[i]});
    }
    puts_.fetch_add(items.size(), std::memory_order_relaxed);
    if (items.empty()) return Status();
    auto replies = pool_.eval_many(put_script_, argvs);
    if (!replies.ok()) return fail(replies.status());
    for (const auto& r : *replies) {
      if (Status s = tiers::reply_error(r.get(), "redis put"); !s.ok()) return fail(s);
    }
    return Status();
  }

  Status erase(const BackendKey& key) override {
    if (Status s = check(key); !s.ok()) return s;
    deletes_.fetch_add(1, std::memory_order_relaxed);
    std::string ns = ns_prefix(key.ns), rest = tenant_key(key), idx = tenant_index(key.tenant);
    auto r = pool_.eval(erase_script_, {}, {ns, rest, idx});
    return r.ok() ? Status() : fail(r.status());
  }

  Status erase_tenant(TenantId tenant) override {
    deletes_.fetch_add(1, std::memory_order_relaxed);
    std::string idx = tenant_index(tenant);
    // SPOP hands each member to exactly one caller; UNLINK frees off-thread.
    for (;;) {
      auto popped = pool_.command({"SPOP", idx, "512"});
      if (!popped.ok()) return fail(popped.status());
      const redisReply* r = popped->get();
      if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return Status();
      Args unlink = {"UNLINK"};
      for (std::size_t i = 0; i < r->elements; ++i) {
        unlink.emplace_back(r->element[i]->str, r->element[i]->len);
      }
      auto u = pool_.command(unlink);
      if (!u.ok()) return fail(u.status());
    }
  }

  Status erase_namespace(std::string_view ns) override {
    if (Status s = check_ns(ns); !s.ok()) return s;
    deletes_.fetch_add(1, std::memory_order_relaxed);
    std::string key = ns_prefix(ns) + ":version";
    auto r = pool_.command({"INCR", key});
    return r.ok() ? Status() : fail(r.status());
  }

  Result<std::uint64_t> purge_expired() override {
    // Values expire natively; what is left to clean is index members whose
    // value is gone.
    std::string pattern = pool_.options().prefix + "::tenant:*";
    std::string cursor = "0";
    std::uint64_t removed = 0;
    do {
      auto r = pool_.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "200"});
      if (!r.ok()) return fail(r.status());
      const redisReply* rep = r->get();
      if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
        return fail(Status::io_error("redis SCAN: unexpected reply shape"));
      }
      cursor.assign(rep->element[0]->str, rep->element[0]->len);
      const redisReply* keys = rep->element[1];
      for (std::size_t i = 0; i < keys->elements; ++i) {
        std::string idx(keys->element[i]->str, keys->element[i]->len);
        auto n = pool_.eval(prune_script_, {}, {idx});
        if (!n.ok()) return fail(n.status());
        if ((*n)->type == REDIS_REPLY_INTEGER) removed += static_cast<std::uint64_t>((*n)->integer);
      }
    } while (cursor != "0");
    purged_.fetch_add(removed, std::memory_order_relaxed);
    return removed;
  }

  Status flush() override { return Status(); }  // writes are not buffered

  Status health() override {
    auto r = pool_.command({"PING"});
    return r.ok() ? Status() : fail(r.status());
  }

  BackendStats stats() const override {
    BackendStats s;
    s.gets = gets_.load(std::memory_order_relaxed);
    s.hits = hits_.load(std::memory_order_relaxed);
    s.puts = puts_.load(std::memory_order_relaxed);
    s.deletes = deletes_.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    s.purged = purged_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  static Status check_ns(std::string_view ns) {
    if (ns.empty()) return Status::invalid_argument("redis: empty namespace");
    if (ns.find(':') != std::string_view::npos) {
      return Status::invalid_argument("redis: namespace '" + std::string(ns) + "' contains ':'");
    }
    return Status();
  }
  static Status check(const BackendKey& k) {
    if (Status s = check_ns(k.ns); !s.ok()) return s;
    if (k.key.empty()) return Status::invalid_argument("redis: empty key");
    return Status();
  }

  std::string ns_prefix(std::string_view ns) const {
    return pool_.options().prefix + ":" + std::string(ns);
  }
  static std::string tenant_key(const BackendKey& k) {
    std::string s = to_hex(k.tenant);
    s.push_back(':');
    s.append(k.key);
    return s;
  }
  std::string tenant_index(TenantId t) const {
    return pool_.options().prefix + "::tenant:" + to_hex(t);
  }

  Status fail(Status s) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }

  RedisPool pool_;
  RedisScript get_script_, put_script_, erase_script_, prune_script_;
  std::atomic<std::uint64_t> gets_{0}, hits_{0}, puts_{0}, deletes_{0}, errors_{0}, purged_{0};
};

}  // namespace

Result<std::unique_ptr<Backend>> open_redis_backend(RedisOptions options) {
  if (options.sentinels.empty() && options.host.empty()) {
    return Status::invalid_argument("redis: host is empty");
  }
  if (options.port <= 0 || options.port > 65535) {
    return Status::invalid_argument("redis: port must be 1..65535");
  }
  if (options.pool_size == 0) return Status::invalid_argument("redis: pool_size must be > 0");
  if (options.connect_timeout <= Duration::zero() || options.command_timeout <= Duration::zero()) {
    return Status::invalid_argument("redis: timeouts must be > 0");
  }
  if (options.prefix.empty() || options.prefix.find(':') != std::string::npos) {
    return Status::invalid_argument("redis: prefix must be non-empty and contain no ':'");
  }
  return std::unique_ptr<Backend>(std::make_unique<RedisBackend>(std::move(options)));
}

}  // namespace callcache
