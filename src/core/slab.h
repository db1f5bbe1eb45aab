// Internal: a size-class slab allocator for cache entries.
//
// Why: an entry with a 16-byte key and an 8-byte value is 64 bytes, which
// glibc serves from an 80-byte chunk (an 8-byte header, 16-byte rounding).
// Here it takes a 64-byte slot: classes are every 8 bytes up to kMaxSlot, and
// a slot carries no header of its own.
//
// Layout: memory is mapped from the system in slabs of kSlabSize bytes,
// aligned on kSlabSize, each serving one size class. A slab starts with its
// header (owner bin, free list, counts); a slot finds its slab by masking its
// own address, so a free needs no pointer stored beside the slot. Slots are
// handed out from the slab's free list, then from a bump index, so pages of a
// slab that were never needed are never touched.
//
// Concurrency: every member may be called from any thread; a slot may be
// freed on a thread other than the one that allocated it.
// - Thread caches (global() only): each thread keeps up to
//   thread_cache_slots(size) free slots per class (kThreadCacheBytes worth,
//   at least kThreadCacheSlots), used before any lock is taken. An insert
//   allocates an entry and the shard frees the entries it replaced or
//   evicted in batches, one per grace period (reclaim.h), on the same
//   thread: the cache holds a whole batch, so in steady state the write path
//   touches no bin. A thread's cache is flushed when the thread exits.
// - Bins: each size class has kStripes bins; a thread allocates from its own
//   stripe's bin (fixed per thread). A bin's lock guards its list of slabs
//   with free slots and every slab it owns; a free that reaches the slabs
//   takes the lock of the bin owning the slot's slab. Critical sections are a
//   few pointer moves, so the lock spins (then yields) rather than sleeping.
// - Slabs are mapped, cached and unmapped under one allocator-wide mutex,
//   taken only when a bin needs a new slab or gives an empty one back (once
//   per few hundred slots).
// Lock order: bin, then the allocator's page mutex; nothing is called back
// under either. global() holds every lock across fork(), as malloc does, so
// a child never inherits a lock held by a thread that did not follow it.
//
// Memory is bounded: a slab whose last slot comes back leaves its bin at
// once. Up to kCachedEmptySlabs empty slabs are kept for reuse (a bin
// oscillating around a slab boundary would otherwise map and unmap on every
// step); the rest are unmapped, and release_cached() unmaps the cached ones
// too. Slots parked in thread caches (at most thread_cache_slots() per class
// and thread, as glibc's tcache parks chunks) count as in use and keep their slabs
// mapped until reused, flushed (flush_thread_cache) or their thread exits.
//
// Ownership and lifetime: global() is never destroyed, so a slot may be freed
// at any time, including during static destruction (cache entries pinned by a
// Ref<V> may outlive their engine). A separately constructed allocator (for
// tests) REQUIRES every slot to be freed before it is destroyed.
//
// Sanitizers: under AddressSanitizer free slots are poisoned (a use after
// free inside a slab is reported) and slabs are registered as LeakSanitizer
// root regions (a heap block referenced only by a value in a slab is not a
// leak).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>

namespace callcache::internal {

class SlabAllocator {
 public:
  static constexpr std::size_t kSlabSize = 64 * 1024;
  static constexpr std::size_t kGranule = 8;  // class spacing and slot alignment
  static constexpr std::size_t kMaxSlot = 512;
  static constexpr std::size_t kClasses =
      kMaxSlot / kGranule;  // class k (from 0) serves k*8+1 .. (k+1)*8 bytes
  static constexpr int kStripes = 4;
  static constexpr std::size_t kCachedEmptySlabs = 8;
  static constexpr std::uint32_t kThreadCacheSlots = 8;  // the cap's floor
  static constexpr std::size_t kThreadCacheBytes = 16 * 1024;
  // Most free slots of `size` bytes a thread's cache parks.
  static constexpr std::uint32_t thread_cache_slots(std::size_t size) noexcept {
    const std::size_t n = kThreadCacheBytes / slot_size(size);
    return n > kThreadCacheSlots ? static_cast<std::uint32_t>(n) : kThreadCacheSlots;
  }
  // Where the first slot starts (the header has its own cache line).
  static constexpr std::size_t kHeaderSize = 64;

  // A private allocator (without thread caches), for tests.
  SlabAllocator() : SlabAllocator(false) {}
  // REQUIRES: every slot allocated from this allocator has been freed.
  ~SlabAllocator();
  SlabAllocator(const SlabAllocator&) = delete;
  SlabAllocator& operator=(const SlabAllocator&) = delete;

  // The process-wide allocator used for entries, with thread caches; never
  // destroyed.
  static SlabAllocator& global() noexcept {
    if (SlabAllocator* g = global_.load(std::memory_order_acquire)) [[likely]]
      return *g;
    return make_global();
  }

  // Whether allocate(size) is served from a slab (1 <= size <= kMaxSlot).
  static constexpr bool fits(std::size_t size) noexcept { return size != 0 && size <= kMaxSlot; }
  // The slot size that serves `size` bytes. REQUIRES: fits(size).
  static constexpr std::size_t slot_size(std::size_t size) noexcept {
    return (size + kGranule - 1) / kGranule * kGranule;
  }

  // A kGranule-aligned slot of slot_size(size) bytes, or nullptr if
  // !fits(size) or the system refuses memory (callers fall back to operator
  // new). Never throws.
  void* allocate(std::size_t size) noexcept {
    if (!fits(size)) return nullptr;
    const std::size_t cls = class_of(size);
#if !defined(__SANITIZE_ADDRESS__)  // (the out-of-line path poisons and unpoisons)
    if (ThreadCache* tc = tl_cache_; tc && thread_caches_) [[likely]] {
      ThreadCache::List& l = tc->lists[cls];
      if (char* p = l.head) [[likely]] {
        --l.count;
        std::memcpy(&l.head, p, sizeof l.head);
        return p;
      }
    }
#endif
    return allocate_slow(cls);
  }

  // Frees a slot. REQUIRES: p came from allocate(size) on this allocator,
  // with a size served by the same slot size, and was not freed since. Any
  // thread.
  void deallocate(void* p, std::size_t size) noexcept {
#if !defined(__SANITIZE_ADDRESS__)
    if (ThreadCache* tc = tl_cache_; tc && thread_caches_) [[likely]] {
      ThreadCache::List& l = tc->lists[class_of(size)];
      if (l.count < thread_cache_slots(size)) [[likely]] {
        ++l.count;
        std::memcpy(p, &l.head, sizeof l.head);
        l.head = static_cast<char*>(p);
        return;
      }
    }
#endif
    deallocate_slow(p, size);
  }

  // Gives the calling thread's cached slots back to their slabs (global()
  // only; a no-op for other allocators). Threads do this when they exit.
  void flush_thread_cache() noexcept;

  // Unmaps the cached empty slabs. Returns how many.
  std::size_t release_cached() noexcept;

  struct Stats {
    std::uint64_t slots = 0;         // slots in use (thread-cached ones included)
    std::uint64_t slot_bytes = 0;    // their total size
    std::uint64_t slabs = 0;         // slabs owned by bins (in use, partly or fully)
    std::uint64_t cached_slabs = 0;  // empty slabs kept for reuse
    std::uint64_t mapped_bytes = 0;  // (slabs + cached_slabs) * kSlabSize: all memory held
    std::uint64_t maps = 0;          // slabs mapped since construction
    std::uint64_t unmaps = 0;        // slabs unmapped since construction
  };
  // A snapshot (takes every bin's lock in turn: not for hot paths).
  Stats stats() const noexcept;

 private:
  struct Slab;
  // A test-and-test-and-set lock: critical sections here are a few pointer
  // moves, so a waiter spins briefly (yielding if the holder was preempted)
  // instead of sleeping in the kernel as std::mutex does on contention.
  class SpinLock {
   public:
    void lock() noexcept {
      while (locked_.exchange(true, std::memory_order_acquire)) {
        for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) pause(spins);
      }
    }
    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

   private:
    static void pause(int spins) noexcept;
    std::atomic<bool> locked_{false};
  };
  struct alignas(64) Bin {
    mutable SpinLock mu;
    Slab* partial = nullptr;  // slabs with a free slot (doubly linked); allocations take the head
    std::uint64_t slots = 0;  // slots in use, over all of this bin's slabs
    std::uint64_t slabs = 0;  // slabs owned
    std::uint32_t slot_size = 0;
    std::uint32_t slots_per_slab = 0;
  };

  // A thread's free slots, per class, linked through their first 8 bytes.
  // Touched only by its thread.
  struct ThreadCache {
    struct List {
      char* head = nullptr;
      std::uint32_t count = 0;
    };
    std::array<List, kClasses> lists{};
  };
  class ThreadCacheOwner;
  static SlabAllocator& make_global() noexcept;
  static inline std::atomic<SlabAllocator*> global_{nullptr};  // set once global() exists
  void* allocate_slow(std::size_t cls) noexcept;
  void deallocate_slow(void* p, std::size_t size) noexcept;

  explicit SlabAllocator(bool thread_caches);
  static int my_stripe() noexcept;
  static std::size_t class_of(std::size_t size) noexcept {
    return (size + kGranule - 1) / kGranule - 1;
  }
  static ThreadCache* thread_cache() noexcept;  // the calling thread's, or nullptr while it exits
  static ThreadCache* make_thread_cache() noexcept;
  void* allocate_from_bin(std::size_t cls) noexcept;
  void deallocate_to_bin(void* p) noexcept;
  // REQUIRES: b.mu held.
  static void push_partial(Bin& b, Slab* s) noexcept;
  static void remove_partial(Bin& b, Slab* s) noexcept;

  Slab* acquire_slab() noexcept;  // a cached slab or a newly mapped one, or nullptr
  void release_slab(Slab* s) noexcept;
  static void* map_slab() noexcept;  // kSlabSize bytes aligned on kSlabSize, or nullptr
  // Unmaps a slab; on failure gives its pages back and returns false.
  static bool unmap_slab(void* p) noexcept;
  void unmap_or_keep(Slab* s) noexcept;  // unmaps, or caches past the cap if unmapping fails

  // The calling thread's cache of global() (trivially destructible, so still
  // readable while the thread's other thread_local objects are destroyed:
  // they may free entries), and whether the thread flushed it for good.
  // Initial-exec TLS: the inline fast paths above read it with one
  // fs-relative load.
  static constinit thread_local ThreadCache* tl_cache_ __attribute__((tls_model("initial-exec")));
  static thread_local bool tl_exiting_;

  const bool thread_caches_;
  std::array<std::array<Bin, kStripes>, kClasses> bins_;

  mutable std::mutex page_mu_;  // guards cached_ and cached_count_
  Slab* cached_ = nullptr;      // empty slabs kept for reuse (singly linked through next)
  std::size_t cached_count_ = 0;
  std::atomic<std::uint64_t> maps_{0};
  std::atomic<std::uint64_t> unmaps_{0};
};

}  // namespace callcache::internal
