#include "redis_pool.h"

#include <cerrno>
#include <chrono>
#include <cstring>

namespace callcache::tiers {
namespace {

timeval to_timeval(Duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us <= 0) us = 1;
  return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

redisReply* run_argv(redisContext* c, const Args& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
}

int append_argv(redisContext* c, const Args& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data());
}

bool is_noscript(const redisReply* r) {
  return r && r->type == REDIS_REPLY_ERROR && std::strncmp(r->str, "NOSCRIPT", 8) == 0;
}

bool is_readonly(const redisReply* r) {
  return r && r->type == REDIS_REPLY_ERROR && std::strncmp(r->str, "READONLY", 8) == 0;
}

}  // namespace

Result<std::pair<std::string, int>> master_address(const RedisOptions& o) {
  if (o.sentinels.empty()) return std::make_pair(o.host, o.port);
  std::string tried;
  for (const auto& [host, port] : o.sentinels) {
    if (!tried.empty()) tried += ",";
    tried += host + ":" + std::to_string(port);
    redisContext* c = redisConnectWithTimeout(host.c_str(), port, to_timeval(o.connect_timeout));
    if (!c) continue;
    if (c->err) {
      redisFree(c);
      continue;
    }
    redisSetTimeout(c, to_timeval(o.command_timeout));
    Reply r(run_argv(c, {"SENTINEL", "get-master-addr-by-name", o.sentinel_master}));
    redisFree(c);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING) {
      continue;
    }
    int p = std::atoi(std::string(r->element[1]->str, r->element[1]->len).c_str());
    if (p <= 0 || p > 65535) continue;
    return std::make_pair(std::string(r->element[0]->str, r->element[0]->len), p);
  }
  return Status::unavailable("redis sentinels " + tried + ": none named a master '" +
                             o.sentinel_master + "'");
}

Status reply_error(const redisReply* r, std::string_view what) {
  if (!r || r->type != REDIS_REPLY_ERROR) return Status();
  return Status::io_error(std::string(what) + ": redis replied " + std::string(r->str, r->len));
}

RedisPool::RedisPool(RedisOptions options) : options_(std::move(options)) {}

RedisPool::~RedisPool() {
  std::lock_guard l(mu_);
  for (redisContext* c : idle_) redisFree(c);
}

RedisPool::Lease::~Lease() {
  if (c_) pool_->release(c_, false);
}

void RedisPool::Lease::discard() {
  if (c_) pool_->release(std::exchange(c_, nullptr), true);
}

void RedisPool::release(redisContext* c, bool broken) {
  {
    std::lock_guard l(mu_);
    if (broken) {
      --open_;
    } else {
      idle_.push_back(c);
    }
  }
  if (broken) redisFree(c);
  freed_.notify_one();
}

Result<redisContext*> RedisPool::connect() {
  auto addr = master_address(options_);
  if (!addr.ok()) return addr.status();
  std::string where = addr->first + ":" + std::to_string(addr->second);
  redisContext* c = redisConnectWithTimeout(addr->first.c_str(), addr->second,
                                            to_timeval(options_.connect_timeout));
  if (!c) return Status::unavailable("redis " + where + ": cannot allocate a connection");
  if (c->err) {
    Status s = Status::unavailable("redis " + where + ": cannot connect: " + c->errstr);
    redisFree(c);
    return s;
  }
  redisSetTimeout(c, to_timeval(options_.command_timeout));
  auto setup = [&](const Args& args, const char* what) -> Status {
    Reply r(run_argv(c, args));
    if (!r) return Status::unavailable("redis " + where + ": " + what + ": " + c->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
      // Never echo the password; the server's message is safe.
      return Status::unavailable("redis " + where + ": " + what +
                                 " refused: " + std::string(r->str, r->len));
    }
    return Status();
  };
  Status s;
  if (!options_.password.empty()) s = setup({"AUTH", options_.password}, "AUTH");
  std::string db = std::to_string(options_.db);
  if (s.ok() && options_.db != 0) s = setup({"SELECT", db}, "SELECT");
  if (!s.ok()) {
    redisFree(c);
    return s;
  }
  return c;
}

Result<RedisPool::Lease> RedisPool::acquire() {
  std::unique_lock l(mu_);
  auto deadline = std::chrono::steady_clock::now() + options_.command_timeout;
  for (;;) {
    if (!idle_.empty()) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      return Lease(this, c);
    }
    if (open_ < options_.pool_size) {
      ++open_;
      l.unlock();
      auto c = connect();
      if (!c.ok()) {
        l.lock();
        --open_;
        l.unlock();
        freed_.notify_one();
        return c.status();
      }
      return Lease(this, *c);
    }
    if (freed_.wait_until(l, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.pool_size) {
      return Status::unavailable("redis: all " + std::to_string(options_.pool_size) +
                                 " pooled connections busy past the command timeout");
    }
  }
}

Status RedisPool::io_failure(Lease& lease, std::string_view what) {
  redisContext* c = lease.get();
  std::string msg = "redis " + options_.host + ":" + std::to_string(options_.port) + " " +
                    std::string(what) + ": " + (c->errstr[0] ? c->errstr : "connection failed");
  bool timed_out = c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
  lease.discard();
  return timed_out ? Status::timeout(std::move(msg)) : Status::unavailable(std::move(msg));
}

Result<Reply> RedisPool::command(const Args& args) {
  auto lease = acquire();
  if (!lease.ok()) return lease.status();
  Reply r(run_argv(lease->get(), args));
  if (!r) return io_failure(*lease, args.empty() ? "command" : args[0]);
  if (is_readonly(r.get())) lease->discard();  // a demoted master: reconnect to the new one
  if (r->type == REDIS_REPLY_ERROR) return reply_error(r.get(), args[0]);
  return r;
}

Result<std::vector<Reply>> RedisPool::pipeline(const std::vector<Args>& commands) {
  auto lease = acquire();
  if (!lease.ok()) return lease.status();
  for (const auto& args : commands) {
    if (append_argv(lease->get(), args) != REDIS_OK) return io_failure(*lease, "pipeline");
  }
  std::vector<Reply> out;
  out.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* r = nullptr;
    if (redisGetReply(lease->get(), &r) != REDIS_OK || !r) return io_failure(*lease, "pipeline");
    out.emplace_back(static_cast<redisReply*>(r));
  }
  for (const Reply& r : out) {
    if (is_readonly(r.get())) {
      lease->discard();
      break;
    }
  }
  return out;
}

Status RedisPool::load(RedisScript& script) {
  auto r = command({"SCRIPT", "LOAD", script.source()});
  if (!r.ok()) return r.status();
  if ((*r)->type != REDIS_REPLY_STRING) return Status::io_error("redis SCRIPT LOAD: no SHA");
  script.set_sha(std::string((*r)->str, (*r)->len));
  return Status();
}

Result<Reply> RedisPool::eval(RedisScript& script, const Args& keys, const Args& argv) {
  if (script.sha().empty()) {
    if (Status s = load(script); !s.ok()) return s;
  }
  std::string sha = script.sha();
  std::string nkeys = std::to_string(keys.size());
  Args args = {"EVALSHA", sha, nkeys};
  args.insert(args.end(), keys.begin(), keys.end());
  args.insert(args.end(), argv.begin(), argv.end());
  auto lease = acquire();
  if (!lease.ok()) return lease.status();
  Reply r(run_argv(lease->get(), args));
  if (!r) return io_failure(*lease, "EVALSHA");
  if (is_noscript(r.get())) {
    // The server lost its script cache (restart, SCRIPT FLUSH): send the source.
    args[0] = "EVAL";
    args[1] = script.source();
    r.reset(run_argv(lease->get(), args));
    if (!r) return io_failure(*lease, "EVAL");
  }
  if (is_readonly(r.get())) lease->discard();
  if (r->type == REDIS_REPLY_ERROR) return reply_error(r.get(), "script");
  return r;
}

Result<std::vector<Reply>> RedisPool::eval_many(RedisScript& script,
                                                const std::vector<Args>& argvs) {
  if (script.sha().empty()) {
    if (Status s = load(script); !s.ok()) return s;
  }
  std::string sha = script.sha();
  std::vector<Args> cmds;
  cmds.reserve(argvs.size());
  for (const auto& argv : argvs) {
    Args a = {"EVALSHA", sha, "0"};
    a.insert(a.end(), argv.begin(), argv.end());
    cmds.push_back(std::move(a));
  }
  auto replies = pipeline(cmds);
  if (!replies.ok()) return replies;
  std::vector<Args> retry;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < replies->size(); ++i) {
    if (is_noscript((*replies)[i].get())) {
      Args a = cmds[i];
      a[0] = "EVAL";
      a[1] = script.source();
      retry.push_back(std::move(a));
      where.push_back(i);
    }
  }
  if (!retry.empty()) {
    auto again = pipeline(retry);
    if (!again.ok()) return again.status();
    for (std::size_t j = 0; j < where.size(); ++j) (*replies)[where[j]] = std::move((*again)[j]);
  }
  return replies;
}

}  // namespace callcache::tiers
