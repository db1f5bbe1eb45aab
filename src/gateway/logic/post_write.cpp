#include "post_write.h"

#include <algorithm>
#include <cassert>
#include <functional>

namespace callcache::gateway::logic {

PostWriteState::PostWriteState(std::size_t max_entries)
    : per_shard_max_(std::max<std::size_t>(1, (max_entries + kShards - 1) / kShards)) {
  assert(max_entries > 0);
}

PostWriteState::Shard& PostWriteState::shard_for(std::string_view id) const {
  return shards_[std::hash<std::string_view>{}(id) % kShards];
}

void PostWriteState::mark(std::string_view id, TimePoint until) {
  const std::int64_t u = until.time_since_epoch().count();
  std::int64_t prev = latest_until_.load(std::memory_order_relaxed);
  while (prev < u && !latest_until_.compare_exchange_weak(prev, u, std::memory_order_release)) {
  }
  Shard& s = shard_for(id);
  std::lock_guard lock(s.mu);
  auto it = s.until.find(std::string(id));
  if (it != s.until.end()) {
    it->second = std::max(it->second, until);
    return;
  }
  if (s.until.size() >= per_shard_max_) {
    // Full: drop the window(s) ending soonest. Windows already over end
    // before any open one, so they go first; an open window is dropped only
    // when max_entries windows are open at once (the bound wins).
    TimePoint earliest = TimePoint::max();
    for (const auto& [k, t] : s.until) earliest = std::min(earliest, t);
    std::erase_if(s.until, [&](const auto& kv) { return kv.second <= earliest; });
  }
  s.until.emplace(std::string(id), until);
}

void PostWriteState::mark(std::span<const std::string> ids, TimePoint until) {
  for (const auto& id : ids) mark(id, until);
}

bool PostWriteState::bypassing(std::string_view id, TimePoint now) const {
  if (!any_open(now)) return false;
  Shard& s = shard_for(id);
  std::lock_guard lock(s.mu);
  auto it = s.until.find(std::string(id));
  if (it == s.until.end()) return false;
  if (it->second <= now) {
    s.until.erase(it);  // over: reclaim eagerly
    return false;
  }
  return true;
}

std::size_t PostWriteState::size() const {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.until.size();
  }
  return n;
}

}  // namespace callcache::gateway::logic
