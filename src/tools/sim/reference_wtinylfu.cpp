// Textbook W-TinyLFU on dense key ids (see reference.h).
#include <algorithm>
#include <bit>
#include <cmath>

#include "tools/sim/reference.h"

namespace callcache::sim {
namespace {

// LRU lists threaded through per-key links. Head = most recent.
struct Links {
  std::vector<std::uint32_t> prev, next;
  explicit Links(std::uint32_t n) : prev(n, kNil), next(n, kNil) {}
};

struct List {
  std::uint32_t head = kNil, tail = kNil;
  std::uint64_t size = 0;
  void push_front(Links& l, std::uint32_t k) {
    l.prev[k] = kNil;
    l.next[k] = head;
    if (head != kNil) l.prev[head] = k;
    head = k;
    if (tail == kNil) tail = k;
    ++size;
  }
  void remove(Links& l, std::uint32_t k) {
    (l.prev[k] != kNil ? l.next[l.prev[k]] : head) = l.next[k];
    (l.next[k] != kNil ? l.prev[l.next[k]] : tail) = l.prev[k];
    l.prev[k] = l.next[k] = kNil;
    --size;
  }
};

// Count-min sketch: four 4-bit counters per key in one 64-byte block, all
// halved after 10 x capacity increments (as Caffeine's FrequencySketch).
class Sketch {
 public:
  explicit Sketch(std::uint64_t capacity)
      : table_(std::bit_ceil(std::max<std::uint64_t>(capacity, 8))),
        mask_(table_.size() - 1),
        sample_(10 * std::max<std::uint64_t>(capacity, 1)) {}

  void increment(std::uint32_t key) {
    const std::uint64_t h = hash(key);
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

  int frequency(std::uint32_t key) const {
    const std::uint64_t h = hash(key);
    int f = 15;
    for (int i = 0; i < 4; ++i)
      f = std::min(f, static_cast<int>((table_[word(h, i)] >> shift(h, i)) & 15));
    return f;
  }

 private:
  static std::uint64_t hash(std::uint32_t key) {
    std::uint64_t x = key + 0x9e3779b97f4a7c15ULL;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
  }
  std::size_t word(std::uint64_t h, int i) const {
    const std::uint64_t block = h & mask_ & ~std::uint64_t{7};
    return static_cast<std::size_t>(
        (block + static_cast<std::uint64_t>(i) * 2 + ((h >> (32 + i * 8)) & 1)) & mask_);
  }
  static int shift(std::uint64_t h, int i) {
    return static_cast<int>(((h >> (33 + i * 8)) & 15) * 4);
  }
  void reset() {
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

}  // namespace

std::uint64_t simulate_wtinylfu(const Trace& trace, std::uint64_t capacity,
                                const WTinyLfuParams& p) {
  enum : std::uint8_t { kOut, kWindow, kProbation, kProtected };
  const std::uint64_t window = std::min<std::uint64_t>(
      capacity,
      std::max<std::uint64_t>(
          1, static_cast<std::uint64_t>(std::llround(p.window * static_cast<double>(capacity)))));
  const std::uint64_t main_max = capacity - window;
  const auto protected_max =
      static_cast<std::uint64_t>(p.protected_share * static_cast<double>(main_max));
  Links links(trace.distinct);
  List win, prob, prot;
  std::vector<std::uint8_t> where(trace.distinct, kOut);
  Sketch sketch(capacity);
  std::uint64_t misses = 0;

  auto demote = [&] {
    while (prot.size > protected_max) {
      const std::uint32_t v = prot.tail;
      prot.remove(links, v);
      where[v] = kProbation;
      prob.push_front(links, v);
    }
  };
  for (std::uint32_t k : trace.requests) {
    sketch.increment(k);
    switch (where[k]) {
      case kWindow:
        win.remove(links, k);
        win.push_front(links, k);
        continue;
      case kProbation:
        prob.remove(links, k);
        where[k] = kProtected;
        prot.push_front(links, k);
        demote();
        continue;
      case kProtected:
        prot.remove(links, k);
        prot.push_front(links, k);
        continue;
      default:
        break;
    }
    ++misses;
    where[k] = kWindow;
    win.push_front(links, k);
    while (win.size > window) {
      const std::uint32_t c = win.tail;
      win.remove(links, c);
      if (prob.size + prot.size < main_max) {
        where[c] = kProbation;
        prob.push_front(links, c);
        continue;
      }
      List* victims = prob.size ? &prob : prot.size ? &prot : nullptr;
      if (!victims) {  // no main area (capacity too small for one)
        where[c] = kOut;
        continue;
      }
      const std::uint32_t v = victims->tail;
      if (sketch.frequency(c) > sketch.frequency(v)) {
        victims->remove(links, v);
        where[v] = kOut;
        where[c] = kProbation;
        prob.push_front(links, c);
      } else {
        where[c] = kOut;
      }
    }
  }
  return misses;
}

}  // namespace callcache::sim
