// Internal: a test-and-test-and-set lock for a shard's writers.
//
// Lookups take no lock at all (reclaim.h); this lock serialises a shard's
// inserts, removals and sweeps, whose critical sections are short. A waiter
// spins briefly, then yields (the holder may have been preempted).
#pragma once

#include <atomic>
#include <thread>

namespace callcache::internal {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class SpinMutex {
 public:
  void lock() noexcept {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins < 64) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace callcache::internal
