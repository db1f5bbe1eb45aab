#include "gateway/app/invalidation_keeper.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace callcache::gateway {
namespace {

// Where Tiers keeps its invalidation markers (callcache/tiers.h).
constexpr std::string_view kMarkerNs = "_callcache_inv";

}  // namespace

InvalidationKeeper::InvalidationKeeper(std::unique_ptr<Backend> inner,
                                       std::vector<std::string> namespaces, Scheduler* scheduler)
    : inner_(std::move(inner)), namespaces_(std::move(namespaces)), scheduler_(scheduler) {}

InvalidationKeeper::~InvalidationKeeper() {
  std::lock_guard lock(retry_->mu);  // waits for a retry that is running
  retry_->alive = false;
  if (scheduler_ && retry_->task) scheduler_->cancel(retry_->task);
}

std::size_t InvalidationKeeper::missed() const {
  std::lock_guard lock(missed_mu_);
  return missed_.size() + (overflow_ ? 1 : 0);
}

bool InvalidationKeeper::readable() {
  return !has_missed_.load(std::memory_order_acquire) || replay();
}

Result<std::optional<StoredValue>> InvalidationKeeper::get(const BackendKey& key) {
  if (!readable()) return Status::unavailable("L2: invalidations the store missed are pending");
  return inner_->get(key);
}

Result<std::vector<std::optional<StoredValue>>> InvalidationKeeper::get_many(
    std::span<const BackendKey> keys) {
  if (!readable()) return Status::unavailable("L2: invalidations the store missed are pending");
  return inner_->get_many(keys);
}

Status InvalidationKeeper::put(const BackendKey& key, std::string_view bytes, Duration ttl) {
  if (key.ns != kMarkerNs) return inner_->put(key, bytes, ttl);
  Op op;
  op.kind = Op::kMarkers;
  op.items.push_back(
      {std::string(key.ns), key.tenant, std::string(key.key), std::string(bytes), ttl});
  return invalidate(std::move(op));
}

Status InvalidationKeeper::put_many(std::span<const BackendItem> items) {
  const bool markers = std::any_of(items.begin(), items.end(),
                                   [](const BackendItem& i) { return i.key.ns == kMarkerNs; });
  if (!markers) return inner_->put_many(items);
  Op op;
  op.kind = Op::kMarkers;
  for (const BackendItem& i : items) {
    op.items.push_back(
        {std::string(i.key.ns), i.key.tenant, std::string(i.key.key), std::string(i.bytes), i.ttl});
  }
  return invalidate(std::move(op));
}

Status InvalidationKeeper::erase(const BackendKey& key) {
  Op op;
  op.kind = Op::kKey;
  op.items.push_back({std::string(key.ns), key.tenant, std::string(key.key), {}, {}});
  return invalidate(std::move(op));
}

Status InvalidationKeeper::erase_tenant(TenantId tenant) {
  Op op;
  op.kind = Op::kTenant;
  op.tenant = tenant;
  return invalidate(std::move(op));
}

Status InvalidationKeeper::erase_namespace(std::string_view ns) {
  Op op;
  op.kind = Op::kNamespace;
  op.ns = ns;
  return invalidate(std::move(op));
}

Status InvalidationKeeper::invalidate(Op op) {
  Status s = apply(op);
  if (!s.ok()) remember(std::move(op));
  return s;  // Tiers counts and reports the failure
}

Status InvalidationKeeper::apply(const Op& op) {
  Status s;
  switch (op.kind) {
    case Op::kMarkers: {
      std::vector<BackendItem> items;
      items.reserve(op.items.size());
      for (const auto& i : op.items) items.push_back({{i.ns, i.tenant, i.key}, i.bytes, i.ttl});
      s = items.size() == 1 ? inner_->put(items[0].key, items[0].bytes, items[0].ttl)
                            : inner_->put_many(items);
      break;
    }
    case Op::kKey:
      s = inner_->erase({op.items[0].ns, op.items[0].tenant, op.items[0].key});
      break;
    case Op::kTenant:
      s = inner_->erase_tenant(op.tenant);
      break;
    case Op::kNamespace:
      s = inner_->erase_namespace(op.ns);
      break;
  }
  // A write-behind store (SQLite) queues erases and markers: commit them
  // now, before the write that caused them is answered.
  if (s.ok()) s = inner_->flush();
  return s;
}

void InvalidationKeeper::remember(Op op) {
  {
    std::lock_guard lock(missed_mu_);
    if (missed_.size() < kMaxMissed) {
      missed_.push_back(std::move(op));
    } else {
      overflow_ = true;  // too many to replay one by one: every namespace goes
    }
    has_missed_.store(true, std::memory_order_release);
  }
  arm_retry(std::chrono::milliseconds(200));
}

bool InvalidationKeeper::replay() {
  std::unique_lock lock(missed_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return false;  // another thread is replaying: not yet trusted
  if (!has_missed_.load(std::memory_order_acquire)) return true;
  if (overflow_) {
    for (const auto& ns : namespaces_) {
      if (!inner_->erase_namespace(ns).ok()) return false;
    }
    if (!inner_->flush().ok()) return false;
    missed_.clear();
    overflow_ = false;
  }
  std::size_t done = 0;
  for (; done < missed_.size(); ++done) {
    if (!apply(missed_[done]).ok()) break;
  }
  missed_.erase(missed_.begin(), missed_.begin() + static_cast<std::ptrdiff_t>(done));
  if (!missed_.empty()) return false;
  has_missed_.store(false, std::memory_order_release);
  spdlog::info("L2 {}: the invalidations it missed while failing are applied", inner_->name());
  return true;
}

void InvalidationKeeper::arm_retry(Duration delay) {
  if (!scheduler_) return;
  std::lock_guard lock(retry_->mu);
  if (!retry_->alive || retry_->armed) return;
  schedule_retry_locked(delay);
}

void InvalidationKeeper::schedule_retry_locked(Duration delay) {
  retry_->armed = true;
  std::shared_ptr<RetryState> st = retry_;
  retry_->task = scheduler_->schedule_after(delay, [this, st, delay] {
    std::lock_guard lock(st->mu);  // the destructor waits for this to finish
    if (!st->alive) return;
    st->armed = false;
    if (!replay() && has_missed_.load(std::memory_order_acquire)) {
      schedule_retry_locked(std::min<Duration>(delay * 2, std::chrono::seconds(5)));
    }
  });
}

}  // namespace callcache::gateway
