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
  while (slots_[i] != 0) {
    if (++i == slots_.size()) i = 0;
  }
  slots_[i] = slot;
}

void Table::grow() {
  std::size_t n = std::min(max_slots_, std::max<std::size_t>(slots_.size() * 2, 16));
  if (n <= slots_.size()) return;
  std::vector<std::uint64_t> old(n, 0);
  old.swap(slots_);
  for (std::uint64_t s : old) {
    if (s) place(hash_of(seed_, ptr_of(s)), s);
  }
  limit_ = n == max_slots_ ? n - 1 : static_cast<std::size_t>(static_cast<double>(n) * kMaxLoad);
}

void Table::insert(std::uint64_t hash, Entry* e) {
  assert((reinterpret_cast<std::uint64_t>(e) & kTagMask) == 0);
  if (count_ + 1 > limit_) grow();
  assert(count_ + 1 < slots_.size());
  place(hash, tag_of(hash) | reinterpret_cast<std::uint64_t>(e));
  ++count_;
}

bool Table::erase(std::uint64_t hash, const Entry* e) noexcept {
  const std::size_t n = slots_.size();
  std::size_t i = index_of(hash);
  for (;;) {
    std::uint64_t s = slots_[i];
    if (s == 0) return false;
    if (ptr_of(s) == e) break;
    if (++i == n) i = 0;
  }
  // Backward-shift deletion: pull later members of the probe run into the
  // hole when their home position allows it.
  std::size_t hole = i;
  std::size_t j = i;
  for (;;) {
    if (++j == n) j = 0;
    std::uint64_t s = slots_[j];
    if (s == 0) break;
    std::size_t home = index_of(hash_of(seed_, ptr_of(s)));
    // Distance from home to j and from home to hole, cyclically.
    std::size_t dist_j = (j + n - home) % n;
    std::size_t dist_hole = (hole + n - home) % n;
    if (dist_hole <= dist_j) {
      slots_[hole] = s;
      hole = j;
    }
  }
  slots_[hole] = 0;
  --count_;
  return true;
}

}  // namespace callcache::internal
