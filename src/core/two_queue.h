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
// holds in each mode the current policy's state in full and a cheaper form
// of the other's, so that a switch does not start from nothing (about 2
// bytes per entry cheaper than holding both in full, which is what lets it
// stay within the memory target; docs/sim.md "The default"):
// - S3-FIFO mode: the ghost, and a narrow sketch (the same counters, 2 bits
//   wide, saturating at 3: half the bytes) kept up to date (S3-FIFO's passes
//   add the hits they consume). Switching to W-TinyLFU widens it, every
//   count kept, and starts with all of main on probation.
// - W-TinyLFU mode: the sketch, and a ghost of half the capacity (the most
//   recent half of the keys the full one would remember: window leavers
//   turned away). Switching to S3-FIFO narrows the sketch (counts above 3
//   become 3), folds protected into main and starts a full-size ghost; the
//   half one is still consulted until the new one has seen a full ghost's
//   worth of keys, then dropped.
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
// counters per entry, rounded up to a power of two). With `narrow`, the
// same counters are 2 bits wide (saturating at 3): half the bytes, the same
// collisions, and every increment counts towards aging.
class FrequencySketch {
 public:
  explicit FrequencySketch(std::uint64_t capacity, bool narrow = false)
      : words_(std::bit_ceil(std::max<std::uint64_t>(capacity, 8))),
        mask_(words_ - 1),
        bits_(narrow ? 2 : 4),
        max_(narrow ? 3 : 15),
        table_(narrow ? words_ / 2 : words_),
        sample_(10 * std::max<std::uint64_t>(capacity, 1)) {}

  void increment(std::uint64_t h) noexcept {
    h = remix(h);
    bool added = bits_ == 2;
    for (int i = 0; i < 4; ++i) {
      const Slot s = slot(h, i);
      std::uint64_t& w = table_[s.word];
      if (((w >> s.shift) & max_) != max_) {
        w += std::uint64_t{1} << s.shift;
        added = true;
      }
    }
    if (added && ++size_ >= sample_) reset();
  }

  int frequency(std::uint64_t h) const noexcept {
    h = remix(h);
    int f = 15;
    for (int i = 0; i < 4; ++i) {
      const Slot s = slot(h, i);
      f = std::min(f, static_cast<int>((table_[s.word] >> s.shift) & max_));
    }
    return f;
  }

  // Takes over the counts of `from`, a sketch of the same capacity (wider
  // counts saturate here): every key's estimate stays what it was, up to
  // this sketch's maximum.
  void take_counts(const FrequencySketch& from) noexcept {
    for (std::uint64_t c = 0; c < words_ * 16; ++c) {
      const Slot to = locate(c), fr = from.locate(c);
      const std::uint64_t v = std::min((from.table_[fr.word] >> fr.shift) & from.max_, max_);
      table_[to.word] = (table_[to.word] & ~(max_ << to.shift)) | (v << to.shift);
    }
    size_ = from.size_;
  }

  std::size_t memory() const noexcept { return table_.size() * sizeof(std::uint64_t); }

 private:
  struct Slot {
    std::size_t word;
    int shift;
  };
  static std::uint64_t remix(std::uint64_t h) noexcept { return mix64(h, 0x9e3779b97f4a7c15ULL); }
  // Counter i of h's four, as an index into the 16-counter words of the
  // 4-bit layout (block of 8 words, one counter in each pair of them).
  std::uint64_t counter(std::uint64_t h, int i) const noexcept {
    const std::uint64_t block = h & mask_ & ~std::uint64_t{7};
    const std::uint64_t off = (h >> (32 + i * 8)) & 1;
    const std::uint64_t word = (block + static_cast<std::uint64_t>(i) * 2 + off) & mask_;
    return word * 16 + ((h >> (33 + i * 8)) & 15);
  }
  Slot locate(std::uint64_t c) const noexcept {
    const int per_word_log = bits_ == 2 ? 5 : 4;  // 32 or 16 counters a word
    return {static_cast<std::size_t>(c >> per_word_log),
            static_cast<int>((c & ((std::uint64_t{1} << per_word_log) - 1)) * bits_)};
  }
  Slot slot(std::uint64_t h, int i) const noexcept { return locate(counter(h, i)); }
  void reset() noexcept {
    const std::uint64_t low = bits_ == 2 ? 0x5555555555555555ULL : 0x1111111111111111ULL;
    const std::uint64_t keep = bits_ == 2 ? 0x5555555555555555ULL : 0x7777777777777777ULL;
    std::uint64_t odd = 0;
    for (std::uint64_t& w : table_) {
      odd += static_cast<std::uint64_t>(std::popcount(w & low));
      w = (w >> 1) & keep;
    }
    size_ = (size_ - (odd >> 2)) >> 1;
  }

  std::uint64_t words_;  // in the 4-bit layout
  std::uint64_t mask_;
  int bits_;
  std::uint64_t max_;
  std::vector<std::uint64_t> table_;
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
    // Adaptive: ignore `ghost` and `sketch`; hold what the current mode
    // needs (see above), rebuilt by set_mode().
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
    if (per_mode_ || o.sketch) {
      sketch_ = std::make_unique<FrequencySketch>(
          capacity_, /*narrow=*/per_mode_ && mode_ == QueueMode::kS3Fifo);
    }
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
        resize_sketch(/*narrow=*/true);
        old_ghost_ = std::move(ghost_);
        make_ghost();
        warmup_ = ghost_capacity();
      }
    } else if (per_mode_) {
      old_ghost_.reset();
      ghost_ = std::make_unique<GhostSet>(std::max<std::uint64_t>(1, ghost_capacity() / 2));
      resize_sketch(/*narrow=*/false);
    }
    mode_ = m;
  }

  void on_insert(Node* e, std::uint64_t hash) {
    if (sketch_) sketch_->increment(hash);
    e->set_freq(0);
    e->clear(Entry::kProtected);
    bool ghost_hit = ghost_ && ghost_->take(hash);
    if (!ghost_hit && old_ghost_) ghost_hit = old_ghost_->take(hash);
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
    if (ghost_ && !e->has(Entry::kMain)) {
      ghost_->add(hash);
      if (old_ghost_ && --warmup_ == 0) old_ghost_.reset();
    }
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
    return (ghost_ ? ghost_->memory() : 0) + (old_ghost_ ? old_ghost_->memory() : 0) +
           (sketch_ ? sketch_->memory() : 0);
  }

 private:
  static constexpr std::uint64_t kSmallFloor = 64;

  std::uint64_t ghost_capacity() const noexcept {
    return std::max<std::uint64_t>(1, capacity_ - small_target_);
  }
  void make_ghost() { ghost_ = std::make_unique<GhostSet>(ghost_capacity()); }
  void resize_sketch(bool narrow) {
    auto s = std::make_unique<FrequencySketch>(capacity_, narrow);
    s->take_counts(*sketch_);
    sketch_ = std::move(s);
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
          if (sketch_) fold(t);  // adaptive: keep the sketch current for W-TinyLFU
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
        if (sketch_) sketch_->increment(hasher_(t));
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
  const bool per_mode_;  // adaptive: ghost + narrow sketch in S3-FIFO mode, sketch in W-TinyLFU
  NodeList<Node> q0_, q1_, q2_;
  std::unique_ptr<GhostSet> ghost_;
  std::unique_ptr<GhostSet> old_ghost_;  // adaptive: W-TinyLFU mode's, after a switch
  std::uint64_t warmup_ = 0;             // keys the new ghost takes before old_ghost_ goes
  std::unique_ptr<FrequencySketch> sketch_;
};

}  // namespace callcache::internal
