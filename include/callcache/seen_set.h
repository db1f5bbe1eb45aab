// callcache/seen_set.h — a bounded, TTL'd set of processed ids (message
// de-duplication).
//
// An update handler calls insert_if_new(id) and skips the update when it
// returns false. The set forgets an id `ttl` after it was last seen, and holds
// at most `capacity` ids: when full, the least recently seen id is evicted
// to make room (it is then "new" again if it comes back). Every operation is
// O(1) (amortised: expired ids are dropped from the oldest end as they are
// met).
//
// Thread-safety: every member may be called from any thread (one internal
// mutex).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache {

struct SeenSetOptions {
  std::size_t capacity = 100'000;          // >= 1
  Duration ttl = std::chrono::hours(1);    // > 0
  // A repeat sighting refreshes the id (its TTL restarts and it becomes the
  // most recently seen). false: ids are forgotten `ttl` after the first sighting.
  bool refresh_on_repeat = true;
  const Clock* clock = nullptr;  // nullptr = default_clock(); must outlive the set
};

struct SeenSetStats {
  std::uint64_t inserted = 0;    // insert_if_new() calls that returned true
  std::uint64_t duplicates = 0;  // insert_if_new() calls that returned false
  std::uint64_t evicted = 0;     // ids dropped because the set was full (LRU)
  std::uint64_t expired = 0;     // ids dropped because their TTL passed
  std::uint64_t size = 0;
  std::uint64_t capacity = 0;

  // {"inserted":N,...}
  std::string to_json() const;
  // callcache_seen_<counter>{set="<name>"} N lines (Prometheus text format).
  std::string to_prometheus(std::string_view name) const;
};

class SeenSet {
 public:
  // kInvalidArgument naming the option when `options` are bad.
  static Result<std::unique_ptr<SeenSet>> create(SeenSetOptions options);

  SeenSet(const SeenSet&) = delete;
  SeenSet& operator=(const SeenSet&) = delete;

  // Records `id`. Returns true if it was not in the set (first sighting, or
  // forgotten since), false if it is a duplicate.
  bool insert_if_new(std::string_view id);
  // The same for a numeric id (e.g. an update_id).
  bool insert_if_new(std::int64_t id);

  // True if `id` is in the set (not expired). Does not refresh it.
  bool contains(std::string_view id) const;
  // Forgets `id`. Returns true if it was present.
  bool erase(std::string_view id);
  // Drops every expired id now. Returns how many.
  std::size_t cleanup_expired();
  // Ids held, including expired ones not dropped yet (see cleanup_expired()).
  std::size_t size() const;
  SeenSetStats stats() const;

 private:
  explicit SeenSet(SeenSetOptions options);
  struct Node {
    std::string id;
    std::int64_t seen_ns;  // last sighting (or first, without refresh_on_repeat)
  };
  using List = std::list<Node>;
  // REQUIRES: mu_ held.
  std::size_t expire_locked(std::int64_t now_ns);

  const SeenSetOptions options_;
  const Clock* clock_;
  mutable std::mutex mu_;  // guards order_, index_, stats_
  // Oldest sighting first. Invariant: seen_ns never decreases along the list,
  // so expired ids are always at the front; index_.size() == order_.size().
  List order_;
  // Keys view the id strings held by order_'s nodes (stable: list nodes never move).
  std::unordered_map<std::string_view, List::iterator> index_;
  SeenSetStats stats_;
};

}  // namespace callcache
