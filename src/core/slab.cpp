#include "slab.h"

#include <pthread.h>
#include <sys/mman.h>

#include <cassert>
#include <cstring>
#include <new>
#include <thread>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#define CALLCACHE_ASAN 1
#endif

namespace callcache::internal {
namespace {

// Free slots are poisoned under AddressSanitizer, so touching an entry after
// its last unref is reported even though the memory stays mapped.
inline void poison(void* p, std::size_t n) noexcept {
#ifdef CALLCACHE_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}
inline void unpoison(void* p, std::size_t n) noexcept {
#ifdef CALLCACHE_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}

// Free slots are linked through their first 8 bytes.
inline void push_slot(char*& head, void* p, std::size_t slot) noexcept {
  std::memcpy(p, &head, sizeof head);
  head = static_cast<char*>(p);
  poison(p, slot);
}
inline char* pop_slot(char*& head, std::size_t slot) noexcept {
  char* p = head;
  unpoison(p, slot);
  std::memcpy(&head, p, sizeof head);
  return p;
}

}  // namespace

// A slab's header, at the start of its kSlabSize-aligned memory. `bin` is
// set when a bin takes the slab and stays fixed while any slot is in use
// (a free reads it before taking the bin's lock: the slot's allocation, and
// so the slab's initialisation, happens-before its free). Every other field
// is guarded by bin->mu.
struct SlabAllocator::Slab {
  Bin* bin = nullptr;
  Slab* prev = nullptr;       // in bin->partial
  Slab* next = nullptr;       // in bin->partial, or in the allocator's cache when empty
  char* free_list = nullptr;  // freed slots
  std::uint32_t used = 0;     // slots handed out (to callers or thread caches)
  std::uint32_t bumped =
      0;                // slots ever handed out from the bump index; the rest were never touched
  bool listed = false;  // in bin->partial
};
static_assert(SlabAllocator::kHeaderSize % SlabAllocator::kGranule == 0);
static_assert((SlabAllocator::kSlabSize & (SlabAllocator::kSlabSize - 1)) == 0,
              "slabs are found by masking");

// ---- Thread caches (global() only) -------------------------------------------

constinit thread_local SlabAllocator::ThreadCache* SlabAllocator::tl_cache_
    __attribute__((tls_model("initial-exec"))) = nullptr;
constinit thread_local bool SlabAllocator::tl_exiting_ = false;

// Flushes and deletes the thread's cache when the thread exits.
class SlabAllocator::ThreadCacheOwner {
 public:
  ~ThreadCacheOwner() {
    tl_exiting_ = true;  // frees from later thread_local destructors go to the bins
    SlabAllocator::global().flush_thread_cache();
  }
};

SlabAllocator::ThreadCache* SlabAllocator::thread_cache() noexcept {
  if (tl_cache_) [[likely]]
    return tl_cache_;
  return tl_exiting_ ? nullptr : make_thread_cache();
}

SlabAllocator::ThreadCache* SlabAllocator::make_thread_cache() noexcept {
  thread_local ThreadCacheOwner owner;  // constructed here, on the thread's first use
  (void)owner;
  tl_cache_ = new (std::nothrow) ThreadCache();
  return tl_cache_;
}

void SlabAllocator::flush_thread_cache() noexcept {
  if (!thread_caches_) return;
  ThreadCache* tc = std::exchange(tl_cache_, nullptr);
  if (!tc) return;
  for (std::size_t k = 0; k < kClasses; ++k) {
    ThreadCache::List& l = tc->lists[k];
    const std::size_t slot = (k + 1) * kGranule;
    while (l.head) deallocate_to_bin(pop_slot(l.head, slot));
  }
  delete tc;
}

// ---- Allocator ------------------------------------------------------------------

SlabAllocator::SlabAllocator(bool thread_caches) : thread_caches_(thread_caches) {
  static_assert(sizeof(Slab) <= kHeaderSize, "the slab header must fit before the first slot");
  for (std::size_t k = 0; k < kClasses; ++k) {
    for (Bin& b : bins_[k]) {
      b.slot_size = static_cast<std::uint32_t>((k + 1) * kGranule);
      b.slots_per_slab = static_cast<std::uint32_t>((kSlabSize - kHeaderSize) / b.slot_size);
    }
  }
}

SlabAllocator::~SlabAllocator() {
  release_cached();
#ifndef NDEBUG
  for (auto& stripes : bins_) {
    for (Bin& b : stripes) assert(b.slabs == 0 && "a slab allocator destroyed with slots in use");
  }
#endif
}

SlabAllocator& SlabAllocator::make_global() noexcept {
  // Constructed in place on first use and never destroyed: entries may be
  // freed during static destruction (a Ref<V> held by a static object).
  alignas(SlabAllocator) static unsigned char storage[sizeof(SlabAllocator)];
  static SlabAllocator* const instance = [] {
    auto* a = ::new (storage) SlabAllocator(true);
    // A child forked while another thread held a bin's lock would deadlock
    // on its first entry: hold every lock across fork(), as malloc does.
    ::pthread_atfork(
        [] {
          SlabAllocator& g = global();
          for (auto& stripes : g.bins_) {
            for (Bin& b : stripes) b.mu.lock();
          }
          g.page_mu_.lock();
        },
        [] {
          SlabAllocator& g = global();
          g.page_mu_.unlock();
          for (auto& stripes : g.bins_) {
            for (Bin& b : stripes) b.mu.unlock();
          }
        },
        [] {
          SlabAllocator& g = global();
          g.page_mu_.unlock();
          for (auto& stripes : g.bins_) {
            for (Bin& b : stripes) b.mu.unlock();
          }
        });
    global_.store(a, std::memory_order_release);
    return a;
  }();
  return *instance;
}

void SlabAllocator::SpinLock::pause(int spins) noexcept {
  if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    std::this_thread::yield();  // the holder is probably not running
  }
}

int SlabAllocator::my_stripe() noexcept {
  static std::atomic<int> next{0};
  thread_local const int stripe = next.fetch_add(1, std::memory_order_relaxed) & (kStripes - 1);
  return stripe;
}

void SlabAllocator::push_partial(Bin& b, Slab* s) noexcept {
  assert(!s->listed);
  s->prev = nullptr;
  s->next = b.partial;
  if (b.partial) b.partial->prev = s;
  b.partial = s;
  s->listed = true;
}

void SlabAllocator::remove_partial(Bin& b, Slab* s) noexcept {
  assert(s->listed);
  (s->prev ? s->prev->next : b.partial) = s->next;
  if (s->next) s->next->prev = s->prev;
  s->prev = s->next = nullptr;
  s->listed = false;
}

void* SlabAllocator::allocate_slow(std::size_t cls) noexcept {
  if (thread_caches_) {
    if (ThreadCache* tc = thread_cache()) {
      ThreadCache::List& l = tc->lists[cls];
      if (l.head) {
        --l.count;
        return pop_slot(l.head, (cls + 1) * kGranule);
      }
    }
  }
  return allocate_from_bin(cls);
}

void SlabAllocator::deallocate_slow(void* p, std::size_t size) noexcept {
  assert(fits(size));
  if (thread_caches_) {
    if (ThreadCache* tc = thread_cache()) {
      const std::size_t cls = class_of(size);
      ThreadCache::List& l = tc->lists[cls];
      if (l.count < thread_cache_slots(size)) {
        ++l.count;
        push_slot(l.head, p, (cls + 1) * kGranule);
        return;
      }
    }
  }
  deallocate_to_bin(p);
}

void* SlabAllocator::allocate_from_bin(std::size_t cls) noexcept {
  Bin& b = bins_[cls][static_cast<std::size_t>(my_stripe())];
  std::lock_guard lock(b.mu);
  Slab* s = b.partial;
  if (!s) {
    s = acquire_slab();
    if (!s) return nullptr;
    ::new (s) Slab();
    s->bin = &b;
    poison(reinterpret_cast<char*>(s) + kHeaderSize, kSlabSize - kHeaderSize);
    ++b.slabs;
    push_partial(b, s);
  }
  char* p;
  if (s->free_list) {
    p = pop_slot(s->free_list, b.slot_size);
  } else {
    p = reinterpret_cast<char*>(s) + kHeaderSize + std::size_t{s->bumped++} * b.slot_size;
    unpoison(p, b.slot_size);
  }
  ++b.slots;
  if (++s->used == b.slots_per_slab) remove_partial(b, s);
  return p;
}

void SlabAllocator::deallocate_to_bin(void* p) noexcept {
  auto* s =
      reinterpret_cast<Slab*>(reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{kSlabSize - 1});
  Bin& b = *s->bin;
  {
    std::lock_guard lock(b.mu);
    assert(s->used > 0);
    assert(static_cast<char*>(p) >= reinterpret_cast<char*>(s) + kHeaderSize);
    assert((static_cast<char*>(p) - reinterpret_cast<char*>(s) - kHeaderSize) % b.slot_size == 0);
    push_slot(s->free_list, p, b.slot_size);
    --b.slots;
    if (!s->listed) push_partial(b, s);  // it was full
    if (--s->used != 0) return;
    remove_partial(b, s);
    --b.slabs;
  }
  release_slab(s);
}

// ---- Slabs ----------------------------------------------------------------------

SlabAllocator::Slab* SlabAllocator::acquire_slab() noexcept {
  {
    std::lock_guard lock(page_mu_);
    if (cached_) {
      Slab* s = cached_;
      cached_ = s->next;
      --cached_count_;
      return s;
    }
  }
  void* p = map_slab();
  if (!p) return nullptr;
  maps_.fetch_add(1, std::memory_order_relaxed);
  return static_cast<Slab*>(p);
}

void SlabAllocator::release_slab(Slab* s) noexcept {
  {
    std::lock_guard lock(page_mu_);
    if (cached_count_ < kCachedEmptySlabs) {
      s->next = cached_;
      cached_ = s;
      ++cached_count_;
      return;
    }
  }
  unmap_or_keep(s);
}

void SlabAllocator::unmap_or_keep(Slab* s) noexcept {
  if (unmap_slab(s)) {
    unmaps_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // munmap fails only when splitting a mapping would pass the process's
  // mapping limit. unmap_slab gave the pages back; keep the address range as
  // a cached slab (past the cap) so it is reused rather than lost.
  std::lock_guard lock(page_mu_);
  s->next = cached_;
  cached_ = s;
  ++cached_count_;
}

std::size_t SlabAllocator::release_cached() noexcept {
  Slab* list;
  std::size_t n;
  {
    std::lock_guard lock(page_mu_);
    list = std::exchange(cached_, nullptr);
    n = std::exchange(cached_count_, 0);
  }
  while (list) {
    Slab* next = list->next;
    unmap_or_keep(list);
    list = next;
  }
  return n;
}

void* SlabAllocator::map_slab() noexcept {
  constexpr int kProt = PROT_READ | PROT_WRITE;
  constexpr int kFlags = MAP_PRIVATE | MAP_ANONYMOUS;
  // The kernel places mappings top-down next to each other, so once one slab
  // is aligned the next plain mapping usually is too: try that first.
  void* p = ::mmap(nullptr, kSlabSize, kProt, kFlags, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  if (reinterpret_cast<std::uintptr_t>(p) % kSlabSize != 0) {
    ::munmap(p, kSlabSize);
    // Map twice the size and trim to the aligned slab inside.
    auto* q = static_cast<char*>(::mmap(nullptr, 2 * kSlabSize, kProt, kFlags, -1, 0));
    if (q == MAP_FAILED) return nullptr;
    auto* a = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(q) + kSlabSize - 1) &
                                      ~std::uintptr_t{kSlabSize - 1});
    if (a != q) ::munmap(q, static_cast<std::size_t>(a - q));
    if (a + kSlabSize != q + 2 * kSlabSize) {
      ::munmap(a + kSlabSize, static_cast<std::size_t>(q + 2 * kSlabSize - (a + kSlabSize)));
    }
    p = a;
  }
#ifdef CALLCACHE_ASAN
  __lsan_register_root_region(p, kSlabSize);
#endif
  return p;
}

bool SlabAllocator::unmap_slab(void* p) noexcept {
#ifdef CALLCACHE_ASAN
  __lsan_unregister_root_region(p, kSlabSize);
  unpoison(p, kSlabSize);  // the shadow would outlive the mapping
#endif
  if (::munmap(p, kSlabSize) == 0) return true;
  ::madvise(p, kSlabSize, MADV_DONTNEED);
#ifdef CALLCACHE_ASAN
  __lsan_register_root_region(p, kSlabSize);
#endif
  return false;
}

SlabAllocator::Stats SlabAllocator::stats() const noexcept {
  Stats st;
  for (const auto& stripes : bins_) {
    for (const Bin& b : stripes) {
      std::lock_guard lock(b.mu);
      st.slots += b.slots;
      st.slot_bytes += b.slots * b.slot_size;
      st.slabs += b.slabs;
    }
  }
  {
    std::lock_guard lock(page_mu_);
    st.cached_slabs = cached_count_;
  }
  st.maps = maps_.load(std::memory_order_relaxed);
  st.unmaps = unmaps_.load(std::memory_order_relaxed);
  st.mapped_bytes = (st.maps - st.unmaps) * kSlabSize;
  return st;
}

}  // namespace callcache::internal
