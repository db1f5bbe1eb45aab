#include "adaptive.h"

#include <bit>
#include <cmath>
#include <mutex>

namespace callcache::internal {

// A simulated entry: just the links, hit counter and flags TwoQueue needs.
struct AdaptiveController::Node {
  Node* prev_ = nullptr;
  Node* next_ = nullptr;
  std::uint64_t hash = 0;
  std::uint8_t freq_ = 0;
  std::uint8_t flags_ = 0;

  Node* prev() const noexcept { return prev_; }
  Node* next() const noexcept { return next_; }
  void set_prev(Node* n) noexcept { prev_ = n; }
  void set_next(Node* n) noexcept { next_ = n; }
  void set_links(Node* p, Node* n) noexcept {
    prev_ = p;
    next_ = n;
  }
  void clear_links() noexcept { prev_ = next_ = nullptr; }
  std::uint8_t freq() const noexcept { return freq_; }
  void set_freq(std::uint8_t f) noexcept { freq_ = f; }
  void touch() noexcept {
    if (freq_ < 3) ++freq_;
  }
  bool has(Entry::Flag f) const noexcept { return flags_ & f; }
  void set(Entry::Flag f) noexcept { flags_ = static_cast<std::uint8_t>(flags_ | f); }
  void clear(Entry::Flag f) noexcept { flags_ = static_cast<std::uint8_t>(flags_ & ~f); }
};

std::uint64_t AdaptiveController::NodeHasher::operator()(const Node* n) const noexcept {
  return n->hash;
}

// One policy over key hashes: nodes from a fixed pool, found through an
// open-addressing index (linear probing, backward-shift deletion).
class AdaptiveController::Simulation {
 public:
  Simulation(std::uint64_t capacity, QueueMode mode)
      : queues_({capacity, mode, /*ghost=*/mode == QueueMode::kS3Fifo,
                 /*sketch=*/mode == QueueMode::kWTinyLfu},
                NodeHasher{}),
        capacity_(capacity),
        pool_(capacity + 1),
        index_(std::bit_ceil(2 * (capacity + 1))),
        mask_(index_.size() - 1) {
    for (Node& n : pool_) {
      n.set_next(free_);
      free_ = &n;
    }
  }

  // Looks `h` up; on a miss inserts it and evicts down to capacity. Returns
  // whether it was a hit.
  bool access(std::uint64_t h) {
    std::size_t i = h & mask_;
    for (; index_[i]; i = (i + 1) & mask_) {
      if (index_[i]->hash == h) {
        index_[i]->touch();
        return true;
      }
    }
    Node* n = free_;
    free_ = n->next();
    *n = Node{};
    n->hash = h;
    index_[i] = n;
    queues_.on_insert(n, h);
    while (queues_.size() > capacity_) {
      Node* v = queues_.next_victim();
      queues_.on_evict(v, v->hash);
      queues_.on_remove(v);
      unindex(v);
      v->set_next(free_);
      free_ = v;
    }
    return false;
  }

  std::size_t memory() const noexcept {
    return pool_.size() * sizeof(Node) + index_.size() * sizeof(Node*) + queues_.memory();
  }

 private:
  void unindex(const Node* n) {
    std::size_t i = n->hash & mask_;
    while (index_[i] != n) i = (i + 1) & mask_;
    // Backward shift: pull later members of the run into the hole.
    for (std::size_t j = (i + 1) & mask_; index_[j]; j = (j + 1) & mask_) {
      const std::size_t home = index_[j]->hash & mask_;
      // Move j into i if its home is not in (i, j] (cyclically).
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        index_[i] = index_[j];
        i = j;
      }
    }
    index_[i] = nullptr;
  }

  TwoQueue<Node, NodeHasher> queues_;
  const std::uint64_t capacity_;
  std::vector<Node> pool_;
  Node* free_ = nullptr;
  std::vector<Node*> index_;
  const std::size_t mask_;
};

namespace {

double sample_rate(std::uint64_t capacity) {
  return std::min(1.0, static_cast<double>(AdaptiveController::kSampleTarget) /
                           static_cast<double>(std::max<std::uint64_t>(capacity, 1)));
}

}  // namespace

AdaptiveController::AdaptiveController(std::uint64_t capacity)
    : threshold_(sample_rate(capacity) >= 1.0
                     ? ~std::uint64_t{0}
                     : static_cast<std::uint64_t>(sample_rate(capacity) * 0x1p64)),
      sim_capacity_(std::max<std::uint64_t>(
          1, static_cast<std::uint64_t>(
                 std::llround(static_cast<double>(capacity) * sample_rate(capacity))))),
      lanes_(std::make_unique<Lane[]>(kLanes)),
      s3fifo_(std::make_unique<Simulation>(sim_capacity_, QueueMode::kS3Fifo)),
      wtinylfu_(std::make_unique<Simulation>(sim_capacity_, QueueMode::kWTinyLfu)),
      decay_(1.0 - 1.0 / std::max(64.0, kWindow * static_cast<double>(sim_capacity_))) {}

AdaptiveController::~AdaptiveController() = default;

std::size_t AdaptiveController::memory() const noexcept {
  return sizeof(*this) + kLanes * sizeof(Lane) + s3fifo_->memory() + wtinylfu_->memory();
}

void AdaptiveController::record(std::uint64_t h) noexcept {
  const std::uint32_t lane = my_reader_record().index;
  if (lane >= kLanes) return;
  Lane& l = lanes_[lane];  // this thread's alone
  std::uint32_t n = l.n.load(std::memory_order_relaxed);
  l.hashes[n].store(h, std::memory_order_relaxed);
  if (++n < kBatch) {
    l.n.store(n, std::memory_order_relaxed);
    return;
  }
  l.n.store(0, std::memory_order_relaxed);
  if (!mu_.try_lock()) return;  // busy: this batch is dropped
  std::uint64_t batch[kBatch];
  for (std::size_t i = 0; i < kBatch; ++i) batch[i] = l.hashes[i].load(std::memory_order_relaxed);
  process(batch, kBatch);
  mu_.unlock();
}

void AdaptiveController::simulate(std::uint64_t h) {
  std::lock_guard lock(mu_);
  process(&h, 1);
}

void AdaptiveController::force_mode(QueueMode m) {
  std::lock_guard lock(mu_);
  if (m == mode_.load(std::memory_order_relaxed)) return;
  switch_mode();
}

void AdaptiveController::switch_mode() {
  const QueueMode m = mode_.load(std::memory_order_relaxed) == QueueMode::kS3Fifo
                          ? QueueMode::kWTinyLfu
                          : QueueMode::kS3Fifo;
  mode_.store(m, std::memory_order_relaxed);
  switches_.fetch_add(1, std::memory_order_relaxed);
  misses_ -= diff_;  // the new mode's misses
  diff_ = -diff_;
}

void AdaptiveController::process(const std::uint64_t* hs, std::size_t count) {
  QueueMode mode = mode_.load(std::memory_order_relaxed);
  for (std::size_t k = 0; k < count; ++k) {
    // Sampled hashes share their high bits (they are under the threshold):
    // spread them again for the simulations' own tables.
    const std::uint64_t h = mix64(hs[k], 0x8ebc6af09c88c6e3ULL);
    const int s3 = !s3fifo_->access(h);
    const int wt = !wtinylfu_->access(h);
    const int cur = mode == QueueMode::kS3Fifo ? s3 : wt;
    const int d = cur - (mode == QueueMode::kS3Fifo ? wt : s3);
    diff_ = diff_ * decay_ + d;
    disagree_ = disagree_ * decay_ + (d != 0);
    misses_ = misses_ * decay_ + cur;
    if (++since_check_ < 64) continue;
    since_check_ = 0;
    if (diff_ > kZ * std::sqrt(disagree_) + kMargin * misses_) {
      switch_mode();
      mode = mode_.load(std::memory_order_relaxed);
    }
  }
  sampled_.fetch_add(count, std::memory_order_relaxed);
}

}  // namespace callcache::internal
