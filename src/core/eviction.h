// Internal: eviction strategies. A strategy orders a shard's entries for
// eviction; the shard owns storage, bounds and locking (STYLE: policy apart
// from storage).
//
// Contract (EvictionStrategy): every member runs under the shard's exclusive
// lock except on_hit, which runs under the shared lock concurrently with
// other on_hit calls and may only touch atomics.
#pragma once

#include <concepts>
#include <cstdint>
#include <unordered_set>
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

// Remembers the hashes of recently evicted keys (S3-FIFO's ghost queue), in
// FIFO order, up to a capacity.
class GhostSet {
 public:
  explicit GhostSet(std::size_t capacity) : ring_(capacity ? capacity : 1, 0) {}
  void add(std::uint64_t h) {
    if (set_.count(h)) return;
    if (set_.size() == ring_.size()) set_.erase(ring_[pos_]);
    ring_[pos_] = h;
    set_.insert(h);
    if (++pos_ == ring_.size()) pos_ = 0;
  }
  // Removes h if present; returns whether it was.
  bool take(std::uint64_t h) { return set_.erase(h) > 0; }

 private:
  std::vector<std::uint64_t> ring_;
  std::size_t pos_ = 0;
  std::unordered_set<std::uint64_t> set_;
};

// S3-FIFO (Yang et al., SOSP'23): new entries enter a small FIFO (~10% of the
// capacity); on leaving it an entry that was hit moves to the main FIFO, one
// that was not is evicted and its key remembered in the ghost. A key found in
// the ghost is admitted straight to main. Main is a FIFO with reinsertion
// (CLOCK-like, up to 3 second chances). A hit only bumps an atomic counter.
class S3FifoStrategy {
 public:
  explicit S3FifoStrategy(std::uint64_t capacity)
      : small_target_(capacity / 10 ? capacity / 10 : 1),
        ghost_(static_cast<std::size_t>(capacity - capacity / 10 ? capacity - capacity / 10 : 1)) {}

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
  std::size_t small_target_;
  EntryList small_;
  EntryList main_;
  GhostSet ghost_;
};

static_assert(EvictionStrategy<LruStrategy>);
static_assert(EvictionStrategy<S3FifoStrategy>);

}  // namespace callcache::internal
