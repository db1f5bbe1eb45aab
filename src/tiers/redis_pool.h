// Internal: a small pool of hiredis connections with bounded connect and
// command times, pipelining, and Lua scripts run by SHA (loaded on first use
// and re-sent with EVAL when the server has forgotten them, e.g. after a
// restart). Shared by the Redis backend, rate limiter and account locks.
//
// Thread-safety: all members may be called from any thread; one connection
// is used by one caller at a time.
#pragma once

#include <hiredis/hiredis.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/redis_backend.h"
#include "callcache/status.h"

namespace callcache::tiers {

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// One command's arguments (binary safe).
using Args = std::vector<std::string_view>;

// A Lua script; its SHA is learnt on first use.
class RedisScript {
 public:
  explicit RedisScript(std::string source) : source_(std::move(source)) {}
  const std::string& source() const { return source_; }
  // "" until loaded.
  std::string sha() const {
    std::lock_guard l(mu_);
    return sha_;
  }
  void set_sha(std::string sha) {
    std::lock_guard l(mu_);
    sha_ = std::move(sha);
  }

 private:
  std::string source_;
  mutable std::mutex mu_;  // guards sha_
  std::string sha_;
};

class RedisPool {
 public:
  explicit RedisPool(RedisOptions options);
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  const RedisOptions& options() const { return options_; }

  // Runs one command. A Redis error reply is returned as kIoError with the
  // server's message; connection failures as kUnavailable/kTimeout.
  Result<Reply> command(const Args& args);

  // Sends all commands in one write and reads every reply (one round trip).
  // Error replies are returned as replies (type REDIS_REPLY_ERROR); only a
  // connection failure fails the whole call.
  Result<std::vector<Reply>> pipeline(const std::vector<Args>& commands);

  // EVALSHA `script` with `keys` and `argv`; loads the script first if needed.
  Result<Reply> eval(RedisScript& script, const Args& keys, const Args& argv);

  // Pipelines one EVALSHA of `script` per element of `argvs` (no KEYS).
  // Per-call error replies come back as replies.
  Result<std::vector<Reply>> eval_many(RedisScript& script, const std::vector<Args>& argvs);

 private:
  struct Conn;
  // A pooled connection, returned to the pool on destruction unless broken.
  class Lease {
   public:
    Lease(RedisPool* pool, redisContext* c) : pool_(pool), c_(c) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), c_(std::exchange(o.c_, nullptr)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    redisContext* get() const { return c_; }
    // The connection failed: close it instead of returning it.
    void discard();

   private:
    RedisPool* pool_;
    redisContext* c_;
  };

  Result<Lease> acquire();
  Result<redisContext*> connect();
  void release(redisContext* c, bool broken);
  // The Status of a failed hiredis call on `lease` (and discards it).
  Status io_failure(Lease& lease, std::string_view what);
  Status load(RedisScript& script);

  RedisOptions options_;
  std::mutex mu_;  // guards idle_ and open_
  std::condition_variable freed_;
  std::vector<redisContext*> idle_;
  std::size_t open_ = 0;  // connections in idle_ or leased
};

// Where to connect: options.host:port, or (with sentinels) the address of
// the master the first answering sentinel names. Errors: kUnavailable
// naming the sentinels.
Result<std::pair<std::string, int>> master_address(const RedisOptions& options);

// Error statuses of a reply: nullptr if it is not an error reply.
Status reply_error(const redisReply* r, std::string_view what);

}  // namespace callcache::tiers
