// Internal: PostWriteState — which cached reads must skip the cache for a
// moment because a write just changed what they return.
//
// After setChatTitle the Bot API itself may still answer getChat with the old
// title for a few seconds; a gateway that refilled its cache from such an
// answer would serve the old title for a whole TTL. So a write marks the
// scopes it affects ("getChat of chat -100123 of bot T") until now + window,
// and reads in a marked scope go upstream and are not stored.
//
// Scope ids are opaque strings built by the planner (they embed the tenant
// id, never a token). Memory is bounded: at most `max_entries` live scopes;
// when full, expired scopes are dropped first, then those ending soonest.
//
// Thread-safety: all members may be called concurrently. The state is split
// into 16 shards, each guarded by its own mutex; a read that finds no window
// open anywhere (the common case) takes no lock at all.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "callcache/clock.h"

namespace callcache::gateway::logic {

class PostWriteState {
 public:
  // REQUIRES: max_entries > 0.
  explicit PostWriteState(std::size_t max_entries = 65536);
  PostWriteState(const PostWriteState&) = delete;
  PostWriteState& operator=(const PostWriteState&) = delete;

  // Reads in scope `id` bypass the cache until `until` (a later mark of the
  // same scope extends the window, an earlier one never shortens it).
  void mark(std::string_view id, TimePoint until);
  void mark(std::span<const std::string> ids, TimePoint until);

  // True if scope `id` is inside a window at `now`.
  bool bypassing(std::string_view id, TimePoint now) const;

  // False when no window can be open at `now` (one atomic load): callers may
  // then skip building scope ids. True does not mean any particular scope is.
  bool any_open(TimePoint now) const noexcept {
    return now.time_since_epoch().count() < latest_until_.load(std::memory_order_acquire);
  }

  // Scopes remembered (live or not yet purged). For tests and metrics.
  std::size_t size() const;

 private:
  static constexpr std::size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    // Scope id → end of its window. Guarded by mu; never more than
    // per_shard_max_ entries.
    std::unordered_map<std::string, TimePoint> until;
  };

  Shard& shard_for(std::string_view id) const;

  std::size_t per_shard_max_;
  // The latest window end ever marked (ns since epoch). Reads at or after it
  // need no lock: no window can be open. Only grows.
  std::atomic<std::int64_t> latest_until_{0};
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace callcache::gateway::logic
