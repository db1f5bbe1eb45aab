// The Redis TierCoordinator (callcache/redis_backend.h): invalidation
// messages and lease notifications over one pub/sub channel, leases as keys.
//
//   channel <prefix>:events:<db>      (pub/sub ignores the db number, so it
//                                      is part of the name)
//     "i" <origin: 16 hex> <message>  an invalidation (Tiers' message)
//     "f" <lease name>                a lease was released: its value is in L2
//   key <prefix>:lease:<lease name>   "<token>", SET NX PX lease_ttl
//
// One thread holds the subscription on its own connection: it reads with
// poll() (never blocking in hiredis), PINGs every `heartbeat`, and declares
// the subscription lost when the connection fails or nothing (not even a
// PONG) arrived for `heartbeat_timeout`. Publishing, leases and releases use
// a small connection pool (RedisPool).
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "callcache/redis_backend.h"
#include "callcache/tiers.h"
#include "redis_pool.h"

namespace callcache {
namespace {

using Clock = std::chrono::steady_clock;
using tiers::Args;
using tiers::RedisPool;
using tiers::RedisScript;
using tiers::Reply;

constexpr const char* kLeaseReleaseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
)lua";

std::string random_hex() {
  std::random_device rd;
  std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return to_hex(TenantId{v});
}

timeval to_timeval(Duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us <= 0) us = 1;
  return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
}

class RedisCoordinator final : public TierCoordinator {
 public:
  explicit RedisCoordinator(RedisCoordinatorOptions o)
      : o_(std::move(o)),
        pool_([&] {
          RedisOptions p = o_.redis;
          p.pool_size = 2;
          return p;
        }()),
        channel_(o_.redis.prefix + ":events:" + std::to_string(o_.redis.db)),
        origin_(random_hex()),
        release_(kLeaseReleaseScript),
        wake_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

  ~RedisCoordinator() override {
    stop();
    if (wake_ >= 0) close(wake_);
  }

  void start(Handlers handlers) override {
    std::lock_guard l(mu_);
    if (thread_.joinable() || stopping_) return;
    handlers_ = std::move(handlers);
    thread_ = std::thread([this] { run(); });
  }

  void stop() override {
    stopping_.store(true);
    wake();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    std::multimap<std::string, Waiter> dropped;
    {
      std::lock_guard l(mu_);
      dropped.swap(waiters_);
    }
  }

  bool subscribed() const override { return subscribed_.load(std::memory_order_acquire); }

  Status publish(std::span<const std::string> messages) override {
    // While our own subscription is down and publishing just failed, Redis is
    // most likely down for every process (each then drops its L1): do not
    // pay a connect timeout per invalidation.
    const auto now = Clock::now().time_since_epoch().count();
    if (!subscribed() && now < publish_retry_at_.load(std::memory_order_relaxed)) {
      return Status::unavailable("redis: publishing suspended after a failure");
    }
    std::vector<std::string> payloads;
    payloads.reserve(messages.size());
    std::vector<Args> cmds;
    cmds.reserve(messages.size());
    for (const std::string& m : messages) payloads.push_back("i" + origin_ + m);
    for (const std::string& p : payloads) cmds.push_back({"PUBLISH", channel_, p});
    auto r = pool_.pipeline(cmds);
    if (!r.ok()) {
      publish_retry_at_.store(
          now + std::chrono::duration_cast<Clock::duration>(o_.flush_interval).count(),
          std::memory_order_relaxed);
      return r.status();
    }
    for (const Reply& reply : *r) {
      if (Status s = tiers::reply_error(reply.get(), "PUBLISH"); !s.ok()) return s;
    }
    return Status();
  }

  Result<std::optional<std::string>> try_lease(std::string_view name, Duration ttl) override {
    const std::string key = lease_key(name);
    const std::string token = random_hex();
    const std::string px = std::to_string(std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count()));
    auto r = pool_.command({"SET", key, token, "NX", "PX", px});
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_NIL) return std::optional<std::string>();
    return std::optional<std::string>(token);
  }

  void release_lease(std::string_view name, std::string_view token) override {
    const std::string key = lease_key(name);
    const std::string note = "f" + std::string(name);
    (void)pool_.eval(release_, {key}, {token, channel_, note});  // else it lapses by itself
  }

  void wait_lease(std::string_view name, Duration timeout, std::function<void()> done) override {
    {
      std::lock_guard l(mu_);
      if (subscribed() && !stopping_) {
        waiters_.emplace(std::string(name), Waiter{Clock::now() + timeout, std::move(done)});
        wake();
      }
    }
    if (done) {
      done();  // no notification can come: the caller goes on at once
      return;
    }
    // The holder may have released it before we registered: if the lease is
    // gone, its notice has passed, so wake now.
    auto r = pool_.command({"EXISTS", lease_key(name)});
    if (r.ok() && (*r)->type == REDIS_REPLY_INTEGER && (*r)->integer == 1) return;
    fire(name);
  }

 private:
  struct Waiter {
    Clock::time_point deadline;
    std::function<void()> done;
  };

  std::string lease_key(std::string_view name) const {
    return o_.redis.prefix + ":lease:" + std::string(name);
  }

  void wake() {
    if (wake_ < 0) return;
    std::uint64_t one = 1;
    (void)!write(wake_, &one, sizeof one);
  }

  void drain_wake() {
    std::uint64_t v;
    while (read(wake_, &v, sizeof v) > 0) {
    }
  }

  // Waits up to `d` for stop().
  void sleep(Duration d) {
    pollfd p{wake_, POLLIN, 0};
    (void)poll(&p, 1,
               static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()));
    drain_wake();
  }

  // Connects and subscribes; nullptr if it cannot.
  redisContext* subscribe() {
    auto addr = tiers::master_address(o_.redis);
    if (!addr.ok()) return nullptr;
    master_ = *addr;
    redisContext* c = redisConnectWithTimeout(addr->first.c_str(), addr->second,
                                              to_timeval(o_.redis.connect_timeout));
    if (!c) return nullptr;
    if (c->err) {
      redisFree(c);
      return nullptr;
    }
    redisSetTimeout(c, to_timeval(o_.redis.command_timeout));
    auto ok = [&](std::initializer_list<std::string_view> args) {
      std::vector<const char*> argv;
      std::vector<std::size_t> lens;
      for (auto a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      Reply r(static_cast<redisReply*>(
          redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
      return r && r->type != REDIS_REPLY_ERROR;
    };
    if ((!o_.redis.password.empty() && !ok({"AUTH", o_.redis.password})) ||
        !ok({"SUBSCRIBE", channel_})) {
      redisFree(c);
      return nullptr;
    }
    return c;
  }

  void handle(const redisReply* r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
    const redisReply* kind = r->element[0];
    const redisReply* payload = r->element[2];
    if (kind->type != REDIS_REPLY_STRING || std::string_view(kind->str, kind->len) != "message" ||
        payload->type != REDIS_REPLY_STRING) {
      return;
    }
    std::string_view p(payload->str, payload->len);
    if (p.starts_with('i') && p.size() >= 1 + origin_.size()) {
      if (p.substr(1, origin_.size()) == origin_) return;  // our own
      if (handlers_.on_message) handlers_.on_message(p.substr(1 + origin_.size()));
    } else if (p.starts_with('f')) {
      fire(p.substr(1));
    }
  }

  // Wakes every waiter of `name`.
  void fire(std::string_view name) {
    std::vector<std::function<void()>> ready;
    {
      std::lock_guard l(mu_);
      auto [b, e] = waiters_.equal_range(std::string(name));
      for (auto it = b; it != e; ++it) ready.push_back(std::move(it->second.done));
      waiters_.erase(b, e);
    }
    for (auto& f : ready) f();
  }

  // Calls the waiters past their deadline (all of them if `all`); returns
  // the earliest deadline left.
  Clock::time_point expire(bool all) {
    std::vector<std::function<void()>> ready;
    Clock::time_point next = Clock::time_point::max();
    const auto now = Clock::now();
    {
      std::lock_guard l(mu_);
      for (auto it = waiters_.begin(); it != waiters_.end();) {
        if (all || it->second.deadline <= now) {
          ready.push_back(std::move(it->second.done));
          it = waiters_.erase(it);
        } else {
          next = std::min(next, it->second.deadline);
          ++it;
        }
      }
    }
    for (auto& f : ready) f();
    return next;
  }

  // Reads the subscription until it fails or stop(). With sentinels, also
  // until they name another master (a subscription on a demoted master stays
  // up but no longer hears what is published on the new one).
  void listen(redisContext* c) {
    auto last_rx = Clock::now();
    auto next_ping = last_rx + o_.heartbeat;
    auto next_check = last_rx + o_.heartbeat_timeout;
    while (!stopping_.load()) {
      void* raw = nullptr;
      while (redisGetReplyFromReader(c, &raw) == REDIS_OK && raw) {
        Reply r(static_cast<redisReply*>(raw));
        raw = nullptr;
        handle(r.get());
      }
      if (c->err) return;
      auto next = std::min({expire(false), next_ping, last_rx + o_.heartbeat_timeout});
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now());
      pollfd fds[2] = {{c->fd, POLLIN, 0}, {wake_, POLLIN, 0}};
      int n = poll(fds, 2, static_cast<int>(std::max<std::int64_t>(0, wait.count()) + 1));
      if (n < 0 && errno != EINTR) return;
      if (fds[1].revents) drain_wake();
      const auto now = Clock::now();
      if (fds[0].revents) {
        if (redisBufferRead(c) != REDIS_OK) return;
        last_rx = now;
      }
      if (now - last_rx > o_.heartbeat_timeout) return;
      if (now >= next_ping) {
        if (redisAppendCommand(c, "PING") != REDIS_OK) return;
        int done = 0;
        while (!done) {
          if (redisBufferWrite(c, &done) != REDIS_OK) return;
        }
        next_ping = now + o_.heartbeat;
      }
      if (!o_.redis.sentinels.empty() && now >= next_check) {
        auto addr = tiers::master_address(o_.redis);
        if (addr.ok() && *addr != master_) return;
        next_check = now + o_.heartbeat_timeout;
      }
    }
  }

  void run() {
    bool lost = false;
    Clock::time_point next_flush{};
    auto report_lost = [&] {
      lost = true;
      next_flush = Clock::now() + o_.flush_interval;
      if (handlers_.on_lost) handlers_.on_lost();
    };
    while (!stopping_.load()) {
      if (redisContext* c = subscribe()) {
        {
          std::lock_guard l(mu_);
          subscribed_.store(true, std::memory_order_release);
        }
        if (lost && handlers_.on_resubscribed) handlers_.on_resubscribed();
        lost = false;
        listen(c);
        redisFree(c);
        {
          std::lock_guard l(mu_);
          subscribed_.store(false, std::memory_order_release);
        }
        expire(true);  // no release notice can reach them now
        if (stopping_.load()) break;
        report_lost();
      } else if (!lost || Clock::now() >= next_flush) {
        report_lost();
      }
      sleep(o_.retry);
    }
  }

  RedisCoordinatorOptions o_;
  RedisPool pool_;
  const std::string channel_;
  const std::string origin_;
  RedisScript release_;
  int wake_;
  Handlers handlers_;                   // set before the thread starts, then read by it only
  std::pair<std::string, int> master_;  // the subscription's server (its thread only)
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> subscribed_{false};
  std::atomic<Clock::rep> publish_retry_at_{0};
  std::mutex mu_;  // guards waiters_ (and orders subscribed_ changes with them)
  std::multimap<std::string, Waiter> waiters_;
};

}  // namespace

Result<std::shared_ptr<TierCoordinator>> open_redis_coordinator(RedisCoordinatorOptions options) {
  if (options.redis.prefix.empty()) {
    return Status::invalid_argument("redis coordinator: prefix must not be empty");
  }
  if (options.heartbeat <= Duration::zero() || options.heartbeat_timeout <= options.heartbeat) {
    return Status::invalid_argument(
        "redis coordinator: heartbeat must be > 0 and heartbeat_timeout greater than it");
  }
  if (options.flush_interval <= Duration::zero() || options.retry <= Duration::zero()) {
    return Status::invalid_argument("redis coordinator: flush_interval and retry must be > 0");
  }
  return std::shared_ptr<TierCoordinator>(std::make_shared<RedisCoordinator>(std::move(options)));
}

}  // namespace callcache
