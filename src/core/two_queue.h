// Internal: S3-FIFO and W-TinyLFU, one structure with two admission modes.
//
// Both keep a small queue for newcomers (q0) in front of a main area (q1, and
// for W-TinyLFU a protected segment q2), and both work from a hit counter in
// each node that a lookup bumps without a lock (Entry::touch, saturating at
// 3); the queues change only when the shard evicts, under its lock.
//
// S3-FIFO (Yang et al., SOSP'23). New entries enter the small FIFO q0; on
// leaving it an entry that was hit moves to main, one that was not is evicted
// and its key remembered in the ghost. A key found in the ghost is admitted
// straight to main. Main is a FIFO with reinsertion (CLOCK-like, up to 3
// second chances). The paper sizes q0 at 10% of the capacity; on small caches
// that leaves only a handful of entries to prove themselves in, and S3-FIFO
// loses badly to LRU on traces with short reuse distances (cache2k orm-busy
// at 76 entries: 19% more misses). q0 therefore gets a floor of 64 entries
// (at most 60% of the capacity): docs/sim.md.
//
// W-TinyLFU (Einziger, Friedman, Manes, ACM ToS 2017; the policy of the
// Caffeine cache). New entries enter a window q0 of 1% of the capacity; an
// entry leaving the window is a candidate for main, admitted only if a
// count-min sketch of recent key frequencies (4-bit counters, halved every
// 10 x capacity increments) rates it above main's victim, which it then
// replaces. Main is segmented: probation q1 and protected q2 (80% of main);
// a hit in probation promotes to protected, whose overflow is demoted back to
// probation. The window and both segments are LRU in the textbook; here they
// are CLOCK approximations of LRU, so that a hit never takes a lock: a node
// at a queue's tail that was hit since it was last passed over gets a second
// chance at the head (a node entering the window counts as hit once, as in
// CLOCK), and its hits are added to the sketch then (the sketch counts every
// insert at once). docs/sim.md compares this with the textbook policy.
//
// The adaptive policy switches mode on the fly (adaptive.h decides) and
// holds only what the current mode needs: the ghost in S3-FIFO mode, the
// sketch in W-TinyLFU mode. Switching to W-TinyLFU drops the ghost, builds a
// sketch and seeds it from the resident entries (each counted as inserted
// once, those in main as hit once more, which is what S3-FIFO required of
// them there), and starts with all of main on probation. Switching to
// S3-FIFO drops the sketch, starts an empty ghost and folds protected into
// main. A switch briefly holds both while it builds the new one.
//
// Node: Entry or a simulation node with the same members (the link accessors NodeList uses,
// freq/set_freq, has/set/clear of the Entry::Flag values used here, and
// copy_flags for on_replace).
// Hasher: std::uint64_t(const Node*), the node's key hash.
// Not synchronised: the owner's lock serialises every call.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "entry.h"
#include "eviction.h"
#include "hash.h"

namespace callcache::internal {

enum class QueueMode : std::uint8_t { kS3Fifo, kWTinyLfu };

// Count-min sketch with four 4-bit counters per key, all in one 64-byte
// block of the table, and aging: after 10 x capacity increments every
// counter is halved. About 8 bytes per cache entry (one 64-bit word of 16
// counters per entry, rounded up to a power of two).
class FrequencySketch {
 public:
  explicit FrequencySketch(std::uint64_t capacity)
      : table_(std::bit_ceil(std::max<std::uint64_t>(capacity, 8))),
        mask_(table_.size() - 1),
        sample_(10 * std::max<std::uint64_t>(capacity, 1)) {}

  void increment(std::uint64_t h) noexcept {
    h = remix(h);
    bool added = false;
    for (int i = 0; i < 4; ++i) {
      std::uint64_t& w = table_[word(h, i)];
      const int sh = shift(h, i);
      if (((w >> sh) & 15) != 15) {
        w += std::uint64_t{1} << sh;
        added = true;
      }
    }
    if (added && ++size_ >= sample_) reset();
  }

  int frequency(std::uint64_t h) const noexcept {
    h = remix(h);
    int f = 15;
    for (int i = 0; i < 4; ++i)
      f = std::min(f, static_cast<int>((table_[word(h, i)] >> shift(h, i)) & 15));
    return f;
  }

  std::size_t memory() const noexcept { return table_.size() * sizeof(std::uint64_t); }

 private:
  static std::uint64_t remix(std::uint64_t h) noexcept { return mix64(h, 0x9e3779b97f4a7c15ULL); }
  std::size_t word(std::uint64_t h, int i) const noexcept {
    const std::uint64_t block = h & mask_ & ~std::uint64_t{7};
    const std::uint64_t off = (h >> (32 + i * 8)) & 1;
    return static_cast<std::size_t>((block + static_cast<std::uint64_t>(i) * 2 + off) & mask_);
  }
  static int shift(std::uint64_t h, int i) noexcept {
    return static_cast<int>(((h >> (33 + i * 8)) & 15) * 4);
  }
  void reset() noexcept {
    std::uint64_t odd = 0;
    for (std::uint64_t& w : table_) {
      odd += static_cast<std::uint64_t>(std::popcount(w & 0x1111111111111111ULL));
      w = (w >> 1) & 0x7777777777777777ULL;
    }
    size_ = (size_ - (odd >> 2)) >> 1;
  }

  std::vector<std::uint64_t> table_;
  std::uint64_t mask_;
  std::uint64_t sample_;
  std::uint64_t size_ = 0;
};

template <class Node, class Hasher>
class TwoQueue {
 public:
  struct Options {
    std::uint64_t capacity = 1;
    QueueMode mode = QueueMode::kS3Fifo;
    bool ghost = true;    // S3-FIFO's memory of keys evicted from q0
    bool sketch = false;  // W-TinyLFU's frequencies
    // Adaptive: ignore `ghost` and `sketch`; hold whichever the current
    // mode needs, rebuilt by set_mode().
    bool per_mode = false;
  };

  TwoQueue(const Options& o, Hasher hasher)
      : hasher_(hasher),
        mode_(o.mode),
        small_target_(std::max<std::uint64_t>(
            {1, o.capacity / 10, std::min<std::uint64_t>(kSmallFloor, o.capacity * 6 / 10)})),
        window_(std::max<std::uint64_t>(
            1, static_cast<std::uint64_t>(std::llround(static_cast<double>(o.capacity) * 0.01)))),
        main_capacity_(o.capacity - std::min(o.capacity, window_)),
        protected_max_(static_cast<std::uint64_t>(static_cast<double>(main_capacity_) * 0.8)),
        capacity_(o.capacity),
        per_mode_(o.per_mode) {
    if (per_mode_ ? mode_ == QueueMode::kS3Fifo : o.ghost) make_ghost();
    if (per_mode_ ? mode_ == QueueMode::kWTinyLfu : o.sketch) make_sketch();
  }

  QueueMode mode() const noexcept { return mode_; }
  void set_mode(QueueMode m) {
    if (m == mode_) return;
    if (m == QueueMode::kS3Fifo) {
      while (Node* w = q2_.tail()) {
        q2_.remove(w);
        w->clear(Entry::kProtected);
        q1_.push_front(w);
      }
      if (per_mode_) {
        sketch_.reset();
        make_ghost();
      }
    } else if (per_mode_) {
      ghost_.reset();
      make_sketch();
      seed_sketch();
    }
    mode_ = m;
  }

  void on_insert(Node* e, std::uint64_t hash) {
    if (sketch_) sketch_->increment(hash);
    e->set_freq(0);
    e->clear(Entry::kProtected);
    const bool ghost_hit = ghost_ && ghost_->take(hash);
    if (mode_ == QueueMode::kS3Fifo && ghost_hit) {
      e->set(Entry::kMain);
      e->clear(Entry::kFresh);
      q1_.push_front(e);
    } else {
      e->clear(Entry::kMain);
      e->set(Entry::kFresh);
      q0_.push_front(e);
    }
  }

  void on_remove(Node* e) noexcept { list_of(e).remove(e); }

  // An update keeps the key's place and counts as a hit.
  void on_replace(Node* old, Node* now) noexcept {
    now->copy_flags(*old, Entry::kMain | Entry::kProtected | Entry::kFresh);
    now->set_freq(static_cast<std::uint8_t>(std::min(old->freq() + 1, 3)));  // old's, touched
    list_of(old).replace(old, now);
  }

  // Whom to evict next (left in its queue: the owner calls on_evict, then
  // on_remove). May move other nodes between queues on the way.
  Node* next_victim() {
    const std::uint64_t limit = 4 * (size() + 1);  // bounds second chances under concurrent hits
    return mode_ == QueueMode::kS3Fifo ? victim_s3fifo(limit) : victim_wtinylfu(limit);
  }

  void on_evict(Node* e, std::uint64_t hash) {
    if (ghost_ && !e->has(Entry::kMain)) ghost_->add(hash);
  }

  // The least valuable node satisfying `pred` (small queue or window first).
  template <class Pred>
  Node* victim_if(Pred pred) const {
    for (const NodeList<Node>* l : {&q0_, &q1_, &q2_}) {
      for (Node* e = l->tail(); e; e = e->prev()) {
        if (pred(e)) return e;
      }
    }
    return nullptr;
  }

  std::uint64_t size() const noexcept { return q0_.size() + q1_.size() + q2_.size(); }
  // Bytes held by the ghost and the sketch (whichever exist now).
  std::size_t memory() const noexcept {
    return (ghost_ ? ghost_->memory() : 0) + (sketch_ ? sketch_->memory() : 0);
  }

 private:
  static constexpr std::uint64_t kSmallFloor = 64;

  void make_ghost() {
    ghost_ = std::make_unique<GhostSet>(std::max<std::uint64_t>(1, capacity_ - small_target_));
  }
  void make_sketch() { sketch_ = std::make_unique<FrequencySketch>(capacity_); }

  // A new sketch's view of the resident entries, as if it had been kept
  // through S3-FIFO: every entry was inserted once, and one in main was hit
  // in q0 or came back from the ghost. Hits not yet consumed stay in each
  // entry's counter for fold() to add later.
  void seed_sketch() {
    for (const NodeList<Node>* l : {&q0_, &q1_, &q2_}) {
      const int times = l == &q0_ ? 1 : 2;
      for (Node* e = l->tail(); e; e = e->prev()) {
        for (int i = 0; i < times; ++i) sketch_->increment(hasher_(e));
      }
    }
  }

  NodeList<Node>& list_of(const Node* e) noexcept {
    if (!e->has(Entry::kMain)) return q0_;
    return e->has(Entry::kProtected) ? q2_ : q1_;
  }

  Node* victim_s3fifo(std::uint64_t limit) {
    for (std::uint64_t round = 0;; ++round) {
      const bool chances = round < limit;
      if (q0_.size() > small_target_ || q1_.size() + q2_.size() == 0) {
        Node* t = q0_.tail();
        if (!t) return nullptr;
        if (chances && t->freq() >= kPromoteFreq) {
          q0_.remove(t);
          t->set_freq(0);
          t->clear(Entry::kFresh);
          t->set(Entry::kMain);
          q1_.push_front(t);
          continue;
        }
        return t;
      }
      NodeList<Node>& m = q2_.size() ? q2_ : q1_;
      Node* t = m.tail();
      if (chances && t->freq() > 0) {
        m.remove(t);
        t->set_freq(static_cast<std::uint8_t>(t->freq() - 1));
        t->clear(Entry::kProtected);
        q1_.push_front(t);
        continue;
      }
      return t;
    }
  }

  void fold(Node* e) {
    for (int i = e->freq(); i > 0; --i) sketch_->increment(hasher_(e));
    e->set_freq(0);
  }

  Node* victim_wtinylfu(std::uint64_t limit) {
    for (std::uint64_t round = 0;; ++round) {
      const bool chances = round < limit;
      if (q0_.size() > window_ || q1_.size() + q2_.size() == 0) {
        Node* t = q0_.tail();
        if (!t) return nullptr;
        if (chances && (t->freq() > 0 || t->has(Entry::kFresh))) {
          t->clear(Entry::kFresh);
          fold(t);
          q0_.remove(t);
          q0_.push_front(t);
          continue;
        }
        if (q1_.size() + q2_.size() < main_capacity_) {
          q0_.remove(t);
          t->set(Entry::kMain);
          q1_.push_front(t);
          continue;
        }
        Node* v = main_victim(limit);
        if (!v) return t;
        if (sketch_->frequency(hasher_(t)) > sketch_->frequency(hasher_(v))) {
          q0_.remove(t);
          t->set(Entry::kMain);
          q1_.push_front(t);
          return v;
        }
        return t;
      }
      return main_victim(limit);
    }
  }

  Node* main_victim(std::uint64_t limit) {
    for (std::uint64_t round = 0;; ++round) {
      const bool chances = round < limit;
      if (q1_.size() == 0) {
        Node* w = q2_.tail();
        if (!w) return nullptr;
        if (chances && w->freq() > 0) {
          fold(w);
          q2_.remove(w);
          q2_.push_front(w);
          continue;
        }
        return w;
      }
      Node* v = q1_.tail();
      if (chances && v->freq() > 0) {
        fold(v);
        q1_.remove(v);
        v->set(Entry::kProtected);
        q2_.push_front(v);
        demote(limit);
        continue;
      }
      return v;
    }
  }

  // Keeps protected within its share, demoting its least recent to probation.
  void demote(std::uint64_t limit) {
    for (std::uint64_t round = 0; q2_.size() > protected_max_; ++round) {
      Node* w = q2_.tail();
      q2_.remove(w);
      if (round < limit && w->freq() > 0) {
        fold(w);
        q2_.push_front(w);
        continue;
      }
      w->clear(Entry::kProtected);
      q1_.push_front(w);
    }
  }

  // Hits in q0 needed to move to main (S3-FIFO).
  static constexpr std::uint8_t kPromoteFreq = 1;

  Hasher hasher_;
  QueueMode mode_;
  const std::uint64_t small_target_;   // S3-FIFO's q0
  const std::uint64_t window_;         // W-TinyLFU's q0
  const std::uint64_t main_capacity_;  // W-TinyLFU: q1 + q2
  const std::uint64_t protected_max_;  // W-TinyLFU: q2
  const std::uint64_t capacity_;
  const bool per_mode_;  // adaptive: ghost only in S3-FIFO mode, sketch only in W-TinyLFU mode
  NodeList<Node> q0_, q1_, q2_;
  std::unique_ptr<GhostSet> ghost_;
  std::unique_ptr<FrequencySketch> sketch_;
};

}  // namespace callcache::internal
