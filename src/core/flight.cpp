#include "core/flight.h"

#include <cassert>
#include <utility>

namespace callcache::internal {

namespace {
// Cooldown entries are pruned (expired ones dropped) when a shard holds more.
constexpr std::size_t kCooldownPruneAt = 1024;

std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}
}  // namespace

std::size_t FlightKeyHash::operator()(const FlightKey& k) const noexcept {
  std::uint64_t h = std::hash<std::string_view>{}(k.key);
  return static_cast<std::size_t>(mix(h ^ mix(k.tenant) ^ (std::uint64_t{k.ns} << 32)));
}

FlightTable::FlightTable(std::size_t shards)
    : shards_(std::make_unique<Shard[]>(shards)),
      mask_(shards - 1),
      life_(std::make_shared<TableLife>()) {
  assert(shards > 0 && (shards & (shards - 1)) == 0);
}

FlightTable::~FlightTable() = default;

FlightTable::Shard& FlightTable::shard_of(const FlightKey& key, std::size_t* index) {
  // The high bits pick the shard; unordered_map buckets use the low ones.
  std::size_t i = (FlightKeyHash{}(key) >> 40) & mask_;
  if (index) *index = i;
  return shards_[i];
}

FlightTable::Joined FlightTable::join(const FlightKey& key, FlightWaiter waiter, bool refresh) {
  std::size_t index;
  Shard& s = shard_of(key, &index);
  std::lock_guard lock(s.mu);
  auto it = s.flights.find(key);
  if (it != s.flights.end()) {
    // Joining is allowed until finish() removes the flight (kCompleting too).
    assert(it->second->state_ != Flight::State::kDone);
    if (waiter) it->second->waiters_.push_back(std::move(waiter));
    return {it->second, false};
  }
  std::shared_ptr<Flight> f(new Flight(key, index, refresh));
  if (waiter) f->waiters_.push_back(std::move(waiter));
  s.flights.emplace(key, f);
  return {std::move(f), true};
}

std::shared_ptr<Flight> FlightTable::start_refresh(const FlightKey& key, TimePoint now) {
  std::size_t index;
  Shard& s = shard_of(key, &index);
  std::lock_guard lock(s.mu);
  if (s.flights.count(key)) return nullptr;
  if (auto c = s.cooldown.find(key); c != s.cooldown.end()) {
    if (now < c->second) return nullptr;
    s.cooldown.erase(c);
  }
  std::shared_ptr<Flight> f(new Flight(key, index, /*refresh=*/true));
  s.flights.emplace(key, f);
  return f;
}

bool FlightTable::claim(Flight& f) {
  Shard& s = shards_[f.shard_];
  std::lock_guard lock(s.mu);
  if (f.state_ != Flight::State::kLoading) return false;
  f.state_ = Flight::State::kCompleting;
  return true;
}

void FlightTable::finish(Flight& f, Entry* entry, const Status& status, bool from_second_tier) {
  assert((entry != nullptr) == status.ok());
  std::vector<FlightWaiter> waiters;
  {
    Shard& s = shards_[f.shard_];
    std::lock_guard lock(s.mu);
    assert(f.state_ == Flight::State::kCompleting);
    f.state_ = Flight::State::kDone;
    auto it = s.flights.find(f.key_);
    if (it != s.flights.end() && it->second.get() == &f) s.flights.erase(it);
    waiters.swap(f.waiters_);
  }
  for (auto& w : waiters) w(entry, status, from_second_tier);
}

void FlightTable::set_cooldown(const FlightKey& key, TimePoint now, TimePoint until) {
  Shard& s = shard_of(key, nullptr);
  std::lock_guard lock(s.mu);
  if (s.cooldown.size() >= kCooldownPruneAt) {
    for (auto it = s.cooldown.begin(); it != s.cooldown.end();) {
      it = it->second <= now ? s.cooldown.erase(it) : std::next(it);
    }
  }
  s.cooldown[key] = until;
}

void FlightTable::clear_cooldown(const FlightKey& key) {
  Shard& s = shard_of(key, nullptr);
  std::lock_guard lock(s.mu);
  if (!s.cooldown.empty()) s.cooldown.erase(key);
}

namespace {
// How many enter()s of one TableLife the current thread is inside.
thread_local const TableLife* tl_inside = nullptr;
thread_local std::size_t tl_depth = 0;
}  // namespace

bool TableLife::enter() {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  ++active_;
  if (tl_inside == this) {
    ++tl_depth;
  } else if (tl_depth == 0) {
    tl_inside = this;
    tl_depth = 1;
  }
  return true;
}

void TableLife::leave() {
  std::lock_guard lock(mu_);
  assert(active_ > 0);
  --active_;
  if (tl_inside == this && --tl_depth == 0) tl_inside = nullptr;
  cv_.notify_all();
}

void TableLife::close() {
  std::unique_lock lock(mu_);
  closed_ = true;
  const std::size_t mine = tl_inside == this ? tl_depth : 0;
  cv_.wait(lock, [&] { return active_ <= mine; });
}

bool TableLife::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

void FlightTable::close() {
  life_->close();
  // Nothing outside the closing thread completes flights any more: fail the
  // ones still waiting for a loader that will never be heard.
  std::vector<std::shared_ptr<Flight>> pending;
  for (std::size_t i = 0; i <= mask_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    for (auto& [key, f] : shards_[i].flights) {
      if (f->state_ == Flight::State::kLoading) {
        f->state_ = Flight::State::kCompleting;
        pending.push_back(f);
      }
    }
  }
  for (auto& f : pending) {
    finish(*f, nullptr,
           Status::shutdown("cache engine destroyed while loading '" + f->key().key + "'"));
  }
}

bool FlightTable::closed() const { return life_->closed(); }

std::size_t FlightTable::in_flight() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i <= mask_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].flights.size();
  }
  return n;
}

}  // namespace callcache::internal
