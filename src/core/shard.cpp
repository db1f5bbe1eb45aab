#include "shard.h"

#include <cassert>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "adaptive.h"
#include "eviction.h"
#include "reclaim.h"
#include "spin_lock.h"
#include "table.h"
#include "two_queue.h"

namespace callcache::internal {
namespace {

struct EntryHasher {
  std::uint64_t seed;
  std::uint64_t operator()(const Entry* e) const noexcept { return Table::hash_of(seed, e); }
};

// S3-FIFO, W-TinyLFU or the adaptive policy (two_queue.h) over entries.
class TwoQueueStrategy {
 public:
  TwoQueueStrategy(EvictionPolicy policy, std::uint64_t capacity, std::uint64_t seed,
                   const AdaptiveController* adaptive)
      : adaptive_(policy == EvictionPolicy::kAdaptive ? adaptive : nullptr),
        queues_({capacity,
                 policy == EvictionPolicy::kWTinyLfu ? QueueMode::kWTinyLfu : QueueMode::kS3Fifo,
                 /*ghost=*/policy == EvictionPolicy::kS3Fifo,
                 /*sketch=*/policy == EvictionPolicy::kWTinyLfu,
                 /*per_mode=*/policy == EvictionPolicy::kAdaptive},
                EntryHasher{seed}) {
    assert(policy != EvictionPolicy::kAdaptive || adaptive_);
  }
  static constexpr bool kBuffersHits = false;
  void on_insert(Entry* e, std::uint64_t hash) {
    follow();
    queues_.on_insert(e, hash);
  }
  void promote(Entry*) noexcept {}
  void on_remove(Entry* e) noexcept { queues_.on_remove(e); }
  void on_replace(Entry* old, Entry* now) noexcept { queues_.on_replace(old, now); }
  Entry* next_victim() {
    follow();
    return queues_.next_victim();
  }
  Entry* victim_of(TenantId t) const {
    return queues_.victim_if([t](const Entry* e) { return e->tenant() == t; });
  }
  void on_evict(Entry* e, std::uint64_t hash) { queues_.on_evict(e, hash); }
  std::size_t memory() const noexcept { return queues_.memory(); }

 private:
  void follow() {
    if (adaptive_) queues_.set_mode(adaptive_->mode());
  }
  const AdaptiveController* adaptive_;
  TwoQueue<Entry, EntryHasher> queues_;
};

// Hits a strategy wants in order (LRU), buffered per thread: each thread
// appends to the lane of its reader record's index, and the lock holder
// drains every lane before it evicts. A record names an entry and its hash;
// the drain promotes it only if the table still holds that entry, found from
// the hash without reading the (possibly freed) entry. Several threads
// sharing a lane may overwrite each other's records: hits are dropped,
// nothing unsafe is read.
class HitBuffers {
 public:
  static constexpr std::size_t kLanes = 8;
  static constexpr std::uint32_t kSize = 7;

  // Appends; false if the lane is full (the caller drains and retries).
  bool push(std::uint32_t thread, Entry* e, std::uint64_t hash) noexcept {
    Lane& l = lanes_[thread % kLanes];
    std::uint32_t head = l.head.load(std::memory_order_relaxed);
    if (head - l.tail.load(std::memory_order_acquire) >= kSize) return false;
    l.entries[head % kSize].store(e, std::memory_order_relaxed);
    l.hashes[head % kSize].store(hash, std::memory_order_relaxed);
    l.head.compare_exchange_strong(head, head + 1, std::memory_order_release,
                                   std::memory_order_relaxed);
    return true;
  }

  // REQUIRES: the shard's lock held.
  template <class F>
  void drain(F&& f) {
    for (Lane& l : lanes_) {
      const std::uint32_t tail = l.tail.load(std::memory_order_relaxed);
      const std::uint32_t head = l.head.load(std::memory_order_acquire);
      for (std::uint32_t i = tail; i != head; ++i) {
        f(l.entries[i % kSize].load(std::memory_order_relaxed),
          l.hashes[i % kSize].load(std::memory_order_relaxed));
      }
      l.tail.store(head, std::memory_order_release);
    }
  }

 private:
  struct alignas(64) Lane {
    std::atomic<std::uint32_t> head{0};
    std::atomic<std::uint32_t> tail{0};
    std::array<std::atomic<Entry*>, kSize> entries{};
    std::array<std::atomic<std::uint64_t>, kSize> hashes{};
  };
  std::array<Lane, kLanes> lanes_;
};

struct NoHitBuffers {};

template <class Strategy>
class ShardImpl final : public Shard {
 public:
  template <class... StrategyArgs>
  ShardImpl(const ShardLimits& limits, std::uint64_t seed, const ShardContext& context,
            StrategyArgs&&... args)
      : limits_(limits),
        seed_(seed),
        context_(context),
        table_(limits.max_entries),
        strategy_(std::forward<StrategyArgs>(args)...) {
    table_.set_seed(seed);
  }

  ~ShardImpl() override {
    std::lock_guard lock(mu_);
    std::vector<Entry*> all;
    table_.for_each([&](Entry* e) { all.push_back(e); });
    for (Entry* e : all) unlink(e, nullptr);
    // The engine is going away: no lookup can reach this shard any more.
    retired_.free_all();
  }

  Entry* find(std::uint64_t hash, TenantId tenant, std::string_view key, const LookupContext& ctx,
              bool count, Freshness* freshness, bool pin_slot, InPlaceCopy* copy) override {
    Entry* e;
    Entry* handle = nullptr;
    Freshness f = Freshness::kMiss;
    {
      ReadSection section;
      e = table_.find(hash, tenant, key);
      if (e) f = classify(*e, ctx);
      if (count ? (f == Freshness::kFresh || f == Freshness::kRefreshDue) : f != Freshness::kMiss) {
        // Safe without a lock: the shard's own reference is only dropped a
        // grace period after the entry leaves the table, and not while a pin
        // slot holds it.
        std::atomic<void*>* slot = nullptr;
        if (copy) {
          *copy->expires = e->read_in_place(copy->word);
          handle = e;  // not pinned: the caller only tests it
        } else if (pin_slot && (slot = try_pin(section.record(), e))) {
          handle = pin_handle(slot);
        } else {
          e->ref();
          handle = e;
        }
        note_use(section, e, hash);
      }
    }
    e = handle;
    if (count) context_.lookups->add(e ? kHitCount : kMissCount);
    if (context_.adaptive) context_.adaptive->on_lookup(hash);
    if (freshness) *freshness = e ? f : Freshness::kMiss;
    return e;
  }

  Status insert(std::uint64_t hash, Entry* e, const std::vector<std::string>& tags, bool adopt,
                const std::atomic<std::uint64_t>* epoch, std::uint64_t expected) override {
    std::lock_guard lock(mu_);
    drain_hits();
    // Invalidations bump the epoch before taking this lock to remove entries:
    // if it moved, one ran after the value was loaded and the value is stale.
    if (epoch && epoch->load(std::memory_order_seq_cst) != expected) {
      return Status::cancelled("an invalidation ran while the value was being loaded");
    }
    const Table::Found found = table_.find_slot(hash, e->tenant(), e->key());
    Entry* old = found.entry;
    const std::uint32_t charge = e->charge();
    if (limits_.max_bytes && charge > limits_.max_bytes) {
      // The caller's new value supersedes the old one even though it cannot
      // be stored: serving the old value after a failed update would be wrong.
      if (old) unlink(old, &counters.evictions[static_cast<int>(EvictionCause::kExplicit)], hash);
      counters.rejected.fetch_add(1, std::memory_order_relaxed);
      retired_.collect();
      return Status::too_large("value of " + std::to_string(charge) +
                               " bytes exceeds the byte budget of " +
                               std::to_string(limits_.max_bytes));
    }
    if (old && old->version() == e->version()) {
      // An update takes over the old entry's slot and queue position.
      bump(counters.updates);
      if (!adopt) e->ref();  // the shard's reference
      e->set(Entry::kLinked);
      if (!tags.empty()) add_tags(e, tags);  // before publishing: see update_in_place
      table_.replace_at(found, hash, e);
      strategy_.on_replace(old, e);
      bytes_.store(bytes_.load(std::memory_order_relaxed) - old->charge() + charge,
                   std::memory_order_relaxed);
      if (old->has(Entry::kTagged)) remove_tags(old);
      old->clear(Entry::kLinked);
      retire(old);
      enforce_bounds();
      retired_.collect();
      return Status();
    }
    if (old) {
      unlink(old, nullptr, hash);
      bump(counters.updates);
    } else {
      bump(counters.inserts);
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
    if (!adopt) e->ref();  // the shard's reference
    e->set(Entry::kLinked);
    if (!tags.empty()) add_tags(e, tags);  // before publishing: see update_in_place
    table_.insert(hash, e);
    while (Table::Array* old_slots = table_.take_replaced())
      retired_.retire(old_slots, &Table::free_array);
    strategy_.on_insert(e, hash);
    entries_.store(entries_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    bytes_.store(bytes_.load(std::memory_order_relaxed) + charge, std::memory_order_relaxed);
    if (limits_.max_per_tenant) ++tenant_counts_[e->tenant().value];
    enforce_bounds();
    retired_.collect();
    return Status();
  }

  bool update_in_place(std::uint64_t hash, TenantId tenant, std::string_view key,
                       std::uint64_t word, std::uint32_t charge, TimePoint expire,
                       std::uint16_t version) override {
    ReadSection section;
    Entry* e = table_.find(hash, tenant, key);
    // Type, version, charge and kTagged are fixed before an entry is published.
    if (!e || e->negative() || e->version() != version || e->charge() != charge ||
        e->has(Entry::kTagged) || !e->has(Entry::kLinked) ||
        !e->try_update_in_place(word, expire)) {
      return false;
    }
    note_use(section, e, hash);  // an update is a use, as in on_replace
    context_.lookups->add(kInPlaceUpdateCount);
    return true;
  }

  bool erase(std::uint64_t hash, TenantId tenant, std::string_view key) override {
    std::lock_guard lock(mu_);
    Entry* e = table_.find(hash, tenant, key);
    if (!e) return false;
    unlink(e, &counters.evictions[static_cast<int>(EvictionCause::kExplicit)], hash);
    retired_.collect(/*force=*/true);
    return true;
  }

  std::uint64_t remove_if(const std::function<bool(const Entry&)>& pred,
                          EvictionCause cause) override {
    std::vector<Entry*> doomed;
    {
      // Scan without the lock first: most sweeps find little to remove.
      ReadSection section;
      table_.for_each([&](Entry* e) {
        if (pred(*e)) {
          e->ref();
          doomed.push_back(e);
        }
      });
    }
    std::uint64_t removed = 0;
    {
      std::lock_guard lock(mu_);
      for (Entry* e : doomed) {
        if (e->has(Entry::kLinked) && pred(*e)) {
          unlink(e, &counters.evictions[static_cast<int>(cause)]);
          if (cause == EvictionCause::kExpired) bump(counters.expirations);
          ++removed;
        }
      }
      retired_.collect(/*force=*/removed > 0);
    }
    for (Entry* e : doomed) e->unref();
    return removed;
  }

  std::uint64_t remove_tag(const std::string& tag) override {
    std::lock_guard lock(mu_);
    auto it = tag_index_.find(tag);
    if (it == tag_index_.end()) return 0;
    std::vector<Entry*> doomed(it->second.begin(), it->second.end());
    for (Entry* e : doomed)
      unlink(e, &counters.evictions[static_cast<int>(EvictionCause::kExplicit)]);
    retired_.collect(/*force=*/true);
    return doomed.size();
  }

  void reclaim() override {
    std::lock_guard lock(mu_);
    drain_hits();
    retired_.collect(/*force=*/true);
  }

  std::uint64_t entries() const noexcept override {
    return entries_.load(std::memory_order_relaxed);
  }
  std::uint64_t bytes() const noexcept override { return bytes_.load(std::memory_order_relaxed); }
  std::size_t strategy_memory() override {
    if constexpr (requires(const Strategy& s) { s.memory(); }) {
      std::lock_guard lock(mu_);
      return strategy_.memory();
    } else {
      return 0;
    }
  }

 private:
  static Freshness classify(const Entry& e, const LookupContext& ctx) noexcept {
    if (e.version() != ctx.version) return Freshness::kMiss;
    if (e.negative()) return ctx.now < e.expire() ? Freshness::kNegative : Freshness::kMiss;
    if (ctx.now < e.expire()) {
      return ctx.now < e.expire() - ctx.refresh_ahead ? Freshness::kFresh : Freshness::kRefreshDue;
    }
    return ctx.now < e.expire() + ctx.stale_ttl ? Freshness::kStale : Freshness::kMiss;
  }

  // A hit on (or an update in place of) `e`, for the eviction strategy: a
  // buffered promote (LRU) or the entry's hit counter. Inside the section
  // that found `e`.
  void note_use(ReadSection& section, Entry* e, std::uint64_t hash) noexcept {
    if constexpr (Strategy::kBuffersHits) {
      buffer_hit(section.record().index, e, hash);
    } else {
      e->touch();
    }
  }

  // Inside the lookup's read section: `e` is still safe to name.
  void buffer_hit(std::uint32_t thread, Entry* e, std::uint64_t hash) noexcept {
    if (hits_.push(thread, e, hash)) return;
    // Full: drain it ourselves if the shard is free, else drop this hit.
    std::unique_lock lock(mu_, std::try_to_lock);
    if (!lock.owns_lock()) return;
    drain_hits();
    (void)hits_.push(thread, e, hash);
  }

  // REQUIRES: mu_ held.
  void drain_hits() {
    if constexpr (Strategy::kBuffersHits) {
      hits_.drain([this](Entry* e, std::uint64_t hash) {
        if (e && table_.contains(hash, e)) strategy_.promote(e);
      });
    }
  }

  static void release(void* e) noexcept { static_cast<Entry*>(e)->unref(); }
  // The shard's reference to an unlinked entry, dropped after a grace period
  // once no pin slot holds it.
  void retire(Entry* e) { retired_.retire(e, &release, /*pinnable=*/true); }

  // A counter only this shard's lock holder writes: no locked read-modify-write.
  // REQUIRES: mu_ held.
  static void bump(std::atomic<std::uint64_t>& c) noexcept {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // REQUIRES: mu_ held.
  void enforce_bounds() {
    if (entries_.load(std::memory_order_relaxed) <= limits_.max_entries &&
        (!limits_.max_bytes || bytes_.load(std::memory_order_relaxed) <= limits_.max_bytes))
      return;
    enforce_bounds_slow();
  }
  void enforce_bounds_slow() {
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

  // REQUIRES: mu_ held; e linked.
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
    if (cause_counter) bump(*cause_counter);
    retire(e);
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
  const ShardContext context_;
  SpinMutex mu_;  // writers: guards everything below (entries_ and bytes_ are also read unlocked)
  Table table_;
  Strategy strategy_;
  [[no_unique_address]] std::conditional_t<Strategy::kBuffersHits, HitBuffers, NoHitBuffers> hits_;
  RetireList retired_;
  // Changed only under mu_; atomic so stats can read them unlocked.
  std::atomic<std::uint64_t> entries_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::unordered_map<std::uint64_t, std::uint64_t> tenant_counts_;  // only with max_per_tenant
  std::unordered_map<std::string, std::unordered_set<Entry*>> tag_index_;
  std::unordered_map<const Entry*, std::vector<std::string>> entry_tags_;
};

}  // namespace

std::unique_ptr<Shard> make_shard(EvictionPolicy policy, const ShardLimits& limits,
                                  std::uint64_t seed, const ShardContext& context) {
  switch (policy) {
    case EvictionPolicy::kLru:
      return std::make_unique<ShardImpl<LruStrategy>>(limits, seed, context, limits.max_entries,
                                                      seed);
    case EvictionPolicy::kS3Fifo:
    case EvictionPolicy::kWTinyLfu:
    case EvictionPolicy::kAdaptive:
      return std::make_unique<ShardImpl<TwoQueueStrategy>>(
          limits, seed, context, policy, limits.max_entries, seed, context.adaptive);
  }
  return nullptr;
}

}  // namespace callcache::internal
