// Internal: deferred reclamation for the lock-free read path (a form of
// epoch-based reclamation / RCU).
//
// Readers of a shard's table hold no lock: a lookup runs inside a
// ReadSection, and memory a lookup may be reading (an entry the table pointed
// to, a table array replaced by a resize) is freed only after every read
// section that was running when it was unlinked has ended — a grace period.
//
// Readers: every thread owns a ReaderRecord (from a process-wide registry,
// recycled when the thread exits). A read section makes the record's
// sequence odd on entry and even on exit: two plain stores to a cache line
// only this thread writes. The store on entry must be ordered before the
// section's loads; instead of a fence on every read, the writer side issues
// membarrier(2) (MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a full barrier
// on every CPU running a thread of the process, before it inspects the
// records. Where membarrier is unavailable (and under ThreadSanitizer, which
// does not model it) readers use a sequentially consistent store instead.
//
// Writers (holding a shard's lock) unlink first, then retire; a retired
// object is freed once a grace period that started after its retirement has
// completed. Grace periods are process-wide and shared: request() returns the
// number of one that starts after the call, completed(n) says whether it is
// over (and advances the state if it can, never blocking), synchronize()
// waits. A grace period is a snapshot of the records whose sequence was odd;
// it completes when each of them has changed. Snapshots start at most once
// per kMinInterval so that heavy write loads share one membarrier.
//
// Pins. A lookup may pin what it found without writing the object at all:
// it stores the pointer in one of its record's kPins pin slots (a line only
// its thread writes) before its read section ends, and the pin is released
// by storing null into that slot, from any thread. A retired object marked
// pinnable is freed only once no slot holds it: the grace period makes every
// pin taken before the unlink visible, and nothing can pin it after. A
// pinnable object still pinned when its owner's list is destroyed becomes an
// orphan, freed when its last pin is released (process-wide list).
//
// Thread-safety: everything here may be called from any thread. Read
// sections nest. Records are never freed (a registry of at most as many
// records as threads ever alive at once), so a pin slot's address stays
// valid for as long as anything holds it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

namespace callcache::internal {

struct alignas(64) ReaderRecord {
  static constexpr int kPins = 4;
  std::atomic<std::uint64_t> seq{0};  // odd while the owner is inside a read section
  std::uint32_t depth = 0;            // nesting depth; owner only
  std::uint32_t index = 0;            // position in the registry (fixed)
  std::atomic<bool> in_use{false};
  ReaderRecord* next = nullptr;  // registry chain; set before the record is published
  // Pin slots: set by the owner inside a read section, cleared by whoever
  // releases the pin. On the same cache line as `seq`.
  std::atomic<void*> pins[kPins] = {};
};
static_assert(sizeof(ReaderRecord) == 64, "a lookup writes one line of its record");

// Pins `p` in a free slot of `r` (the caller's own record, inside a read
// section). Returns the slot, or nullptr if all are taken.
inline std::atomic<void*>* try_pin(ReaderRecord& r, void* p) noexcept {
  for (std::atomic<void*>& slot : r.pins) {
    if (!slot.load(std::memory_order_relaxed)) {
      slot.store(p, std::memory_order_relaxed);
      return &slot;
    }
  }
  return nullptr;
}
// Releases a pin (any thread). Every access through the pin must happen
// before this call.
void release_pin(std::atomic<void*>* slot) noexcept;

ReaderRecord& acquire_reader_record() noexcept;
// Whether pinned objects whose owner went away wait to be freed (reclaim.cpp).
extern std::atomic<bool> g_have_orphans;
bool readers_fence_slow() noexcept;
// 0 = undecided, 1 = writers use membarrier, 2 = readers fence (reclaim.cpp).
extern std::atomic<int> g_reclaim_barrier_mode;
// Initial-exec TLS: one fs-relative load, no __tls_get_addr call per read.
extern constinit thread_local ReaderRecord* tl_reader_record
    __attribute__((tls_model("initial-exec")));

// The calling thread's record (acquired on first use, released when the
// thread exits).
inline ReaderRecord& my_reader_record() noexcept {
  if (ReaderRecord* r = tl_reader_record; __builtin_expect(r != nullptr, 1)) return *r;
  return acquire_reader_record();
}

// Whether readers must fence (membarrier unavailable); fixed at first use.
inline bool readers_fence() noexcept {
  const int m = g_reclaim_barrier_mode.load(std::memory_order_relaxed);
  return m == 2 || (m == 0 && readers_fence_slow());
}

class ReadSection {
 public:
  // Always inlined: a lookup is a few hundred instructions, and a call here
  // measurably adds to it once the caller grows past the inliner's budget.
  [[gnu::always_inline]] ReadSection() noexcept : r_(my_reader_record()) {
    if (r_.depth++ == 0) {
      const std::uint64_t s = r_.seq.load(std::memory_order_relaxed) + 1;
      if (readers_fence()) {
        r_.seq.store(s, std::memory_order_seq_cst);
      } else {
        r_.seq.store(s, std::memory_order_relaxed);
        std::atomic_signal_fence(std::memory_order_seq_cst);
      }
    }
  }
  [[gnu::always_inline]] ~ReadSection() {
    if (--r_.depth == 0)
      r_.seq.store(r_.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  ReadSection(const ReadSection&) = delete;
  ReadSection& operator=(const ReadSection&) = delete;
  ReaderRecord& record() const noexcept { return r_; }

 private:
  ReaderRecord& r_;
};

class GracePeriods {
 public:
  static GracePeriods& global() noexcept;

  // The number of a grace period starting after this call. `urgent` starts
  // it now even if another started less than kMinInterval ago.
  std::uint64_t request(bool urgent = false) noexcept;
  // Whether grace period `n` has completed. Never blocks.
  bool completed(std::uint64_t n) noexcept;
  // Whether grace period `n` is known to have completed: one load, without
  // advancing the state as completed() does.
  bool done(std::uint64_t n) const noexcept { return done_.load(std::memory_order_acquire) >= n; }
  // Blocks until a grace period starting after this call has completed.
  void synchronize() noexcept;

  static constexpr std::chrono::microseconds kMinInterval{1000};

 private:
  GracePeriods() = default;
  // REQUIRES: mu_ held.
  void start_snapshot();
  bool advance();  // REQUIRES: mu_ held; returns whether a snapshot is still running

  std::mutex mu_;
  std::atomic<std::uint64_t> done_{0};  // every grace period <= done_ has completed
  std::uint64_t started_ = 0;           // guarded by mu_
  bool running_ = false;                // a snapshot is being waited on
  bool wanted_ = false;                 // another grace period was requested
  std::chrono::steady_clock::time_point last_start_{};
  std::vector<std::pair<ReaderRecord*, std::uint64_t>> waiting_;  // records seen inside a section
};

// Objects retired by one owner (a shard), freed in batches once a grace
// period has passed. Not synchronised: the owner serialises calls.
class RetireList {
 public:
  using Free = void (*)(void*) noexcept;
  ~RetireList() { free_all(); }

  // `pinnable`: p may be held by pin slots (see above).
  void retire(void* p, Free f, bool pinnable = false) { fresh_.push_back({p, f, pinnable}); }
  // Frees what can be freed and starts a grace period for the rest when
  // `force` or at least kBatch objects wait. Cheap when nothing is due: a
  // few loads, and the grace period awaited is helped along (which reads
  // the clock and the reader records) only every kPollEvery calls.
  void collect(bool force = false) {
    if (force || !quiet()) collect_slow(force);
  }
  // Frees everything now. REQUIRES: no read section can still reach any of
  // it (the owner is being destroyed).
  void free_all() noexcept;
  std::size_t pending() const noexcept { return waiting_.size() + fresh_.size() + pinned_.size(); }

  static constexpr std::size_t kBatch = 64;
  static constexpr std::uint32_t kPollEvery = 8;

  struct Item {
    void* p;
    Free f;
    bool pinnable;
  };

 private:
  // Frees `items` except those still pinned, which go to pinned_.
  void free_unpinned(std::vector<Item>& items);
  // Whether a non-forced collect() has nothing to do now.
  bool quiet() noexcept {
    if (g_have_orphans.load(std::memory_order_relaxed)) return false;
    if (waiting_.empty()) return fresh_.size() < kBatch;
    return !gps_.done(gp_) && ++polls_ % kPollEvery != 0;
  }
  void collect_slow(bool force);

  GracePeriods& gps_ = GracePeriods::global();
  std::uint32_t polls_ = 0;

  std::vector<Item> waiting_;  // retired before grace period gp_ started
  std::uint64_t gp_ = 0;
  std::vector<Item> fresh_;   // retired since
  std::vector<Item> pinned_;  // past their grace period, still pinned
};

}  // namespace callcache::internal
