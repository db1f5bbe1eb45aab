#include "table.h"

#include <algorithm>
#include <cmath>

namespace callcache::internal {

Table::Table(std::uint64_t max_entries) {
  max_slots_ = static_cast<std::size_t>(std::ceil(static_cast<double>(max_entries) / kMaxLoad)) + 1;
  std::size_t initial = std::min<std::size_t>(max_slots_, 16);
  slots_.assign(initial, 0);
  limit_ = slots_.size() == max_slots_ ? slots_.size() - 1
                                       : static_cast<std::size_t>(static_cast<double>(slots_.size()) * kMaxLoad);
}

void Table::place(std::uint64_t hash, std::uint64_t slot) noexcept {
  std::size_t i = index_of(hash);
  while (slots_[i] != kEmpty && slots_[i] != kTombstone) {
    if (++i == slots_.size()) i = 0;
  }
  if (slots_[i] == kTombstone) --tombstones_;
  slots_[i] = slot;
}

void Table::rehash(std::size_t n) {
  std::vector<std::uint64_t> old(n, kEmpty);
  old.swap(slots_);
  tombstones_ = 0;
  for (std::uint64_t s : old) {
    if (s != kEmpty && s != kTombstone) place(hash_of(seed_, ptr_of(s)), s);
  }
  limit_ = n == max_slots_ ? n - 1 : static_cast<std::size_t>(static_cast<double>(n) * kMaxLoad);
}

void Table::insert(std::uint64_t hash, Entry* e) {
  assert((reinterpret_cast<std::uint64_t>(e) & kTagMask) == 0);
  assert(reinterpret_cast<std::uint64_t>(e) > kTombstone);
  if (count_ + tombstones_ + 1 > limit_) {
    // Mostly tombstones: clean up in place; otherwise grow (up to the cap).
    std::size_t n = slots_.size();
    if (n < max_slots_ && tombstones_ < count_ / 2) n = std::min(max_slots_, std::max<std::size_t>(n * 2, 16));
    rehash(n);
  }
  assert(count_ + 1 < slots_.size());
  place(hash, tag_of(hash) | reinterpret_cast<std::uint64_t>(e));
  ++count_;
}

bool Table::erase(std::uint64_t hash, const Entry* e) noexcept {
  std::size_t i = index_of(hash);
  for (;;) {
    std::uint64_t s = slots_[i];
    if (s == kEmpty) return false;
    if (s != kTombstone && ptr_of(s) == e) break;
    if (++i == slots_.size()) i = 0;
  }
  // A slot followed by an empty one can become empty itself: no probe run
  // passes through it.
  std::size_t next = i + 1 == slots_.size() ? 0 : i + 1;
  if (slots_[next] == kEmpty) {
    slots_[i] = kEmpty;
  } else {
    slots_[i] = kTombstone;
    ++tombstones_;
  }
  --count_;
  return true;
}

}  // namespace callcache::internal
