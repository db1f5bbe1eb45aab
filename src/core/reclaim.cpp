#include "reclaim.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "callcache/striped_counters.h"
#include "spin_lock.h"

namespace callcache::internal {
namespace {

// The registry: a chain of records, pushed at the head, never removed.
std::atomic<ReaderRecord*> g_records{nullptr};
std::atomic<std::uint32_t> g_record_count{0};

int decide_barrier_mode() noexcept {
  static const int mode = [] {
#if defined(__SANITIZE_THREAD__)
    return 2;  // ThreadSanitizer does not model membarrier's ordering
#else
    const long r = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (r < 0 || !(r & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return 2;
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) return 2;
    return 1;
#endif
  }();
  g_reclaim_barrier_mode.store(mode, std::memory_order_release);
  return mode;
}

// Orders every thread's earlier stores before this thread's later loads (see
// reclaim.h): membarrier, or a plain fence when readers fence themselves.
void heavy_barrier() noexcept {
  if (decide_barrier_mode() == 1) {
    // Only refused (EPERM) without the registration decide_barrier_mode()
    // made; the fence below keeps this thread's side ordered regardless.
    (void)syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

constinit thread_local bool tl_exited = false;

struct RecordReleaser {
  ~RecordReleaser() {
    tl_exited = true;
    if (ReaderRecord* r = tl_reader_record) {
      tl_reader_record = nullptr;
      r->in_use.store(false, std::memory_order_release);
    }
  }
};

}  // namespace

std::atomic<int> g_reclaim_barrier_mode{0};
std::atomic<bool> g_have_orphans{false};
constinit thread_local ReaderRecord* tl_reader_record __attribute__((tls_model("initial-exec"))) =
    nullptr;

bool readers_fence_slow() noexcept { return decide_barrier_mode() == 2; }

ReaderRecord& acquire_reader_record() noexcept {
  if (!tl_exited) {
    thread_local RecordReleaser releaser;  // released when the thread exits
    (void)releaser;
  }
  decide_barrier_mode();
  for (ReaderRecord* r = g_records.load(std::memory_order_acquire); r; r = r->next) {
    bool free = false;
    if (!r->in_use.load(std::memory_order_relaxed) &&
        r->in_use.compare_exchange_strong(free, true, std::memory_order_acquire)) {
      tl_reader_record = r;
      return *r;
    }
  }
  auto* r = new ReaderRecord;
  r->in_use.store(true, std::memory_order_relaxed);
  r->index = g_record_count.fetch_add(1, std::memory_order_relaxed);
  ReaderRecord* head = g_records.load(std::memory_order_relaxed);
  do {
    r->next = head;
  } while (!g_records.compare_exchange_weak(head, r, std::memory_order_release,
                                            std::memory_order_relaxed));
  tl_reader_record = r;
  return *r;
}

// ---- GracePeriods -------------------------------------------------------------

GracePeriods& GracePeriods::global() noexcept {
  static GracePeriods* g = new GracePeriods();  // never destroyed: usable during static destruction
  return *g;
}

void GracePeriods::start_snapshot() {
  heavy_barrier();
  ++started_;
  running_ = true;
  wanted_ = false;
  last_start_ = std::chrono::steady_clock::now();
  waiting_.clear();
  for (ReaderRecord* r = g_records.load(std::memory_order_acquire); r; r = r->next) {
    const std::uint64_t s = r->seq.load(std::memory_order_seq_cst);
    if (s & 1) waiting_.emplace_back(r, s);
  }
}

bool GracePeriods::advance() {
  for (;;) {
    if (!running_) {
      if (!wanted_ || std::chrono::steady_clock::now() - last_start_ < kMinInterval) return false;
      start_snapshot();
    }
    std::erase_if(waiting_, [](const std::pair<ReaderRecord*, std::uint64_t>& w) {
      return w.first->seq.load(std::memory_order_acquire) != w.second;
    });
    if (!waiting_.empty()) return true;
    running_ = false;
    done_.store(started_, std::memory_order_release);
    if (!wanted_) return false;
  }
}

std::uint64_t GracePeriods::request(bool urgent) noexcept {
  std::lock_guard lock(mu_);
  if (!running_ && (urgent || std::chrono::steady_clock::now() - last_start_ >= kMinInterval)) {
    start_snapshot();
    const std::uint64_t n = started_;
    advance();
    return n;
  }
  wanted_ = true;
  return started_ + 1;
}

bool GracePeriods::completed(std::uint64_t n) noexcept {
  if (done_.load(std::memory_order_acquire) >= n) return true;
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return false;
  advance();
  return done_.load(std::memory_order_acquire) >= n;
}

void GracePeriods::synchronize() noexcept {
  const std::uint64_t n = request(/*urgent=*/true);
  for (int spins = 0; !completed(n); ++spins) {
    if (spins > 64) std::this_thread::yield();
  }
}

// ---- Pins ---------------------------------------------------------------------

namespace {

// Every pointer currently pinned, sorted.
std::vector<void*> pinned_now() {
  std::vector<void*> out;
  for (ReaderRecord* r = g_records.load(std::memory_order_acquire); r; r = r->next) {
    for (const std::atomic<void*>& slot : r->pins) {
      if (void* p = slot.load(std::memory_order_acquire)) out.push_back(p);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Pinned objects whose owner went away (see reclaim.h).
SpinMutex g_orphans_mu;  // trivially destructible: usable during static destruction
std::vector<RetireList::Item>* g_orphans = nullptr;  // guarded by g_orphans_mu; never freed

// Pin releases while orphans exist. A release whose free_orphans() finds the
// lock taken leaves its entry to the holder, which may have scanned the pins
// before that release: the holder counts releases and scans again.
std::atomic<std::uint64_t> g_orphan_releases{0};

void free_orphans() noexcept {
  for (;;) {
    if (!g_orphans_mu.try_lock()) return;  // the holder scans again (below)
    const std::uint64_t seen = g_orphan_releases.load(std::memory_order_acquire);
    bool left = false;
    if (g_orphans) {
      const std::vector<void*> pinned = pinned_now();
      std::vector<RetireList::Item> keep;
      for (const RetireList::Item& it : *g_orphans) {
        if (std::binary_search(pinned.begin(), pinned.end(), it.p)) {
          keep.push_back(it);
        } else {
          it.f(it.p);
        }
      }
      g_orphans->swap(keep);
      left = !g_orphans->empty();
      g_have_orphans.store(left, std::memory_order_relaxed);
    }
    g_orphans_mu.unlock();
    // With the fence in release_pin: either that release's try_lock sees the
    // lock free, or this load sees its count.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!left || g_orphan_releases.load(std::memory_order_acquire) == seen) return;
  }
}

}  // namespace

void release_pin(std::atomic<void*>* slot) noexcept {
  slot->store(nullptr, std::memory_order_release);
  if (g_have_orphans.load(std::memory_order_relaxed)) {
    g_orphan_releases.fetch_add(1, std::memory_order_release);  // the cleared slot first
    std::atomic_thread_fence(std::memory_order_seq_cst);
    free_orphans();
  }
}

// ---- RetireList ---------------------------------------------------------------

void RetireList::free_unpinned(std::vector<Item>& items) {
  std::vector<void*> pinned;
  if (std::any_of(items.begin(), items.end(), [](const Item& it) { return it.pinnable; }))
    pinned = pinned_now();
  for (const Item& it : items) {
    if (it.pinnable && std::binary_search(pinned.begin(), pinned.end(), it.p)) {
      pinned_.push_back(it);
    } else {
      it.f(it.p);
    }
  }
  items.clear();
}

void RetireList::collect_slow(bool force) {
  GracePeriods& gp = gps_;
  if (!waiting_.empty() && gp.completed(gp_)) {
    if (!pinned_.empty()) waiting_.insert(waiting_.end(), pinned_.begin(), pinned_.end());
    pinned_.clear();
    free_unpinned(waiting_);
  } else if (force && !pinned_.empty()) {
    std::vector<Item> again;
    again.swap(pinned_);
    free_unpinned(again);
  }
  if (waiting_.empty() && !fresh_.empty() && (force || fresh_.size() >= kBatch)) {
    waiting_.swap(fresh_);
    gp_ = gp.request(force);
    if (gp.completed(gp_)) free_unpinned(waiting_);
  }
  if (g_have_orphans.load(std::memory_order_relaxed)) free_orphans();
}

void RetireList::free_all() noexcept {
  std::vector<Item> all;
  all.swap(waiting_);
  all.insert(all.end(), fresh_.begin(), fresh_.end());
  all.insert(all.end(), pinned_.begin(), pinned_.end());
  fresh_.clear();
  pinned_.clear();
  free_unpinned(all);
  if (pinned_.empty()) return;
  std::lock_guard lock(g_orphans_mu);
  if (!g_orphans) g_orphans = new std::vector<Item>();
  g_orphans->insert(g_orphans->end(), pinned_.begin(), pinned_.end());
  pinned_.clear();
  g_have_orphans.store(true, std::memory_order_relaxed);
}

}  // namespace callcache::internal

namespace callcache {

std::size_t this_thread_lane() noexcept { return internal::my_reader_record().index; }

}  // namespace callcache
