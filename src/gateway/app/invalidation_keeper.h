// InvalidationKeeper — the gateway's L2 tier with invalidations that are
// never lost: a Backend decorator between Tiers (callcache/tiers.h) and the
// store (SQLite or Redis, behind its DegradingBackend).
//
// Tiers invalidates L2 by writing markers (puts in the reserved namespace
// "_callcache_inv") and erasing keys, tenants and namespaces. Through the
// keeper, each of those is:
//  - durable when the call returns: a write-behind store (SQLite) is flushed
//    right after it, so a write's invalidation is committed before the write
//    is answered, and a crash right after the answer cannot bring the
//    invalidated answer back from disk;
//  - remembered when the store does not take it (down, slow, full, read-only)
//    and applied again before the store is read: until every remembered
//    invalidation is applied, every L2 read fails with kUnavailable (Tiers
//    then calls the upstream), so a store that comes back with old data (Redis
//    restarted from its append-only file, a disk with room again) never serves
//    what a write dropped meanwhile. With a scheduler they are also retried in
//    the background (200 ms, doubling up to 5 s), so other gateways sharing
//    the store stop seeing the dropped answers soon after it answers again,
//    whether or not this one reads it. Beyond kMaxMissed remembered
//    invalidations, every namespace is erased instead.
// Replaying is safe in any order: an invalidation only removes, and a marker
// keeps the time it was first written.
//
// Every other call passes through unchanged.
//
// Thread-safety: every member may be called from any thread. Ownership: owns
// the wrapped backend; the scheduler (optional) must outlive the keeper.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "callcache/backend.h"
#include "callcache/clock.h"

namespace callcache::gateway {

class InvalidationKeeper final : public Backend {
 public:
  // `namespaces`: every namespace whose values the store holds (erased when
  // more than kMaxMissed invalidations were missed).
  InvalidationKeeper(std::unique_ptr<Backend> inner, std::vector<std::string> namespaces,
                     Scheduler* scheduler = nullptr);
  ~InvalidationKeeper() override;
  InvalidationKeeper(const InvalidationKeeper&) = delete;
  InvalidationKeeper& operator=(const InvalidationKeeper&) = delete;

  static constexpr std::size_t kMaxMissed = 10000;

  // Invalidations remembered and not applied yet.
  std::size_t missed() const;

  std::string_view name() const noexcept override { return inner_->name(); }
  Result<std::optional<StoredValue>> get(const BackendKey& key) override;
  Result<std::vector<std::optional<StoredValue>>> get_many(
      std::span<const BackendKey> keys) override;
  Status put(const BackendKey& key, std::string_view bytes, Duration ttl) override;
  Status put_many(std::span<const BackendItem> items) override;
  Status erase(const BackendKey& key) override;
  Status erase_tenant(TenantId tenant) override;
  Status erase_namespace(std::string_view ns) override;
  Result<std::uint64_t> purge_expired() override { return inner_->purge_expired(); }
  Status flush() override { return inner_->flush(); }
  Status health() override { return inner_->health(); }
  BackendStats stats() const override { return inner_->stats(); }

 private:
  // One invalidation, owning its strings.
  struct Op {
    enum Kind { kMarkers, kKey, kTenant, kNamespace } kind = kKey;
    struct Item {
      std::string ns;
      TenantId tenant{};
      std::string key;
      std::string bytes;
      Duration ttl{};
    };
    std::vector<Item> items;  // kMarkers: the marker puts; kKey: the key (ns, tenant, key)
    TenantId tenant{};        // kTenant
    std::string ns;           // kNamespace
  };
  // Applies `op`, and remembers it if the store does not take it.
  Status invalidate(Op op);
  // Applies and commits one invalidation.
  Status apply(const Op& op);
  void remember(Op op);
  // Applies the remembered invalidations; true when none is left. False at
  // once if another thread is replaying them.
  bool replay();
  // Whether reads may go to the store (nothing missed, or replayed now).
  bool readable();
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

  std::unique_ptr<Backend> inner_;
  const std::vector<std::string> namespaces_;
  Scheduler* scheduler_;
  std::atomic<bool> has_missed_{false};
  mutable std::mutex missed_mu_;  // guards missed_ and overflow_
  std::vector<Op> missed_;
  bool overflow_ = false;
  std::shared_ptr<RetryState> retry_ = std::make_shared<RetryState>();
};

}  // namespace callcache::gateway
