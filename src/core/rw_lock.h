// Internal: a reader-writer lock whose readers touch only their own cache
// line, for the cache's hit path.
//
// std::shared_mutex keeps one reader count: every reader of a popular shard
// writes the same cache line, which then bounces between cores and makes
// reads stop scaling with threads. Here each thread is assigned one of
// kStripes cache-line-sized stripes; a reader increments its stripe's count
// and checks the writer flag; a writer raises the flag (new readers back off)
// and waits until every stripe's count is zero. Readers are cheap and scale;
// writers pay kStripes loads. Writer-preferring: a waiting writer is not
// starved by arriving readers. Each stripe also carries that thread group's
// hit and miss counters, on the line the reader already owns.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace callcache::internal {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class StripedRwLock {
 public:
  static constexpr int kStripes = 8;

  struct alignas(64) Stripe {
    std::atomic<std::uint32_t> readers{0};
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
  };

  // The calling thread's stripe (fixed per thread).
  static int my_stripe() noexcept {
    static std::atomic<int> next{0};
    thread_local const int stripe = next.fetch_add(1, std::memory_order_relaxed) & (kStripes - 1);
    return stripe;
  }

  void lock_shared(int s) noexcept {
    Stripe& st = stripes_[s];
    for (;;) {
      st.readers.fetch_add(1, std::memory_order_seq_cst);
      if (!writer_.load(std::memory_order_seq_cst)) return;
      st.readers.fetch_sub(1, std::memory_order_release);
      wait_while_writer();
    }
  }
  void unlock_shared(int s) noexcept { stripes_[s].readers.fetch_sub(1, std::memory_order_release); }

  void lock() noexcept {
    for (int spins = 0; writer_.exchange(true, std::memory_order_seq_cst); ++spins) backoff(spins);
    for (Stripe& st : stripes_) {
      for (int spins = 0; st.readers.load(std::memory_order_seq_cst) != 0; ++spins) backoff(spins);
    }
  }
  bool try_lock() noexcept {
    if (writer_.exchange(true, std::memory_order_seq_cst)) return false;
    for (Stripe& st : stripes_) {
      if (st.readers.load(std::memory_order_seq_cst) != 0) {
        writer_.store(false, std::memory_order_release);
        return false;
      }
    }
    return true;
  }
  void unlock() noexcept { writer_.store(false, std::memory_order_release); }

  Stripe& stripe(int s) noexcept { return stripes_[s]; }
  const Stripe& stripe(int s) const noexcept { return stripes_[s]; }

 private:
  static void backoff(int spins) noexcept {
    if (spins < 64) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  void wait_while_writer() const noexcept {
    for (int spins = 0; writer_.load(std::memory_order_acquire); ++spins) backoff(spins);
  }

  alignas(64) std::atomic<bool> writer_{false};
  Stripe stripes_[kStripes];
};

// RAII for the shared side.
class SharedGuard {
 public:
  explicit SharedGuard(StripedRwLock& mu) noexcept : mu_(mu), stripe_(StripedRwLock::my_stripe()) {
    mu_.lock_shared(stripe_);
  }
  ~SharedGuard() { mu_.unlock_shared(stripe_); }
  SharedGuard(const SharedGuard&) = delete;
  SharedGuard& operator=(const SharedGuard&) = delete;
  int stripe() const noexcept { return stripe_; }

 private:
  StripedRwLock& mu_;
  const int stripe_;
};

}  // namespace callcache::internal
