#include "storage_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "callcache/redis_backend.h"
#include "test_util.h"

namespace callcache::tiers {
namespace storage_config_test {

using namespace std::chrono_literals;

Result<StorageConfig> parse(const std::string& yaml) {
  auto doc = config::load_string(yaml);
  if (!doc.ok()) return doc.status();
  return parse_storage_config((*doc)["storage"]);
}

std::string error_of(const std::string& yaml) {
  auto r = parse(yaml);
  return r.ok() ? "ok" : r.status().message();
}

TEST(StorageConfig, DefaultsWhenAbsent) {
  auto c = parse("other: 1\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->l2, L2Kind::kSqlite);
  EXPECT_EQ(c->path, "./data/callcache.sqlite3");
  EXPECT_EQ(c->compression_threshold, 1024u);
  EXPECT_EQ(c->max_pending_writes, 1024u);
}

TEST(StorageConfig, ReadsEveryKey) {
  auto c = parse(R"(
storage:
  l2: redis
  path: /var/lib/cc/x.sqlite3
  redis_url: redis://10.0.0.5:6380/2
  redis_password_env: MY_REDIS_PW
  connect_timeout: 1s
  timeout: 50ms
  pool_size: 8
  write_behind:
    max_pending: 64
    flush_interval: 250ms
  purge_interval: 5m
  compression_threshold: 4KiB
  backoff:
    initial: 200ms
    max: 1m
)");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->l2, L2Kind::kRedis);
  EXPECT_EQ(c->path, "/var/lib/cc/x.sqlite3");
  EXPECT_EQ(c->redis_url, "redis://10.0.0.5:6380/2");
  EXPECT_EQ(c->redis_password_env, "MY_REDIS_PW");
  EXPECT_EQ(c->connect_timeout, 1s);
  EXPECT_EQ(c->timeout, 50ms);
  EXPECT_EQ(c->pool_size, 8u);
  EXPECT_EQ(c->max_pending_writes, 64u);
  EXPECT_EQ(c->flush_interval, 250ms);
  EXPECT_EQ(c->purge_interval, 5min);
  EXPECT_EQ(c->compression_threshold, 4096u);
  EXPECT_EQ(c->initial_backoff, 200ms);
  EXPECT_EQ(c->max_backoff, 1min);
}

TEST(StorageConfig, ErrorsNameTheKeyPath) {
  EXPECT_EQ(error_of("storage:\n  l2: mysql\n"),
            "storage.l2: expected one of none, sqlite, redis, got 'mysql'");
  EXPECT_EQ(error_of("storage:\n  write_behind:\n    max_pending: 0\n"),
            "storage.write_behind.max_pending: must be greater than zero, got '0'");
  EXPECT_NE(error_of("storage:\n  timeout: 5 minutes\n").find("storage.timeout: "),
            std::string::npos);
  EXPECT_NE(error_of("storage:\n  redis_url: http://x\n").find("storage.redis_url: "),
            std::string::npos);
  EXPECT_NE(error_of("storage:\n  backoff:\n    initial: 2s\n    max: 1s\n").find("storage.backoff.max"),
            std::string::npos);
  EXPECT_NE(error_of("storage:\n  compresion_threshold: 10\n").find("storage.compresion_threshold"),
            std::string::npos);
  std::string pw = error_of("storage:\n  redis_password: hunter2\n");
  EXPECT_NE(pw.find("storage.redis_password: "), std::string::npos) << pw;
  EXPECT_NE(pw.find("redis_password_env"), std::string::npos) << pw;
  EXPECT_EQ(pw.find("hunter2"), std::string::npos) << "the password leaked into the error";
}

TEST(RedisUrl, Parses) {
  RedisOptions o;
  ASSERT_TRUE(parse_redis_url("redis://cache.local:6380/3", o).ok());
  EXPECT_EQ(o.host, "cache.local");
  EXPECT_EQ(o.port, 6380);
  EXPECT_EQ(o.db, 3);
  ASSERT_TRUE(parse_redis_url("redis://127.0.0.1", o).ok());
  EXPECT_EQ(o.port, 6379);
  EXPECT_EQ(o.db, 0);
  for (const char* bad : {"http://h:1/0", "redis://:6379/0", "redis://h:0/0", "redis://h:99999",
                          "redis://h:12x/0", "redis://h:1/-1", "redis://h:1/db"}) {
    EXPECT_EQ(parse_redis_url(bad, o).code(), Code::kInvalidArgument) << bad;
  }
  Status s = parse_redis_url("redis://user:secret@h:1/0", o);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("redis_password_env"), std::string::npos);
}

TEST(MakeBackend, NoneStoresNothing) {
  StorageConfig c;
  c.l2 = L2Kind::kNone;
  auto b = make_backend(c);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->name(), "none");
  ASSERT_TRUE((*b)->put({"ns", TenantId{1}, "k"}, "v", 1h).ok());
  EXPECT_FALSE((*b)->get({"ns", TenantId{1}, "k"})->has_value());
}

TEST(MakeBackend, SqliteWithCompressionAndDegradation) {
  testing::TempDir dir;
  StorageConfig c;
  c.path = dir.file("data/cc.sqlite3");
  c.compression_threshold = 100;
  auto b = make_backend(c);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ((*b)->name(), "sqlite");
  ASSERT_NE(dynamic_cast<DegradingBackend*>(b->get()), nullptr);
  std::string big(5000, 'a');
  ASSERT_TRUE((*b)->put({"ns", TenantId{1}, "k"}, big, 1h).ok());
  ASSERT_TRUE((*b)->flush().ok());
  EXPECT_EQ((*(*b)->get({"ns", TenantId{1}, "k"}))->bytes, big);
  EXPECT_LT(std::stoi(testing::sqlite_scalar(c.path, "SELECT length(value) FROM entries")), 200);
}

TEST(MakeBackend, BadSqlitePathNamesTheKey) {
  StorageConfig c;
  c.path = "/proc/no/such/dir/cc.sqlite3";
  auto b = make_backend(c);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("storage.path"), std::string::npos) << b.status().to_string();
}

TEST(MakeBackend, RedisPasswordMustBeInTheEnvironment) {
  StorageConfig c;
  c.l2 = L2Kind::kRedis;
  c.redis_password_env = "CALLCACHE_TEST_SURELY_UNSET_PW";
  ::unsetenv(c.redis_password_env.c_str());
  auto b = make_backend(c);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().message(),
            "storage.redis_password_env: environment variable 'CALLCACHE_TEST_SURELY_UNSET_PW' "
            "is not set");
  ::setenv(c.redis_password_env.c_str(), "pw", 1);
  auto ok = make_backend(c);  // Redis need not be up: that is an outage, not a config error
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ((*ok)->name(), "redis");
  ::unsetenv(c.redis_password_env.c_str());
}

}  // namespace storage_config_test
}  // namespace callcache::tiers
