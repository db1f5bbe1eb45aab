// Internal: eviction strategies. A strategy orders a shard's entries for
// eviction; the shard owns storage, bounds and locking (policy apart from
// storage: docs/architecture.md).
//
// Contract (EvictionStrategy): every member runs under the shard's lock.
// Lookups take no lock: a hit only bumps the entry's own hit counter
// (Entry::touch, saturating, so a hot entry's line stops being written), and a
// strategy that needs the order of hits (kBuffersHits, LRU) gets them in
// batches from the shard through promote(). The strategies are:
// - LruStrategy (here): a list, reordered in batches of hits;
// - TwoQueueStrategy (two_queue.h): S3-FIFO, W-TinyLFU, and the adaptive
//   policy that switches between them.
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
  s.on_insert(e, hash);                              // a new entry is linked
  { S::kBuffersHits } -> std::convertible_to<bool>;  // wants promote() for hits, in order
  s.promote(e);                                      // e was hit (batched; e is linked)
  s.on_remove(e);                               // e leaves (explicit removal, expiry, eviction)
  { s.next_victim() } -> std::same_as<Entry*>;  // whom to evict next (nullptr if empty)
  { s.victim_of(t) } -> std::same_as<Entry*>;   // t's least valuable entry
  s.on_evict(e, hash);                          // e was chosen by next_victim and is leaving
  s.on_replace(e, e);  // a new value takes over an entry's place (an update)
};

// Intrusive doubly linked list through Node::prev()/next(), set_prev(),
// set_next(), set_links(prev, next) and clear_links(). Head = newest.
template <class Node>
class NodeList {
 public:
  void push_front(Node* e) noexcept {
    e->set_links(nullptr, head_);
    if (head_) head_->set_prev(e);
    head_ = e;
    if (!tail_) tail_ = e;
    ++size_;
  }
  void remove(Node* e) noexcept {
    Node* p = e->prev();
    Node* n = e->next();
    if (p) {
      p->set_next(n);
    } else {
      head_ = n;
    }
    if (n) {
      n->set_prev(p);
    } else {
      tail_ = p;
    }
    e->clear_links();
    --size_;
  }
  // Puts `now` where `old` is.
  void replace(Node* old, Node* now) noexcept {
    Node* p = old->prev();
    Node* n = old->next();
    now->set_links(p, n);
    if (p) {
      p->set_next(now);
    } else {
      head_ = now;
    }
    if (n) {
      n->set_prev(now);
    } else {
      tail_ = now;
    }
    old->clear_links();
  }
  // Moves every node of `other` to the front of this list, keeping their order.
  void splice_front(NodeList& other) noexcept {
    if (!other.head_) return;
    other.tail_->set_next(head_);
    if (head_) head_->set_prev(other.tail_);
    head_ = other.head_;
    if (!tail_) tail_ = other.tail_;
    size_ += other.size_;
    other.head_ = other.tail_ = nullptr;
    other.size_ = 0;
  }
  Node* tail() const noexcept { return tail_; }
  Node* head() const noexcept { return head_; }
  std::size_t size() const noexcept { return size_; }

 private:
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
  std::size_t size_ = 0;
};

using EntryList = NodeList<Entry>;

// Least recently used. Hits reach it in batches (the shard buffers them per
// thread and drains the buffers before every eviction), in order, so LRU is
// exact single-threaded and approximate under contention, where a full
// buffer whose shard is busy drops its hits.
class LruStrategy {
 public:
  explicit LruStrategy(std::uint64_t /*capacity*/, std::uint64_t /*seed*/) {}
  static constexpr bool kBuffersHits = true;
  void on_insert(Entry* e, std::uint64_t) noexcept { list_.push_front(e); }
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
    for (Entry* e = list_.tail(); e; e = e->prev()) {
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
      : capacity_(static_cast<std::uint16_t>(
            std::min<std::size_t>(capacity ? capacity : 1, kMaxCapacity))),
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

  std::size_t memory() const noexcept { return slots_.size() * sizeof(Slot); }

 private:
  struct Slot {
    std::uint16_t fp = 0;  // 0 = empty
    std::uint16_t seq = 0;
  };
  static constexpr std::size_t kWindow = 8;
  // Ages are 16-bit differences, so a shard's ghost remembers at most this many.
  static constexpr std::size_t kMaxCapacity = 30000;
  static std::uint16_t fingerprint(std::uint64_t h) {
    return static_cast<std::uint16_t>((h >> 48) | 1u);
  }
  std::size_t home(std::uint64_t h) const { return static_cast<std::size_t>(h) & mask_; }
  std::uint32_t age_of(const Slot& s) const { return static_cast<std::uint16_t>(now_ - s.seq); }
  bool live(const Slot& s) const { return s.fp != 0 && age_of(s) < capacity_; }

  std::uint16_t capacity_;
  std::vector<Slot> slots_;
  std::size_t mask_;
  std::uint16_t now_ = 0;  // insertion counter (wraps; ages are differences)
};

}  // namespace callcache::internal
