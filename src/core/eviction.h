// Internal: eviction strategies. A strategy orders a shard's entries for
// eviction; the shard owns storage, bounds and locking (policy apart from
// storage: docs/architecture.md).
//
// Contract (EvictionStrategy): every member runs under the shard's exclusive
// lock except on_hit, which runs under the shared lock concurrently with
// other on_hit calls and may only touch atomics.
#pragma once

#include <algorithm>
#include <bit>
#include <concepts>
#include <cstdint>
#include <vector>

#include "entry.h"

namespace callcache::internal {

template <class S>
concept EvictionStrategy = requires(S s, Entry* e, std::uint64_t hash, TenantId t) {
  s.on_insert(e, hash);           // a new entry is linked
  s.on_hit(e);                    // a lookup found e (shared lock only)
  { s.wants_promote() } -> std::convertible_to<bool>;  // on_hit needs promote() under exclusive lock
  s.promote(e);                   // reorder after a hit (exclusive lock)
  s.on_remove(e);                 // e leaves (explicit removal, expiry, eviction)
  { s.next_victim() } -> std::same_as<Entry*>;      // whom to evict next (nullptr if empty)
  { s.victim_of(t) } -> std::same_as<Entry*>;       // t's least valuable entry
  s.on_evict(e, hash);            // e was chosen by next_victim and is leaving
  s.on_replace(e, e);             // a new value takes over an entry's place (an update)
};

// Intrusive doubly linked list through Entry::prev/next. Head = newest.
class EntryList {
 public:
  void push_front(Entry* e) noexcept {
    e->prev = nullptr;
    e->next = head_;
    if (head_) head_->prev = e;
    head_ = e;
    if (!tail_) tail_ = e;
    ++size_;
  }
  void remove(Entry* e) noexcept {
    (e->prev ? e->prev->next : head_) = e->next;
    (e->next ? e->next->prev : tail_) = e->prev;
    e->prev = e->next = nullptr;
    --size_;
  }
  // Puts `now` where `old` is.
  void replace(Entry* old, Entry* now) noexcept {
    now->prev = old->prev;
    now->next = old->next;
    (old->prev ? old->prev->next : head_) = now;
    (old->next ? old->next->prev : tail_) = now;
    old->prev = old->next = nullptr;
  }
  Entry* tail() const noexcept { return tail_; }
  Entry* head() const noexcept { return head_; }
  std::size_t size() const noexcept { return size_; }

 private:
  Entry* head_ = nullptr;
  Entry* tail_ = nullptr;
  std::size_t size_ = 0;
};

// Least recently used. Reordering on a hit needs the exclusive lock: the shard
// tries to take it after the hit and skips the reorder if it is contended, so
// LRU is exact single-threaded and approximate under contention.
class LruStrategy {
 public:
  explicit LruStrategy(std::uint64_t /*capacity*/) {}
  void on_insert(Entry* e, std::uint64_t) noexcept { list_.push_front(e); }
  void on_hit(Entry*) noexcept {}
  static constexpr bool wants_promote() noexcept { return true; }
  void promote(Entry* e) noexcept {
    if (list_.head() == e) return;
    list_.remove(e);
    list_.push_front(e);
  }
  void on_remove(Entry* e) noexcept { list_.remove(e); }
  void on_replace(Entry* old, Entry* now) noexcept {
    list_.replace(old, now);
    promote(now);
  }
  Entry* next_victim() noexcept { return list_.tail(); }
  Entry* victim_of(TenantId t) const noexcept {
    for (Entry* e = list_.tail(); e; e = e->prev) {
      if (e->tenant() == t) return e;
    }
    return nullptr;
  }
  void on_evict(Entry*, std::uint64_t) noexcept {}

 private:
  EntryList list_;
};

// Remembers fingerprints of the last `capacity` keys evicted from S3-FIFO's
// small queue. Compact and lossy by design: a table of 4-byte slots (16-bit
// fingerprint, 16-bit insertion number), about one slot per remembered key. A
// key is remembered while fewer than `capacity` keys were added after it;
// probing is limited to a small window and a full window overwrites its oldest
// slot, so a few keys are forgotten early, and a fingerprint collision
// (about 1 in 8,000 lookups) admits a key to main. Both only nudge the hit
// ratio: the ghost is a hint. Costs 4-8 bytes per remembered key.
class GhostSet {
 public:
  explicit GhostSet(std::size_t capacity)
      : capacity_(static_cast<std::uint16_t>(std::min<std::size_t>(capacity ? capacity : 1, kMaxCapacity))),
        slots_(std::bit_ceil(capacity_ < 8u ? std::size_t{8} : std::size_t{capacity_})),
        mask_(slots_.size() - 1) {}

  void add(std::uint64_t h) {
    const std::uint16_t fp = fingerprint(h);
    std::size_t victim = home(h);
    std::uint32_t oldest_age = 0;
    for (std::size_t k = 0; k < kWindow; ++k) {
      Slot& s = slots_[(home(h) + k) & mask_];
      if (s.fp == fp && live(s)) return;  // already remembered
      std::uint32_t age = live(s) ? age_of(s) : ~0u;
      if (age >= oldest_age) {
        oldest_age = age;
        victim = (home(h) + k) & mask_;
      }
    }
    slots_[victim] = Slot{fp, now_++};
  }

  // Forgets h if remembered; returns whether it was.
  bool take(std::uint64_t h) {
    const std::uint16_t fp = fingerprint(h);
    for (std::size_t k = 0; k < kWindow; ++k) {
      Slot& s = slots_[(home(h) + k) & mask_];
      if (s.fp == fp && live(s)) {
        s.fp = 0;
        return true;
      }
    }
    return false;
  }

 private:
  struct Slot {
    std::uint16_t fp = 0;  // 0 = empty
    std::uint16_t seq = 0;
  };
  static constexpr std::size_t kWindow = 8;
  // Ages are 16-bit differences, so a shard's ghost remembers at most this many.
  static constexpr std::size_t kMaxCapacity = 30000;
  static std::uint16_t fingerprint(std::uint64_t h) { return static_cast<std::uint16_t>((h >> 48) | 1u); }
  std::size_t home(std::uint64_t h) const { return static_cast<std::size_t>(h) & mask_; }
  std::uint32_t age_of(const Slot& s) const { return static_cast<std::uint16_t>(now_ - s.seq); }
  bool live(const Slot& s) const { return s.fp != 0 && age_of(s) < capacity_; }

  std::uint16_t capacity_;
  std::vector<Slot> slots_;
  std::size_t mask_;
  std::uint16_t now_ = 0;  // insertion counter (wraps; ages are differences)
};

// S3-FIFO (Yang et al., SOSP'23). New entries enter a small FIFO; on leaving
// it an entry that was hit moves to the main FIFO, one that was not is evicted
// and its key remembered in the ghost. A key found in the ghost is admitted
// straight to main. Main is a FIFO with reinsertion (CLOCK-like, up to 3
// second chances). A hit only bumps an atomic counter.
//
// The paper sizes the small queue at 10% of the capacity. On small caches that
// leaves only a handful of entries to prove themselves in, and S3-FIFO loses
// badly to LRU on traces with short reuse distances (cache2k orm-busy at 76
// entries: 19% more misses). The small queue therefore gets a floor of 64
// entries (at most 60% of the capacity): on the cache2k traces and a
// scan-heavy one S3-FIFO is then within 0.34% of LRU or better at every
// simulated size, and unchanged from 640 entries up (docs/sim.md). Shards
// apply the floor to their own capacity.
class S3FifoStrategy {
 public:
  explicit S3FifoStrategy(std::uint64_t capacity)
      : small_target_(std::max<std::uint64_t>(
            {1, capacity / 10, std::min<std::uint64_t>(kSmallFloor, capacity * 6 / 10)})),
        ghost_(static_cast<std::size_t>(std::max<std::uint64_t>(1, capacity - small_target_))) {}

  void on_insert(Entry* e, std::uint64_t hash) {
    e->set_freq(0);
    if (ghost_.take(hash)) {
      e->set(Entry::kMain);
      main_.push_front(e);
    } else {
      e->clear(Entry::kMain);
      small_.push_front(e);
    }
  }
  void on_hit(Entry* e) noexcept { e->touch(); }
  static constexpr bool wants_promote() noexcept { return false; }
  void promote(Entry*) noexcept {}
  void on_remove(Entry* e) noexcept { (e->has(Entry::kMain) ? main_ : small_).remove(e); }
  // An update keeps the key's queue and counts as an access.
  void on_replace(Entry* old, Entry* now) noexcept {
    if (old->has(Entry::kMain)) now->set(Entry::kMain);
    now->set_freq(old->freq());
    now->touch();
    (old->has(Entry::kMain) ? main_ : small_).replace(old, now);
  }

  Entry* next_victim() noexcept {
    for (;;) {
      if (small_.size() > small_target_ || main_.size() == 0) {
        Entry* t = small_.tail();
        if (!t) return nullptr;
        if (t->freq() >= kPromoteFreq) {
          small_.remove(t);
          t->set_freq(0);
          t->set(Entry::kMain);
          main_.push_front(t);
          continue;
        }
        return t;
      }
      Entry* t = main_.tail();
      if (t->freq() > 0) {
        main_.remove(t);
        t->set_freq(static_cast<std::uint8_t>(t->freq() - 1));
        main_.push_front(t);
        continue;
      }
      return t;
    }
  }

  Entry* victim_of(TenantId t) const noexcept {
    for (Entry* e = small_.tail(); e; e = e->prev) {
      if (e->tenant() == t) return e;
    }
    for (Entry* e = main_.tail(); e; e = e->prev) {
      if (e->tenant() == t) return e;
    }
    return nullptr;
  }

  void on_evict(Entry* e, std::uint64_t hash) {
    if (!e->has(Entry::kMain)) ghost_.add(hash);
  }

 private:
  // Hits while in the small queue needed to move to main.
  static constexpr std::uint8_t kPromoteFreq = 1;
  static constexpr std::uint64_t kSmallFloor = 64;
  const std::uint64_t small_target_;
  EntryList small_;
  EntryList main_;
  GhostSet ghost_;
};

static_assert(EvictionStrategy<LruStrategy>);
static_assert(EvictionStrategy<S3FifoStrategy>);

}  // namespace callcache::internal
