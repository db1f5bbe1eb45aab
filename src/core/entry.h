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
// version, the negative flag, the value) is fixed before the entry is
// published in a table and never changes after. `prev`, `next` and the other
// flags change only under the owning shard's lock (flags are an atomic byte
// because lookups read the negative flag beside them). `refs` and `freq` are
// atomics touched on the hit path. The entry's memory stays valid for
// lookups still reading it after it is unlinked: the shard keeps its
// reference until a grace period has passed (reclaim.h).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

#include "callcache/internal/engine_access.h"
#include "callcache/status.h"

namespace callcache::internal {

class Entry {
 public:
  enum Flag : std::uint8_t {
    kLinked = 1,      // in a shard's table and queues
    kNegative = 2,    // value is a Status (a remembered failure)
    kMain = 4,        // S3-FIFO / W-TinyLFU: in the main area (else the small queue or window)
    kTagged = 8,      // has tags registered in the shard's tag index
    kProtected = 16,  // W-TinyLFU: in main's protected segment (else probation)
    kFresh = 32,      // W-TinyLFU: in the window and not yet passed over since inserted
  };

  // Allocates an entry; moves *value in (or copies `error` for a negative
  // entry). The new entry holds one reference (the caller's).
  // `type` is ops' index in the type registry (register_type); ops ==
  // nullptr makes a negative entry holding a copy of *error.
  static Entry* create(const ValueOps* ops, std::uint8_t type, void* value, const Status* error,
                       TenantId tenant, std::string_view key, std::uint32_t charge,
                       TimePoint expire, std::uint16_t version);

  void ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
  }
  std::uint32_t refs() const noexcept { return refs_.load(std::memory_order_relaxed); }

  std::string_view key() const noexcept {
    return {reinterpret_cast<const char*>(this + 1), key_len_};
  }
  const void* value() const noexcept {
    return reinterpret_cast<const char*>(this) + value_offset();
  }
  const Status& error() const noexcept { return *static_cast<const Status*>(value()); }

  TenantId tenant() const noexcept { return tenant_; }
  std::uint32_t charge() const noexcept { return charge_; }
  std::uint16_t version() const noexcept { return version_; }
  TimePoint expire() const noexcept { return expire_; }

  bool has(Flag f) const noexcept { return flags_.load(std::memory_order_relaxed) & f; }
  // Writers only (the owning shard's lock held).
  void set(Flag f) noexcept {
    flags_.store(static_cast<std::uint8_t>(flags_.load(std::memory_order_relaxed) | f),
                 std::memory_order_relaxed);
  }
  void clear(Flag f) noexcept {
    flags_.store(static_cast<std::uint8_t>(flags_.load(std::memory_order_relaxed) & ~f),
                 std::memory_order_relaxed);
  }
  // Sets the flags in `mask` as they are on `from`. Writers only.
  void copy_flags(const Entry& from, std::uint8_t mask) noexcept {
    const std::uint8_t mine = flags_.load(std::memory_order_relaxed);
    const std::uint8_t theirs = from.flags_.load(std::memory_order_relaxed);
    flags_.store(static_cast<std::uint8_t>((mine & ~mask) | (theirs & mask)),
                 std::memory_order_relaxed);
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

  // Intrusive queue links, owned by the shard's eviction strategy.
  Entry* prev = nullptr;
  Entry* next = nullptr;

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

  // 48 bytes: with a 16-byte key and an 8-byte value an entry is one 72-byte
  // slab slot.
  TimePoint expire_{};
  TenantId tenant_{};
  std::atomic<std::uint32_t> refs_{1};
  std::uint32_t charge_ = 0;
  std::uint16_t version_ = 0;  // low 16 bits of the namespace version at insert
  std::uint16_t key_len_ = 0;
  std::atomic<std::uint8_t> flags_{0};
  std::atomic<std::uint8_t> freq_{0};
  std::uint8_t type_ = 0;  // index into the type registry; 0 = negative entry
  bool in_slab_ = false;   // memory is a slab slot (else operator new)
};

// A handle for a pin held in a reader record's pin slot (reclaim.h): what
// Engine::lookup returns instead of a referenced entry when a slot is free.
// The public helpers (ref, unref, share, value_of …) accept both kinds.
Entry* pin_handle(std::atomic<void*>* slot) noexcept;

// Value types are registered once per process (at Cache<V>::open) and named
// by a one-byte index in each entry, instead of an 8-byte pointer. Returns
// the index (1..255), or kResourceExhausted past 255 distinct types.
Result<std::uint8_t> register_type(const ValueOps* ops);

static_assert(sizeof(Entry) == 48,
              "keep the entry header at 48 bytes: it is most of the per-entry cost");

// Longest key accepted (bytes).
inline constexpr std::size_t kMaxKeyLength = 65535;

}  // namespace callcache::internal
