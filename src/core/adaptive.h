// Internal: the adaptive eviction policy's decision — S3-FIFO or W-TinyLFU
// for one namespace, chosen by simulating both.
//
// No static policy is best everywhere: W-TinyLFU's frequency filter wins on
// skewed, scan- and loop-heavy traffic and loses badly where recency matters
// (cache2k orm-busy: 30-50% more misses than S3-FIFO at small sizes);
// S3-FIFO is the reverse. The controller runs a metadata-only simulation of
// each (two TwoQueue instances over key hashes) on a spatial sample of the
// namespace's lookups (keys whose hash falls under a threshold, as in
// Waldspurger et al.'s SHARDS: at most kSampleTarget simulated entries each,
// every key when the namespace is smaller), and tells the namespace's shards
// which mode to run (they switch in place, two_queue.h).
//
// The decision is a test on the difference in simulated misses: exponentially
// weighted sums (over about kWindow x the simulated capacity sampled
// lookups) of d = misses(current) - misses(other), |d| and misses(current);
// switch when sum(d) > kZ * sqrt(sum |d|) + kMargin * sum(misses), i.e. when
// the other policy has missed less by more than noise and by more than a
// small margin. On a switch the evidence is flipped to the new mode's
// view, so switching back needs as much evidence again. docs/sim.md has the
// tuning and the results.
//
// Lookups record sampled hashes without a lock: each thread appends to its
// own lane (its reader record's index, reclaim.h) and, every kBatch samples,
// runs both simulations under the controller's lock — or drops the batch if
// another thread holds it (dropping whole batches keeps the sample unbiased).
// Threads past the lanes (more than kLanes alive at once) do not sample.
//
// Thread-safety: on_lookup() and mode() from any thread, lock-free;
// everything else under mu_.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "hash.h"
#include "reclaim.h"
#include "spin_lock.h"
#include "two_queue.h"

namespace callcache::internal {

class AdaptiveController {
 public:
  static constexpr std::uint64_t kSampleTarget = 8192;
  static constexpr double kWindow = 24;
  static constexpr double kZ = 2.0;
  static constexpr double kMargin = 0.005;
  static constexpr std::size_t kLanes = 32;
  // Samples per batch (a lane is then 512 bytes). Each batch takes the
  // lock and moves the simulations' cache lines to the processing thread's
  // core, so larger batches do that less often: 63 gave about a tenth more
  // two-thread reads than 15 (engine_bench --paired), with the same miss
  // ratios at every point in docs/sim.md.
  static constexpr std::size_t kBatch = 63;

  // `capacity`: the namespace's max_entries.
  explicit AdaptiveController(std::uint64_t capacity);
  ~AdaptiveController();
  AdaptiveController(const AdaptiveController&) = delete;
  AdaptiveController& operator=(const AdaptiveController&) = delete;

  QueueMode mode() const noexcept { return mode_.load(std::memory_order_relaxed); }

  // Every lookup of the namespace, hit or miss, with the key's hash.
  void on_lookup(std::uint64_t hash) noexcept {
    const std::uint64_t h = mix64(hash, 0xd6e8feb86659fd93ULL);
    if (h > threshold_) return;
    record(h);
  }

  // For tests and stats.
  std::uint64_t switches() const noexcept { return switches_.load(std::memory_order_relaxed); }
  std::uint64_t sampled() const noexcept { return sampled_.load(std::memory_order_relaxed); }
  std::uint64_t simulated_capacity() const noexcept { return sim_capacity_; }
  std::size_t memory() const noexcept;
  // Feeds the simulations directly (tests): as if `h` had been looked up.
  void simulate(std::uint64_t h);
  // Switches to `m` as if the simulations had asked for it (tests and
  // benchmarks); the shards follow on their next insert.
  void force_mode(QueueMode m);

 private:
  struct Node;
  struct NodeHasher {
    std::uint64_t operator()(const Node* n) const noexcept;
  };
  class Simulation;

  void record(std::uint64_t h) noexcept;
  void process(const std::uint64_t* hs, std::size_t n);  // REQUIRES: mu_ held
  // To the other mode, flipping the evidence to its view. REQUIRES: mu_ held
  void switch_mode();

  struct alignas(64) Lane {
    std::atomic<std::uint32_t> n{0};
    std::array<std::atomic<std::uint64_t>, kBatch> hashes{};
  };

  const std::uint64_t threshold_;     // sample keys whose remixed hash is <= this
  const std::uint64_t sim_capacity_;  // entries per simulation
  std::atomic<QueueMode> mode_{QueueMode::kS3Fifo};
  std::atomic<std::uint64_t> switches_{0};
  std::atomic<std::uint64_t> sampled_{0};
  std::unique_ptr<Lane[]> lanes_;

  SpinMutex mu_;  // guards everything below
  std::unique_ptr<Simulation> s3fifo_, wtinylfu_;
  const double decay_;
  double diff_ = 0, disagree_ = 0, misses_ = 0;  // weighted sums (see above)
  std::uint64_t since_check_ = 0;
};

}  // namespace callcache::internal
