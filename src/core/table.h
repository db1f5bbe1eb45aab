// Internal: a shard's hash table — open addressing with linear probing over
// 8-byte slots, each holding an entry pointer (48 bits) and a 16-bit tag from
// the hash, so most non-matching slots are skipped without touching the
// entry. Slot indices come from a multiply-shift ("fastrange"), so the table
// can stop growing exactly at capacity / max load instead of doubling past it.
//
// Concurrency: one writer at a time (the owning shard's lock) and any number
// of lock-free readers inside a ReadSection (reclaim.h). Slots are atomics;
// a writer changes one slot per step, and every intermediate state is a
// valid table for readers:
// - an erased slot becomes a tombstone, or empty only when the next slot is
//   empty (so no probe run ever loses a slot it passes through);
// - growth and clean-up build a new slot array and publish it with one
//   pointer store; the old array is kept until the shard takes it to retire
//   (take_replaced), so readers still probing it finish safely.
// A reader may miss an entry inserted, or find one erased, concurrently with
// its lookup (the lookup is ordered before or after that write).
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "entry.h"
#include "hash.h"
#include "reclaim.h"

namespace callcache::internal {

class Table {
 public:
  // A slot array; freed with free_array (retired by the shard).
  // A header followed by `size` slots, in one allocation.
  struct Array {
    std::size_t size;
    std::atomic<std::uint64_t>* slots() noexcept {
      return reinterpret_cast<std::atomic<std::uint64_t>*>(this + 1);
    }
    const std::atomic<std::uint64_t>* slots() const noexcept {
      return reinterpret_cast<const std::atomic<std::uint64_t>*>(this + 1);
    }
  };
  static void free_array(void* a) noexcept;

  // `max_entries` is the shard's bound: the table never grows past what that
  // many entries need at the maximum load factor.
  explicit Table(std::uint64_t max_entries);
  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  // Readers (inside a ReadSection) and the writer. Always inlined: it is
  // most of a lookup, and the compiler stops inlining it into a long caller.
  [[gnu::always_inline]] Entry* find(std::uint64_t hash, TenantId tenant,
                                     std::string_view key) const noexcept {
    const Array* a = array_.load(std::memory_order_acquire);
    const std::uint64_t tag = tag_of(hash);
    std::size_t i = index_of(hash, a->size);
    for (;;) {
      const std::uint64_t s = a->slots()[i].load(std::memory_order_acquire);
      if (s == kEmpty) return nullptr;
      if ((s & kTagMask) == tag && s != kTombstone) {
        Entry* e = ptr_of(s);
        if (e->matches(tenant, key)) return e;
      }
      if (++i == a->size) i = 0;
    }
  }

  // ---- Writer only (the shard's lock held) ----

  // A slot found by find_slot: the entry there, and where it is (for
  // replace_at before the table changes again).
  struct Found {
    Entry* entry = nullptr;
    std::size_t index = 0;
  };
  Found find_slot(std::uint64_t hash, TenantId tenant, std::string_view key) const noexcept {
    const Array* a = array_.load(std::memory_order_relaxed);
    const std::uint64_t tag = tag_of(hash);
    std::size_t i = index_of(hash, a->size);
    for (;;) {
      const std::uint64_t s = a->slots()[i].load(std::memory_order_relaxed);
      if (s == kEmpty) return {};
      if ((s & kTagMask) == tag && s != kTombstone) {
        Entry* e = ptr_of(s);
        if (e->matches(tenant, key)) return {e, i};
      }
      if (++i == a->size) i = 0;
    }
  }
  // Puts `now` in the slot find_slot returned for an entry of the same
  // identity (so the same hash), with no change to the table in between.
  void replace_at(const Found& f, std::uint64_t hash, Entry* now) noexcept {
    Array* a = array_.load(std::memory_order_relaxed);
    assert(f.index < a->size &&
           ptr_of(a->slots()[f.index].load(std::memory_order_relaxed)) == f.entry);
    a->slots()[f.index].store(tag_of(hash) | reinterpret_cast<std::uint64_t>(now), slot_order());
  }

  // REQUIRES: no entry with the same tenant and key is present.
  void insert(std::uint64_t hash, Entry* e);
  // A slot array replaced by growth or clean-up, for the caller to free once
  // no reader can be probing it (nullptr if none). Arrays never taken are
  // freed with the table.
  Array* take_replaced() noexcept {
    if (replaced_.empty()) return nullptr;
    Array* a = replaced_.back();
    replaced_.pop_back();
    return a;
  }
  // Puts `now` in the slot of `old` (same identity, so the same hash).
  // REQUIRES: old is present.
  void replace(std::uint64_t hash, const Entry* old, Entry* now) noexcept;
  // Removes `e` (found by identity). Returns false if absent.
  bool erase(std::uint64_t hash, const Entry* e) noexcept;
  // Whether `e` is in the table, found from `hash` by identity without
  // reading *e (e may be a stale pointer).
  bool contains(std::uint64_t hash, const Entry* e) const noexcept;

  std::size_t size() const noexcept { return count_; }
  std::size_t slot_count() const noexcept { return array_.load(std::memory_order_relaxed)->size; }

  // Calls f(Entry*) for every entry. Writer, or a reader inside a
  // ReadSection (then entries may come and go during the walk).
  template <class F>
  void for_each(F&& f) const {
    const Array* a = array_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < a->size; ++i) {
      const std::uint64_t s = a->slots()[i].load(std::memory_order_acquire);
      if (s != kEmpty && s != kTombstone) f(ptr_of(s));
    }
  }

  // Hash of an entry's identity under `seed` (for rehashing).
  static std::uint64_t hash_of(std::uint64_t seed, const Entry* e) noexcept {
    return hash_key(seed, e->tenant().value, e->key());
  }
  void set_seed(std::uint64_t seed) noexcept { seed_ = seed; }

 private:
  static constexpr std::uint64_t kPtrMask = (std::uint64_t{1} << 48) - 1;
  static constexpr std::uint64_t kTagMask = ~kPtrMask;
  static constexpr std::uint64_t kEmpty = 0;
  static constexpr std::uint64_t kTombstone = 1;  // never a valid (aligned) pointer
  static constexpr double kMaxLoad = 0.8;

  static std::uint64_t tag_of(std::uint64_t hash) noexcept { return (hash << 48) & kTagMask; }
  static Entry* ptr_of(std::uint64_t slot) noexcept {
    return reinterpret_cast<Entry*>(slot & kPtrMask);
  }
  static std::size_t index_of(std::uint64_t hash, std::size_t n) noexcept {
    return static_cast<std::size_t>((static_cast<u128>(hash >> 16) * n) >> 48);
  }
  // How a writer stores a slot. A slot store must be ordered before the
  // grace-period snapshot of a later retire (reclaim.h): the writer's
  // membarrier and fence order it when readers do not fence; when they do
  // (no membarrier), the store is sequentially consistent, like theirs.
  static std::memory_order slot_order() noexcept {
    return readers_fence() ? std::memory_order_seq_cst : std::memory_order_release;
  }
  static Array* new_array(std::size_t n);
  void rehash(std::size_t slots);
  // Finds the slot holding `e` (by identity) or returns `size` if absent.
  std::size_t slot_of(const Array* a, std::uint64_t hash, const Entry* e) const noexcept;
  static void place(Array* a, std::uint64_t hash, std::uint64_t slot,
                    std::size_t* tombstones) noexcept;

  std::atomic<Array*> array_;
  std::vector<Array*> replaced_;
  std::size_t count_ = 0;
  std::size_t tombstones_ = 0;
  std::size_t limit_ = 0;      // rehash when count_ + tombstones_ reaches this
  std::size_t max_slots_ = 0;  // never grow past this
  std::uint64_t seed_ = 0;     // set by the shard, for rehashing on growth
};

}  // namespace callcache::internal
