// A real redis-server for tests and benchmarks (library target
// `callcache_redis_fixture`).
//
// RedisServer starts `redis-server` on a free loopback port in its own
// temporary directory, with persistence off (`--save "" --appendonly no`),
// and waits until PING answers. stop() kills it (SIGKILL, like a crash);
// restart() starts it again on the same port (empty, since nothing was
// saved). The destructor kills the server and removes the directory, so a
// failing test leaves nothing behind.
//
// RedisTest is a GoogleTest fixture owning one RedisServer, started in
// SetUp (a failure to start fails the test: redis-server must be installed).
//
// Thread-safety: none; use from the test's main thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace callcache::testing {

class RedisServer {
 public:
  RedisServer() = default;
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts the server on a free port. Returns "" on success, else why not.
  std::string start();
  // Kills the server (SIGKILL) and waits for it. No-op if not running.
  void stop();
  // Starts it again on the same port. Returns "" on success, else why not.
  std::string restart();

  // Before start(): more command-line arguments (e.g. {"--replicaof",
  // "127.0.0.1", "6390"}); the text of a config file given to redis-server
  // (written into dir()); and sentinel mode (`--sentinel`, which needs that
  // file, e.g. "sentinel monitor m 127.0.0.1 6390 1\n").
  std::vector<std::string> extra_args;
  std::string config_text;
  bool sentinel = false;

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  const std::string& host() const { return host_; }
  // "redis://127.0.0.1:<port>/0"
  std::string url() const;
  // The temporary directory (removed by the destructor).
  const std::string& dir() const { return dir_; }

 private:
  std::string launch(std::chrono::milliseconds wait);

  std::string host_ = "127.0.0.1";
  int port_ = 0;
  pid_t pid_ = -1;
  std::string dir_;
};

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err = redis_.start();
    ASSERT_EQ(err, "") << "cannot start redis-server";
  }
  void TearDown() override { redis_.stop(); }

  RedisServer redis_;
};

}  // namespace callcache::testing
