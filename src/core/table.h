// Internal: an open-addressing hash table of Entry pointers (linear probing,
// backward-shift deletion, no tombstones), one per shard.
//
// A slot packs a 16-bit hash tag with the 48-bit pointer, so most probes that
// do not match are rejected without touching the entry. The table size is not
// a power of two: indices come from a multiply-shift ("fastrange"), so the
// table can stop growing exactly at capacity / max load instead of doubling
// past it.
//
// Not synchronised: the owning shard holds its shared lock to find and its
// exclusive lock to insert, erase or resize.
#pragma once

#include <cassert>
#include <cstdint>
#include <string_view>
#include <vector>

#include "entry.h"
#include "hash.h"

namespace callcache::internal {

class Table {
 public:
  // `max_entries` is the shard's bound: the table never grows past what that
  // many entries need at the maximum load factor.
  explicit Table(std::uint64_t max_entries);

  Entry* find(std::uint64_t hash, TenantId tenant, std::string_view key) const noexcept {
    const std::uint64_t tag = tag_of(hash);
    std::size_t i = index_of(hash);
    for (;;) {
      const std::uint64_t s = slots_[i];
      if (s == kEmpty) return nullptr;
      if ((s & kTagMask) == tag && s != kTombstone) {
        Entry* e = ptr_of(s);
        if (e->matches(tenant, key)) return e;
      }
      if (++i == slots_.size()) i = 0;
    }
  }

  // REQUIRES: no entry with the same tenant and key is present.
  void insert(std::uint64_t hash, Entry* e);
  // Puts `now` in the slot of `old` (same identity, so the same hash).
  // REQUIRES: old is present.
  void replace(std::uint64_t hash, const Entry* old, Entry* now) noexcept {
    std::size_t i = index_of(hash);
    while (slots_[i] == kTombstone || ptr_of(slots_[i]) != old) {
      assert(slots_[i] != kEmpty);
      if (++i == slots_.size()) i = 0;
    }
    slots_[i] = tag_of(hash) | reinterpret_cast<std::uint64_t>(now);
  }

  // Removes `e` (found by identity). Returns false if absent.
  bool erase(std::uint64_t hash, const Entry* e) noexcept;

  std::size_t size() const noexcept { return count_; }
  std::size_t slot_count() const noexcept { return slots_.size(); }

  // Calls f(Entry*) for every entry. f must not modify the table.
  template <class F>
  void for_each(F&& f) const {
    for (std::uint64_t s : slots_) {
      if (s != kEmpty && s != kTombstone) f(ptr_of(s));
    }
  }

  // Hash of an entry's identity under `seed` (for rehashing).
  static std::uint64_t hash_of(std::uint64_t seed, const Entry* e) noexcept {
    return hash_key(seed, e->tenant().value, e->key());
  }

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
  std::size_t index_of(std::uint64_t hash) const noexcept {
    return static_cast<std::size_t>((static_cast<u128>(hash >> 16) * slots_.size()) >> 48);
  }
  void rehash(std::size_t slots);
  void place(std::uint64_t hash, std::uint64_t slot) noexcept;

  std::vector<std::uint64_t> slots_;
  std::size_t count_ = 0;
  std::size_t tombstones_ = 0;
  std::size_t limit_ = 0;     // rehash when count_ + tombstones_ reaches this
  std::size_t max_slots_ = 0;  // never grow past this
  std::uint64_t seed_ = 0;     // set by the shard, for rehashing on growth

 public:
  void set_seed(std::uint64_t seed) noexcept { seed_ = seed; }
};

}  // namespace callcache::internal
