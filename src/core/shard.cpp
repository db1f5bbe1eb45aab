#include "shard.h"

#include <cassert>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "eviction.h"
#include "rw_lock.h"
#include "table.h"

namespace callcache::internal {
namespace {

template <EvictionStrategy Strategy>
class ShardImpl final : public Shard {
 public:
  ShardImpl(const ShardLimits& limits, std::uint64_t seed)
      : limits_(limits), seed_(seed), table_(limits.max_entries), strategy_(limits.max_entries) {
    table_.set_seed(seed);
  }

  ~ShardImpl() override {
    std::unique_lock lock(mu_);
    std::vector<Entry*> all;
    table_.for_each([&](Entry* e) { all.push_back(e); });
    for (Entry* e : all) unlink(e, nullptr);
  }

  Entry* find(std::uint64_t hash, TenantId tenant, std::string_view key, const LookupContext& ctx,
              bool count, Freshness* freshness) override {
    Entry* e;
    Freshness f = Freshness::kMiss;
    {
      SharedGuard lock(mu_);
      e = table_.find(hash, tenant, key);
      if (e) f = classify(*e, ctx);
      if (count ? (f == Freshness::kFresh || f == Freshness::kRefreshDue) : f != Freshness::kMiss) {
        e->ref();
        strategy_.on_hit(e);
      } else {
        e = nullptr;
      }
      if (count) {
        // Counted on the reader's own stripe: no cache line shared with
        // readers on other cores.
        auto& st = mu_.stripe(lock.stripe());
        (e ? st.hits : st.misses).fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (freshness) *freshness = e ? f : Freshness::kMiss;
    if (e && Strategy::wants_promote()) {
      // Reorder only if nobody else holds the lock: contention makes LRU
      // approximate instead of making readers queue.
      std::unique_lock lock(mu_, std::try_to_lock);
      if (lock.owns_lock() && e->has(Entry::kLinked)) strategy_.promote(e);
    }
    return e;
  }

  Status insert(std::uint64_t hash, Entry* e, const std::vector<std::string>& tags,
                const std::atomic<std::uint64_t>* epoch, std::uint64_t expected) override {
    std::unique_lock lock(mu_);
    // Invalidations bump the epoch before taking this lock to remove entries:
    // if it moved, one ran after the value was loaded and the value is stale.
    if (epoch && epoch->load(std::memory_order_seq_cst) != expected) {
      return Status::cancelled("an invalidation ran while the value was being loaded");
    }
    Entry* old = table_.find(hash, e->tenant(), e->key());
    if (limits_.max_bytes && e->charge() > limits_.max_bytes) {
      // The caller's new value supersedes the old one even though it cannot
      // be stored: serving the old value after a failed update would be wrong.
      if (old) unlink(old, &counters.evictions[static_cast<int>(EvictionCause::kExplicit)], hash);
      counters.rejected.fetch_add(1, std::memory_order_relaxed);
      return Status::too_large("value of " + std::to_string(e->charge()) +
                               " bytes exceeds the byte budget of " + std::to_string(limits_.max_bytes));
    }
    if (old && old->version() == e->version()) {
      // An update takes over the old entry's slot and queue position.
      counters.updates.fetch_add(1, std::memory_order_relaxed);
      e->ref();  // the shard's reference
      e->set(Entry::kLinked);
      table_.replace(hash, old, e);
      strategy_.on_replace(old, e);
      bytes_.store(bytes_.load(std::memory_order_relaxed) - old->charge() + e->charge(), std::memory_order_relaxed);
      if (old->has(Entry::kTagged)) remove_tags(old);
      if (!tags.empty()) add_tags(e, tags);
      old->clear(Entry::kLinked);
      old->unref();
      enforce_bounds();
      return Status();
    }
    if (old) {
      unlink(old, nullptr, hash);
      counters.updates.fetch_add(1, std::memory_order_relaxed);
    } else {
      counters.inserts.fetch_add(1, std::memory_order_relaxed);
    }
    if (limits_.max_per_tenant) {
      // A tenant at its cap makes room among its own entries only.
      for (;;) {
        auto it = tenant_counts_.find(e->tenant().value);
        if (it == tenant_counts_.end() || it->second < limits_.max_per_tenant) break;
        Entry* v = strategy_.victim_of(e->tenant());
        assert(v);
        if (!v) break;
        unlink(v, &counters.evictions[static_cast<int>(EvictionCause::kTenantCap)]);
      }
    }
    e->ref();  // the shard's reference
    e->set(Entry::kLinked);
    table_.insert(hash, e);
    strategy_.on_insert(e, hash);
    entries_.store(entries_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    bytes_.store(bytes_.load(std::memory_order_relaxed) + e->charge(), std::memory_order_relaxed);
    if (limits_.max_per_tenant) ++tenant_counts_[e->tenant().value];
    if (!tags.empty()) add_tags(e, tags);
    enforce_bounds();
    return Status();
  }

  bool erase(std::uint64_t hash, TenantId tenant, std::string_view key) override {
    std::unique_lock lock(mu_);
    Entry* e = table_.find(hash, tenant, key);
    if (!e) return false;
    unlink(e, &counters.evictions[static_cast<int>(EvictionCause::kExplicit)], hash);
    return true;
  }

  std::uint64_t remove_if(const std::function<bool(const Entry&)>& pred, EvictionCause cause) override {
    std::vector<Entry*> doomed;
    {
      // Scan under the shared lock first: most sweeps find little to remove.
      SharedGuard lock(mu_);
      table_.for_each([&](Entry* e) {
        if (pred(*e)) {
          e->ref();
          doomed.push_back(e);
        }
      });
    }
    std::uint64_t removed = 0;
    if (!doomed.empty()) {
      std::unique_lock lock(mu_);
      for (Entry* e : doomed) {
        if (e->has(Entry::kLinked) && pred(*e)) {
          unlink(e, &counters.evictions[static_cast<int>(cause)]);
          if (cause == EvictionCause::kExpired) counters.expirations.fetch_add(1, std::memory_order_relaxed);
          ++removed;
        }
      }
    }
    for (Entry* e : doomed) e->unref();
    return removed;
  }

  std::uint64_t remove_tag(const std::string& tag) override {
    std::unique_lock lock(mu_);
    auto it = tag_index_.find(tag);
    if (it == tag_index_.end()) return 0;
    std::vector<Entry*> doomed(it->second.begin(), it->second.end());
    for (Entry* e : doomed) unlink(e, &counters.evictions[static_cast<int>(EvictionCause::kExplicit)]);
    return doomed.size();
  }

  std::uint64_t entries() const noexcept override { return entries_.load(std::memory_order_relaxed); }
  std::uint64_t bytes() const noexcept override { return bytes_.load(std::memory_order_relaxed); }
  std::uint64_t hits() const noexcept override {
    std::uint64_t n = 0;
    for (int i = 0; i < StripedRwLock::kStripes; ++i) n += mu_.stripe(i).hits.load(std::memory_order_relaxed);
    return n;
  }
  std::uint64_t misses() const noexcept override {
    std::uint64_t n = 0;
    for (int i = 0; i < StripedRwLock::kStripes; ++i) n += mu_.stripe(i).misses.load(std::memory_order_relaxed);
    return n;
  }

 private:
  static Freshness classify(const Entry& e, const LookupContext& ctx) noexcept {
    if (e.version() != ctx.version) return Freshness::kMiss;
    if (e.has(Entry::kNegative)) return ctx.now < e.expire() ? Freshness::kNegative : Freshness::kMiss;
    if (ctx.now < e.expire()) {
      return ctx.now < e.expire() - ctx.refresh_ahead ? Freshness::kFresh : Freshness::kRefreshDue;
    }
    return ctx.now < e.expire() + ctx.stale_ttl ? Freshness::kStale : Freshness::kMiss;
  }

  // REQUIRES: mu_ held exclusively.
  void enforce_bounds() {
    for (;;) {
      const std::uint64_t n = entries_.load(std::memory_order_relaxed);
      const std::uint64_t b = bytes_.load(std::memory_order_relaxed);
      if (n <= limits_.max_entries && (!limits_.max_bytes || b <= limits_.max_bytes)) break;
      EvictionCause cause = n > limits_.max_entries ? EvictionCause::kSize : EvictionCause::kBytes;
      Entry* v = strategy_.next_victim();
      assert(v);
      if (!v) break;
      std::uint64_t vh = Table::hash_of(seed_, v);
      strategy_.on_evict(v, vh);
      unlink(v, &counters.evictions[static_cast<int>(cause)], vh);
    }
  }

  void unlink(Entry* e, std::atomic<std::uint64_t>* cause_counter) {
    unlink(e, cause_counter, Table::hash_of(seed_, e));
  }

  // REQUIRES: mu_ held exclusively; e linked.
  void unlink(Entry* e, std::atomic<std::uint64_t>* cause_counter, std::uint64_t hash) {
    assert(e->has(Entry::kLinked));
    bool erased = table_.erase(hash, e);
    assert(erased);
    (void)erased;
    strategy_.on_remove(e);
    entries_.store(entries_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    bytes_.store(bytes_.load(std::memory_order_relaxed) - e->charge(), std::memory_order_relaxed);
    if (limits_.max_per_tenant) {
      auto it = tenant_counts_.find(e->tenant().value);
      if (it != tenant_counts_.end() && --it->second == 0) tenant_counts_.erase(it);
    }
    if (e->has(Entry::kTagged)) remove_tags(e);
    e->clear(Entry::kLinked);
    if (cause_counter) cause_counter->fetch_add(1, std::memory_order_relaxed);
    e->unref();
  }

  void add_tags(Entry* e, const std::vector<std::string>& tags) {
    e->set(Entry::kTagged);
    auto& mine = entry_tags_[e];
    for (const auto& t : tags) {
      if (tag_index_[t].insert(e).second) mine.push_back(t);
    }
  }

  void remove_tags(Entry* e) {
    auto it = entry_tags_.find(e);
    if (it != entry_tags_.end()) {
      for (const auto& t : it->second) {
        auto ti = tag_index_.find(t);
        if (ti == tag_index_.end()) continue;
        ti->second.erase(e);
        if (ti->second.empty()) tag_index_.erase(ti);
      }
      entry_tags_.erase(it);
    }
    e->clear(Entry::kTagged);
  }

  const ShardLimits limits_;
  const std::uint64_t seed_;
  mutable StripedRwLock mu_;  // guards everything below (entries_ and bytes_ are also read unlocked)
  Table table_;
  Strategy strategy_;
  // Changed only under mu_ exclusively; atomic so stats can read them unlocked.
  std::atomic<std::uint64_t> entries_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::unordered_map<std::uint64_t, std::uint64_t> tenant_counts_;  // only with max_per_tenant
  std::unordered_map<std::string, std::unordered_set<Entry*>> tag_index_;
  std::unordered_map<const Entry*, std::vector<std::string>> entry_tags_;
};

}  // namespace

std::unique_ptr<Shard> make_shard(EvictionPolicy policy, const ShardLimits& limits, std::uint64_t seed) {
  switch (policy) {
    case EvictionPolicy::kLru: return std::make_unique<ShardImpl<LruStrategy>>(limits, seed);
    case EvictionPolicy::kS3Fifo: return std::make_unique<ShardImpl<S3FifoStrategy>>(limits, seed);
  }
  return nullptr;
}

}  // namespace callcache::internal
