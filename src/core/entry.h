// Internal: one cached entry — a single allocation holding the header, the
// key bytes and the value, in that order (the key at a fixed offset, so a
// lookup compares it without knowing the value's type). Entries of up to
// SlabAllocator::kMaxSlot bytes whose value needs at most 8-byte alignment
// take an exact-size slot of the process-wide slab allocator (slab.h);
// larger ones come from operator new.
//
// Lifetime: refcounted. The shard holds one reference while the entry is
// linked (in its table and eviction queues); each copied Ref<V> or loading
// result holds one more. A plain lookup usually pins the entry in a slot of
// its thread's reader record instead (reclaim.h): the shard then keeps its
// reference until no slot holds the entry. The entry is destroyed by whoever
// drops the last reference, on any thread, so everything needed to destroy
// it (the value's ops) is in the entry itself.
//
// Synchronisation: everything a lock-free lookup reads (tenant, key, expiry,
// version, the value type — which also says whether the entry is negative —
// and the value) is fixed before the entry is published in a table and never
// changes after — except in entries of in-place types (kInPlace<V>, at most
// one 8-byte word), whose value word and expiry a put rewrites lock-free, as
// a seqlock: the top byte of `refs` counts such updates (odd while one
// writes; claiming an entry is a CAS that also checks the reference count),
// and readers copy value and expiry with read_in_place(), retrying when the
// count moved. Only while the shard holds the sole reference: whoever holds
// another (a load storing its value, a pin made into a reference) may read
// the value in place. The queue links are read and written only under the
// owning shard's lock, so they share bytes without atomics; the charge
// never changes. The flags are written under the lock too, but are atomic
// bytes because an update in place reads kTagged and kLinked without it.
// `refs` and `freq` are atomics touched on the hit path. The entry's memory
// stays valid for lookups still reading it after it is unlinked: the shard
// keeps its reference until a grace period has passed (reclaim.h).
#pragma once

#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <thread>

#include "callcache/internal/engine_access.h"
#include "callcache/status.h"
#include "spin_lock.h"

namespace callcache::internal {

class Entry {
 public:
  enum Flag : std::uint8_t {
    kLinked = 1,      // in a shard's table and queues
    kMain = 4,        // S3-FIFO / W-TinyLFU: in the main area (else the small queue or window)
    kTagged = 8,      // has tags registered in the shard's tag index
    kProtected = 16,  // W-TinyLFU: in main's protected segment (else probation)
    kFresh = 32,      // W-TinyLFU: in the window and not yet passed over since inserted
    kInSlab = 64,     // memory is a slab slot (else operator new); fixed at create()
  };

  // Allocates an entry; moves *value in (or copies `error` for a negative
  // entry). The new entry holds one reference (the caller's).
  // `type` is ops' index in the type registry (register_type); ops ==
  // nullptr makes a negative entry holding a copy of *error.
  static Entry* create(const ValueOps* ops, std::uint8_t type, void* value, const Status* error,
                       TenantId tenant, std::string_view key, std::uint32_t charge,
                       TimePoint expire, std::uint16_t version);

  // References are counted in the low 24 bits of `refs_` (at most 2^24 - 1
  // at once); the top 8 bits count updates in place (see above).
  void ref() noexcept {
    [[maybe_unused]] const std::uint32_t before = refs_.fetch_add(1, std::memory_order_relaxed);
    assert((before & kRefMask) != kRefMask && "more than 2^24 - 1 references to one entry");
  }
  void unref() noexcept {
    if ((refs_.fetch_sub(1, std::memory_order_acq_rel) & kRefMask) == 1) destroy();
  }
  std::uint32_t refs() const noexcept { return refs_.load(std::memory_order_relaxed) & kRefMask; }

  std::string_view key() const noexcept {
    return {reinterpret_cast<const char*>(this + 1), key_len_};
  }
  const void* value() const noexcept {
    return reinterpret_cast<const char*>(this) + value_offset();
  }
  const Status& error() const noexcept { return *static_cast<const Status*>(value()); }

  TenantId tenant() const noexcept { return tenant_; }
  // Fixed at create(). Charges of 65535 and more are kept in 4 bytes after
  // the value: values that large are rare and the 4 bytes are nothing beside
  // them.
  std::uint32_t charge() const noexcept {
    return charge_ != kChargeOutOfLine ? charge_ : out_of_line_charge();
  }
  // The value is a Status (a remembered failure). Fixed: lookups read it.
  bool negative() const noexcept { return type_ == 0; }
  std::uint16_t version() const noexcept { return version_; }
  TimePoint expire() const noexcept {
    return TimePoint(Duration(expire_ns_.load(std::memory_order_relaxed)));
  }

  // Entries of in-place types only. Rewrites the value word (the value's
  // bytes, zero-padded to 8) and the expiry, lock-free: claims the entry by
  // making the update count odd, which succeeds only while the shard holds
  // the sole reference and no other update is under way (it waits briefly
  // for one). False, with nothing written, if it cannot claim the entry.
  // An update that would leave the entry as it is (the same value re-put
  // within one tick of the clock, so the same expiry) writes nothing and
  // needs no claim: it is ordered at a consistent read that saw that state.
  // Hot keys re-put with unchanged values then stay shared between cores'
  // caches instead of moving to the writer's on every put.
  // REQUIRES: inside a ReadSection that found the entry (reclaim.h).
  bool try_update_in_place(std::uint64_t word, TimePoint expire) noexcept {
    const std::int64_t expire_ns = expire.time_since_epoch().count();
    std::uint32_t seen = refs_.load(std::memory_order_acquire);
    if ((seen & kUpdateOne) == 0 && value_word().load(std::memory_order_relaxed) == word &&
        expire_ns_.load(std::memory_order_relaxed) == expire_ns) {
      std::atomic_thread_fence(std::memory_order_acquire);
      if (((refs_.load(std::memory_order_relaxed) ^ seen) & ~kRefMask) == 0) return true;
    }
    for (int spins = 0;; ++spins) {
      if ((seen & kRefMask) != 1) return false;
      if (seen & kUpdateOne) {  // another update is writing
        if (spins == 64) return false;
        cpu_relax();
        seen = refs_.load(std::memory_order_relaxed);
        continue;
      }
      // Acquire: a released reference's reads of the value come first.
      if (refs_.compare_exchange_weak(seen, seen + kUpdateOne, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
        break;
      }
    }
    std::atomic_thread_fence(std::memory_order_release);
    value_word().store(word, std::memory_order_relaxed);
    expire_ns_.store(expire_ns, std::memory_order_relaxed);
    refs_.fetch_add(kUpdateOne, std::memory_order_release);  // even: done
    return true;
  }
  // Entries of in-place types only. Copies the value word into *out and
  // returns the expiry, as of one moment. Lock-free.
  TimePoint read_in_place(std::uint64_t* out) const noexcept {
    for (int spins = 0;; ++spins) {
      const std::uint32_t before = refs_.load(std::memory_order_acquire) & ~kRefMask;
      if ((before & kUpdateOne) == 0) {
        const std::uint64_t word = value_word().load(std::memory_order_relaxed);
        const std::int64_t expire = expire_ns_.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if ((refs_.load(std::memory_order_relaxed) & ~kRefMask) == before) {
          *out = word;
          return TimePoint(Duration(expire));
        }
      }
      if (spins < 64) {
        cpu_relax();
      } else {
        std::this_thread::yield();  // the writer may have been preempted mid-update
      }
    }
  }

  // Flags: written only under the owning shard's lock. Atomic bytes, relaxed,
  // because updates in place read kTagged (set before the entry is
  // published) and kLinked without the lock.
  bool has(Flag f) const noexcept { return flags_.load(std::memory_order_relaxed) & f; }
  void set(Flag f) noexcept { store_flags(static_cast<std::uint8_t>(flags() | f)); }
  void clear(Flag f) noexcept { store_flags(static_cast<std::uint8_t>(flags() & ~f)); }
  // Sets the flags in `mask` as they are on `from`.
  void copy_flags(const Entry& from, std::uint8_t mask) noexcept {
    store_flags(static_cast<std::uint8_t>((flags() & ~mask) | (from.flags() & mask)));
  }

  // Hits since the eviction strategy last looked, saturating at 3 (S3-FIFO's
  // frequency, W-TinyLFU's pending sketch increments). Racy increments are
  // fine: it is a hint. Once saturated a hit only reads it.
  void touch() noexcept {
    std::uint8_t f = freq_.load(std::memory_order_relaxed);
    if (f < 3) freq_.store(static_cast<std::uint8_t>(f + 1), std::memory_order_relaxed);
  }
  std::uint8_t freq() const noexcept { return freq_.load(std::memory_order_relaxed); }
  void set_freq(std::uint8_t f) noexcept { freq_.store(f, std::memory_order_relaxed); }

  bool matches(TenantId tenant, std::string_view key) const noexcept {
    return tenant_ == tenant && key_len_ == key.size() &&
           same_bytes(reinterpret_cast<const char*>(this + 1), key.data(), key.size());
  }

  // Intrusive queue links, owned by the shard's eviction strategy (read and
  // written only under the owning shard's lock). Each is kept in 44 bits:
  // an entry is 8-byte aligned and user-space addresses are below 2^47 on
  // x86-64 and AArch64 Linux (the kernel maps above that only for a mapping
  // that asks by hint, which neither malloc nor the slab allocator does;
  // create() checks both in debug builds).
  Entry* prev() const noexcept { return from_bits(load_links(0) & kLinkMask); }
  Entry* next() const noexcept { return from_bits(load_links(3) >> 20); }
  void set_prev(Entry* e) noexcept { store_links(0, (load_links(0) & ~kLinkMask) | to_bits(e)); }
  void set_next(Entry* e) noexcept {
    store_links(3, (load_links(3) & ((std::uint64_t{1} << 20) - 1)) | (to_bits(e) << 20));
  }
  // set_prev(p) and set_next(n) in two stores.
  void set_links(Entry* p, Entry* n) noexcept {
    const std::uint64_t a = to_bits(p), b = to_bits(n);
    store_links(0, a | (b << 44));
    store_links(3, (a >> 24) | (b << 20));
  }
  void clear_links() noexcept {
    store_links(0, 0);
    store_links(3, 0);
  }

 private:
  Entry() = default;
  void destroy() noexcept;
  std::size_t value_offset() const noexcept;
  // memcmp(a, b, n) == 0, inlined for the short keys caches mostly hold.
  static bool same_bytes(const char* a, const char* b, std::size_t n) noexcept {
    std::uint64_t x, y;
    while (n >= 8) {
      std::memcpy(&x, a, 8);
      std::memcpy(&y, b, 8);
      if (x != y) return false;
      a += 8;
      b += 8;
      n -= 8;
    }
    for (; n; --n) {
      if (*a++ != *b++) return false;
    }
    return true;
  }

  const ValueOps* ops() const noexcept;
  std::uint8_t flags() const noexcept { return flags_.load(std::memory_order_relaxed); }
  void store_flags(std::uint8_t f) noexcept { flags_.store(f, std::memory_order_relaxed); }
  // The value of an in-place type, accessed as one atomic word (the value
  // object's bytes; ValueOps gives such types 8 bytes at 8-byte alignment).
  // Its offset needs no type lookup: an 8-byte word, 8-byte aligned, after
  // the key (as value_offset() computes for such a type).
  std::atomic_ref<std::uint64_t> value_word() const noexcept {
    const std::size_t at = (sizeof(Entry) + key_len_ + 7) & ~std::size_t{7};
    return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(
        const_cast<char*>(reinterpret_cast<const char*>(this)) + at));
  }
  static constexpr std::uint32_t kRefMask = (std::uint32_t{1} << 24) - 1;
  static constexpr std::uint32_t kUpdateOne = std::uint32_t{1} << 24;
  std::uint32_t out_of_line_charge() const noexcept;
  // Where the out-of-line charge is (create() and destroy() size the
  // allocation with it), given the end of the value.
  static std::size_t charge_offset(std::size_t value_end) noexcept { return (value_end + 3) & ~3u; }
  static constexpr std::uint16_t kChargeOutOfLine = 0xFFFF;

  // links_ holds 88 bits, little-endian: prev's address / 8 in bits 0..43,
  // next's in bits 44..87. prev is read from the 8 bytes at links_[0], next
  // from the 8 bytes at links_[3] (bits 24..87), so no access leaves links_.
  static constexpr std::uint64_t kLinkMask = (std::uint64_t{1} << 44) - 1;
  std::uint64_t load_links(std::size_t at) const noexcept {
    std::uint64_t w;
    std::memcpy(&w, links_ + at, 8);
    return w;
  }
  void store_links(std::size_t at, std::uint64_t w) noexcept { std::memcpy(links_ + at, &w, 8); }
  static std::uint64_t to_bits(const Entry* e) noexcept {
    return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(e)) >> 3;
  }
  static Entry* from_bits(std::uint64_t b) noexcept {
    return reinterpret_cast<Entry*>(static_cast<std::uintptr_t>(b << 3));
  }

  // 40 bytes: with a 16-byte key and an 8-byte value an entry is one 64-byte
  // slab slot.
  std::atomic<std::int64_t> expire_ns_{0};  // atomic: updates in place rewrite it
  TenantId tenant_{};
  std::atomic<std::uint32_t> refs_{1};  // references (low 24 bits), updates (top 8)
  std::uint16_t version_ = 0;  // low 16 bits of the namespace version at insert
  std::uint16_t key_len_ = 0;
  std::uint8_t type_ = 0;  // index into the type registry; 0 = negative entry
  std::atomic<std::uint8_t> freq_{0};
  std::atomic<std::uint8_t> flags_{0};
  unsigned char links_[11] = {};  // prev and next (see prev())
  std::uint16_t charge_ = 0;      // kChargeOutOfLine: see charge()
};

// A handle for a pin held in a reader record's pin slot (reclaim.h): what
// Engine::lookup returns instead of a referenced entry when a slot is free.
// The public helpers (ref, unref, share, value_of …) accept both kinds.
Entry* pin_handle(std::atomic<void*>* slot) noexcept;

// Value types are registered once per process (at Cache<V>::open) and named
// by a one-byte index in each entry, instead of an 8-byte pointer. Returns
// the index (1..255), or kResourceExhausted past 255 distinct types.
Result<std::uint8_t> register_type(const ValueOps* ops);

static_assert(sizeof(void*) == 8 && std::endian::native == std::endian::little,
              "Entry packs 48-bit addresses into little-endian words");
static_assert(sizeof(Entry) == 40,
              "keep the entry header at 40 bytes: it is most of the per-entry cost");

// Longest key accepted (bytes).
inline constexpr std::size_t kMaxKeyLength = 65535;

}  // namespace callcache::internal
