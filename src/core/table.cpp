#include "table.h"

#include <algorithm>
#include <cmath>
#include <new>

namespace callcache::internal {

static_assert(sizeof(Table::Array) % alignof(std::atomic<std::uint64_t>) == 0);

Table::Array* Table::new_array(std::size_t n) {
  void* mem = ::operator new(sizeof(Array) + n * sizeof(std::atomic<std::uint64_t>));
  auto* a = ::new (mem) Array{n};
  for (std::size_t i = 0; i < n; ++i) ::new (&a->slots()[i]) std::atomic<std::uint64_t>(kEmpty);
  return a;
}

void Table::free_array(void* a) noexcept { ::operator delete(a); }

Table::Table(std::uint64_t max_entries) {
  max_slots_ = static_cast<std::size_t>(std::ceil(static_cast<double>(max_entries) / kMaxLoad)) + 1;
  const std::size_t initial = std::min<std::size_t>(max_slots_, 16);
  array_.store(new_array(initial), std::memory_order_relaxed);
  limit_ = initial == max_slots_
               ? initial - 1
               : static_cast<std::size_t>(static_cast<double>(initial) * kMaxLoad);
}

Table::~Table() {
  free_array(array_.load(std::memory_order_relaxed));
  for (Array* a : replaced_) free_array(a);
}

void Table::place(Array* a, std::uint64_t hash, std::uint64_t slot,
                  std::size_t* tombstones) noexcept {
  std::size_t i = index_of(hash, a->size);
  for (;;) {
    const std::uint64_t s = a->slots()[i].load(std::memory_order_relaxed);
    if (s == kEmpty || s == kTombstone) {
      if (s == kTombstone && tombstones) --*tombstones;
      a->slots()[i].store(slot, slot_order());
      return;
    }
    if (++i == a->size) i = 0;
  }
}

void Table::rehash(std::size_t n) {
  Array* old = array_.load(std::memory_order_relaxed);
  Array* a = new_array(n);
  for (std::size_t i = 0; i < old->size; ++i) {
    const std::uint64_t s = old->slots()[i].load(std::memory_order_relaxed);
    if (s != kEmpty && s != kTombstone) place(a, hash_of(seed_, ptr_of(s)), s, nullptr);
  }
  tombstones_ = 0;
  limit_ = n == max_slots_ ? n - 1 : static_cast<std::size_t>(static_cast<double>(n) * kMaxLoad);
  array_.store(a, std::memory_order_seq_cst);  // publishes the filled array
  replaced_.push_back(old);
}

void Table::insert(std::uint64_t hash, Entry* e) {
  assert((reinterpret_cast<std::uint64_t>(e) & kTagMask) == 0);
  assert(reinterpret_cast<std::uint64_t>(e) > kTombstone);
  if (count_ + tombstones_ + 1 > limit_) {
    // Mostly tombstones: clean up; otherwise grow (up to the cap).
    std::size_t n = array_.load(std::memory_order_relaxed)->size;
    if (n < max_slots_ && tombstones_ < count_ / 2)
      n = std::min(max_slots_, std::max<std::size_t>(n * 2, 16));
    rehash(n);
  }
  Array* a = array_.load(std::memory_order_relaxed);
  assert(count_ + 1 < a->size);
  place(a, hash, tag_of(hash) | reinterpret_cast<std::uint64_t>(e), &tombstones_);
  ++count_;
}

std::size_t Table::slot_of(const Array* a, std::uint64_t hash, const Entry* e) const noexcept {
  std::size_t i = index_of(hash, a->size);
  for (std::size_t n = 0; n < a->size; ++n) {
    const std::uint64_t s = a->slots()[i].load(std::memory_order_relaxed);
    if (s == kEmpty) return a->size;
    if (s != kTombstone && ptr_of(s) == e) return i;
    if (++i == a->size) i = 0;
  }
  return a->size;
}

void Table::replace(std::uint64_t hash, const Entry* old, Entry* now) noexcept {
  Array* a = array_.load(std::memory_order_relaxed);
  const std::size_t i = slot_of(a, hash, old);
  assert(i != a->size);
  a->slots()[i].store(tag_of(hash) | reinterpret_cast<std::uint64_t>(now), slot_order());
}

bool Table::contains(std::uint64_t hash, const Entry* e) const noexcept {
  const Array* a = array_.load(std::memory_order_relaxed);
  return slot_of(a, hash, e) != a->size;
}

bool Table::erase(std::uint64_t hash, const Entry* e) noexcept {
  Array* a = array_.load(std::memory_order_relaxed);
  const std::size_t i = slot_of(a, hash, e);
  if (i == a->size) return false;
  // A slot followed by an empty one can become empty itself: no probe run
  // passes through it.
  const std::size_t next = i + 1 == a->size ? 0 : i + 1;
  if (a->slots()[next].load(std::memory_order_relaxed) == kEmpty) {
    a->slots()[i].store(kEmpty, slot_order());
  } else {
    a->slots()[i].store(kTombstone, slot_order());
    ++tombstones_;
  }
  --count_;
  return true;
}

}  // namespace callcache::internal
