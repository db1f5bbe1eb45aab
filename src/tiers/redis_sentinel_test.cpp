// Redis Sentinel: the redis-sentinel:// URL, and the backend and the
// coordinator following a real fail-over (a master, a replica and one
// sentinel, all redis-server processes on loopback).
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "callcache/redis_backend.h"
#include "eventually.h"
#include "redis_fixture.h"

namespace callcache {
namespace redis_sentinel_test {

using namespace std::chrono_literals;
using testing::eventually;
using testing::RedisServer;

// How often the waits below ask a server (each time a new connection).
constexpr std::chrono::milliseconds kAskEvery{20};

// The reply of one command as text ("" on failure).
std::string ask(int port, std::initializer_list<std::string> args) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) {
    if (c) redisFree(c);
    return "";
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  std::string out;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->str) {
    out = r->element[0]->str;
  } else if (r && r->str) {
    out.assign(r->str, r->len);
  }
  if (r) freeReplyObject(r);
  redisFree(c);
  return out;
}

TEST(RedisSentinelUrlTest, ParsesSentinelsMasterAndDb) {
  RedisOptions o;
  ASSERT_TRUE(parse_redis_url("redis-sentinel://10.0.0.1:26380,sentinel-b/mymaster/2", o).ok());
  ASSERT_EQ(o.sentinels.size(), 2u);
  EXPECT_EQ(o.sentinels[0], std::make_pair(std::string("10.0.0.1"), 26380));
  EXPECT_EQ(o.sentinels[1], std::make_pair(std::string("sentinel-b"), 26379));
  EXPECT_EQ(o.sentinel_master, "mymaster");
  EXPECT_EQ(o.db, 2);
  ASSERT_TRUE(parse_redis_url("redis-sentinel://s1/m", o).ok());
  EXPECT_EQ(o.db, 0);
  // A plain URL afterwards forgets the sentinels.
  ASSERT_TRUE(parse_redis_url("redis://h:1/0", o).ok());
  EXPECT_TRUE(o.sentinels.empty());
  for (const char* bad :
       {"redis-sentinel://s1", "redis-sentinel://s1/", "redis-sentinel:///m",
        "redis-sentinel://s1:0/m", "redis-sentinel://s1/m/x", "redis-sentinel://user:pw@s1/m"}) {
    Status s = parse_redis_url(bad, o);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(bad), std::string::npos) << s.message();
  }
}

TEST(RedisSentinelTest, BackendAndCoordinatorFollowAFailover) {
  RedisServer master;
  ASSERT_EQ(master.start(), "");
  RedisServer replica;
  replica.extra_args = {"--replicaof", "127.0.0.1", std::to_string(master.port())};
  ASSERT_EQ(replica.start(), "");
  ASSERT_TRUE(eventually(
      [&] {
        return ask(replica.port(), {"INFO", "replication"}).find("master_link_status:up") !=
               std::string::npos;
      },
      10s, kAskEvery));
  RedisServer sentinel;
  sentinel.sentinel = true;
  sentinel.config_text = "sentinel monitor m 127.0.0.1 " + std::to_string(master.port()) +
                         " 1\nsentinel down-after-milliseconds m 300\n"
                         "sentinel failover-timeout m 2000\n";
  ASSERT_EQ(sentinel.start(), "");

  RedisOptions o;
  ASSERT_TRUE(
      parse_redis_url("redis-sentinel://127.0.0.1:" + std::to_string(sentinel.port()) + "/m", o)
          .ok());
  auto backend = open_redis_backend(o).value();
  ASSERT_TRUE(backend->put({"ns", kSharedTenant, "k"}, "before", 60s).ok());
  auto got = backend->get({"ns", kSharedTenant, "k"});
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->bytes, "before");

  RedisCoordinatorOptions co;
  co.redis = o;
  co.heartbeat = 50ms;
  co.heartbeat_timeout = 300ms;
  co.retry = 50ms;
  auto coordinator = open_redis_coordinator(co).value();
  std::atomic<int> lost{0}, back{0};
  TierCoordinator::Handlers h;
  h.on_lost = [&] { ++lost; };
  h.on_resubscribed = [&] { ++back; };
  coordinator->start(h);
  ASSERT_TRUE(eventually([&] { return coordinator->subscribed(); }, 5s));

  master.stop();  // the sentinel promotes the replica
  EXPECT_TRUE(
      eventually([&] { return ask(replica.port(), {"ROLE"}) == "master"; }, 20s, kAskEvery));
  // The backend's broken connections reconnect to the new master.
  EXPECT_TRUE(eventually(
      [&] {
        return backend->put({"ns", kSharedTenant, "k"}, "after", 60s).ok();
      },
      10s, kAskEvery));
  got = backend->get({"ns", kSharedTenant, "k"});
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->bytes, "after");
  // The subscription was lost with the old master and is back on the new one.
  EXPECT_TRUE(eventually([&] { return back.load() >= 1 && coordinator->subscribed(); }, 10s));
  EXPECT_GE(lost.load(), 1);
  coordinator->stop();
}

}  // namespace redis_sentinel_test
}  // namespace callcache
