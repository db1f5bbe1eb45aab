// Internal: the gateway's use of the L2 tier (SQLite by default, or Redis)
// under the engine: cached answers survive a restart.
//
// The Backend interface knows keys, tenants and namespaces but not tags, and
// writes invalidate some reads by tag (banChatMember drops every cached
// getChatMember of that chat). So each stored answer carries its tags and
// store time in a small envelope, and a tag invalidation writes a marker
// (namespace "_gw_tags", key = the tag, value = the wall-clock time). An L2
// answer older than a marker of one of its tags is a miss. Markers live in
// the tier itself, so this holds across restarts too.
//
// Invalidations are durable when the call returns (write-behind tiers are
// flushed), so an answer a write invalidated never comes back from the tier
// after a crash, even if the crash follows the write's answer at once. An
// invalidation the tier does not take (it is down, slow or full) is
// remembered and applied before the tier is read again: until then every
// L2 read misses, so a tier that comes back with old data (Redis restarted
// from its append-only file, a disk with room again) never serves what a
// write dropped meanwhile. With a scheduler, remembered invalidations are
// also retried in the background (200 ms, doubling to 5 s) so that other
// gateways sharing the tier stop seeing the dropped answers soon after the
// tier answers again, whether or not this one reads it. Beyond kMaxMissed remembered invalidations, every
// namespace is dropped instead.
//
// Failures never fail a request: they are counted (Metrics::tier_error), and
// the answer is simply not found / not stored. Outages are logged once per
// outage by the DegradingBackend the gateway wraps the tier in
// (tiers::make_backend); other failures are logged once here, then at debug
// level. The same store serves SQLite and Redis (shared by every gateway
// using one server: an answer one gateway stored is an L2 hit for the
// others, and tag markers invalidate across gateways).
//
// Thread-safety: all members may be called from any thread (the Backend is
// thread-safe). L2 reads block the calling thread for one SQLite lookup (a
// few microseconds, on L1 misses only).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/backend.h"
#include "callcache/clock.h"
#include "callcache/tenant.h"
#include "gateway/metrics.h"

namespace callcache::gateway {

struct L2Answer {
  std::string body;
  Duration ttl_left{};
};

class L2Store {
 public:
  // `marker_ttl`: how long tag markers are kept (at least the longest
  // ttl + stale_ttl of any namespace). `namespaces`: every namespace whose
  // answers the store holds (dropped when too many invalidations were
  // missed). REQUIRES: backend and metrics outlive the store.
  L2Store(Backend& backend, Metrics& metrics, Duration marker_ttl,
          std::vector<std::string> namespaces = {}, Scheduler* scheduler = nullptr);
  ~L2Store();
  L2Store(const L2Store&) = delete;
  L2Store& operator=(const L2Store&) = delete;

  static constexpr std::size_t kMaxMissed = 10000;

  std::optional<L2Answer> get(std::string_view ns, TenantId tenant, std::string_view key);
  void put(std::string_view ns, TenantId tenant, std::string_view key, std::string_view body,
           Duration ttl, const std::vector<std::string>& tags);
  void invalidate_key(std::string_view ns, TenantId tenant, std::string_view key);
  void invalidate_tags(const std::vector<std::string>& tags);
  void invalidate_tenant(TenantId tenant);
  void invalidate_namespace(std::string_view ns);
  Status flush();
  Status health();
  Backend& backend() { return backend_; }

 private:
  // One invalidation, as issued (and, if the tier missed it, remembered).
  struct Missed {
    enum Kind { kKey, kTags, kTenant, kNamespace } kind = kKey;
    std::string ns;
    TenantId tenant{};
    std::string key;
    std::vector<std::string> tags;
  };
  void failed(const Status& s, const char* what);
  void invalidate(Missed m);
  // Applies and commits one invalidation.
  Status apply(const Missed& m);
  void remember(Missed m);
  // Applies the remembered invalidations; true when none is left. False at
  // once if another thread is replaying them.
  bool replay_missed();
  // Schedules a background replay after `delay` unless one is pending.
  void arm_retry(Duration delay);
  // REQUIRES: retry_->mu held, retry_->alive.
  void schedule_retry_locked(Duration delay);

  // Shared with the background retry task, which checks `alive` under `mu`
  // (the destructor clears it under `mu`, then cancels the task).
  struct RetryState {
    std::mutex mu;
    bool alive = true;
    bool armed = false;
    Scheduler::TaskId task = 0;
  };

  Backend& backend_;
  Metrics& metrics_;
  Duration marker_ttl_;
  const std::vector<std::string> namespaces_;
  std::atomic<bool> warned_{false};  // a non-outage failure was logged at warn level
  std::atomic<bool> has_missed_{false};
  std::mutex missed_mu_;  // guards missed_ and missed_overflow_
  std::vector<Missed> missed_;
  bool missed_overflow_ = false;
  Scheduler* scheduler_;  // optional: background retries of missed invalidations
  std::shared_ptr<RetryState> retry_ = std::make_shared<RetryState>();
};

}  // namespace callcache::gateway
