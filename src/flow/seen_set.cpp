#include "callcache/seen_set.h"

#include <algorithm>
#include <charconv>
#include <iterator>

namespace callcache {
namespace {
std::int64_t ns_of(TimePoint t) { return t.time_since_epoch().count(); }
}  // namespace

Result<std::unique_ptr<SeenSet>> SeenSet::create(SeenSetOptions options) {
  if (options.capacity == 0) return Status::invalid_argument("seen set: capacity must be at least 1");
  if (options.ttl <= Duration::zero()) {
    return Status::invalid_argument("seen set: ttl must be greater than zero");
  }
  return std::unique_ptr<SeenSet>(new SeenSet(std::move(options)));
}

SeenSet::SeenSet(SeenSetOptions options)
    : options_(std::move(options)), clock_(options_.clock ? options_.clock : &default_clock()) {
  index_.reserve(std::min<std::size_t>(options_.capacity, 1 << 16));
}

std::size_t SeenSet::expire_locked(std::int64_t now_ns) {
  std::size_t n = 0;
  const std::int64_t ttl = options_.ttl.count();
  while (!order_.empty() && order_.front().seen_ns <= now_ns - ttl) {
    index_.erase(std::string_view(order_.front().id));
    order_.pop_front();
    ++n;
  }
  stats_.expired += n;
  return n;
}

bool SeenSet::insert_if_new(std::string_view id) {
  std::lock_guard lock(mu_);
  const std::int64_t now = ns_of(clock_->now());
  expire_locked(now);
  auto it = index_.find(id);
  if (it != index_.end()) {
    ++stats_.duplicates;
    if (options_.refresh_on_repeat) {
      it->second->seen_ns = now;
      order_.splice(order_.end(), order_, it->second);
    }
    return false;
  }
  if (order_.size() >= options_.capacity) {
    index_.erase(std::string_view(order_.front().id));
    order_.pop_front();
    ++stats_.evicted;
  }
  order_.push_back(Node{std::string(id), now});
  auto last = std::prev(order_.end());
  index_.emplace(std::string_view(last->id), last);
  ++stats_.inserted;
  return true;
}

bool SeenSet::insert_if_new(std::int64_t id) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, id);
  (void)ec;
  return insert_if_new(std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

bool SeenSet::contains(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return false;
  return it->second->seen_ns > ns_of(clock_->now()) - options_.ttl.count();
}

bool SeenSet::erase(std::string_view id) {
  std::lock_guard lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return false;
  auto node = it->second;
  index_.erase(it);
  order_.erase(node);
  return true;
}

std::size_t SeenSet::cleanup_expired() {
  std::lock_guard lock(mu_);
  return expire_locked(ns_of(clock_->now()));
}

std::size_t SeenSet::size() const {
  std::lock_guard lock(mu_);
  return order_.size();
}

SeenSetStats SeenSet::stats() const {
  std::lock_guard lock(mu_);
  SeenSetStats s = stats_;
  s.size = order_.size();
  s.capacity = options_.capacity;
  return s;
}

}  // namespace callcache
