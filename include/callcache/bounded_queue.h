// callcache/bounded_queue.h — a bounded multi-producer/multi-consumer queue
// with a declared overflow policy.
//
// Work handed from update handlers to workers must not grow without bound.
// A BoundedQueue holds at most `capacity` items; when it is full a push does
// what the queue's policy says:
//   kBlock       wait for room, up to a timeout (then kTimedOut);
//   kDropNewest  drop the item being pushed (kDroppedNewest);
//   kDropOldest  drop the oldest queued item to make room (kEnqueuedDroppedOldest);
//   kReject      refuse the item (kRejected): an error for the producer.
// close() starts shutdown: pushes fail with kClosed, consumers drain what is
// left and then get nullopt.
//
// Thread-safety: every member may be called from any thread. Items are
// moved in and out under one internal mutex; T's move operations must not
// call back into the queue. Blocking waits are measured on the queue's clock
// (a ManualClock advanced by another thread ends them too).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache {

enum class OverflowPolicy : std::uint8_t { kBlock, kDropNewest, kDropOldest, kReject };

// What happened to one push.
enum class PushOutcome : std::uint8_t {
  kEnqueued,               // queued
  kEnqueuedDroppedOldest,  // queued; the oldest item was dropped for it (kDropOldest)
  kDroppedNewest,          // the queue was full: this item was dropped (kDropNewest)
  kRejected,               // the queue was full: this item was refused (kReject)
  kTimedOut,               // the queue stayed full for the whole timeout (kBlock)
  kClosed,                 // the queue is closed: this item was refused
};

// True if the item pushed is now in the queue.
inline bool enqueued(PushOutcome o) {
  return o == PushOutcome::kEnqueued || o == PushOutcome::kEnqueuedDroppedOldest;
}
const char* push_outcome_name(PushOutcome o) noexcept;
const char* overflow_policy_name(OverflowPolicy p) noexcept;

struct BoundedQueueOptions {
  std::string name = "queue";  // for messages and stats
  std::size_t capacity = 1024;  // >= 1
  OverflowPolicy policy = OverflowPolicy::kBlock;
  // kBlock: how long push() waits for room by default (Duration::max() = no limit).
  Duration block_timeout = Duration::max();
  // Time source for timeouts; nullptr = default_clock(). Must outlive the queue.
  const Clock* clock = nullptr;
};

struct BoundedQueueStats {
  std::uint64_t enqueued = 0;
  std::uint64_t dequeued = 0;
  std::uint64_t dropped_newest = 0;
  std::uint64_t dropped_oldest = 0;
  std::uint64_t rejected = 0;
  std::uint64_t timed_out = 0;
  std::uint64_t refused_closed = 0;
  std::uint64_t high_water = 0;  // largest depth ever reached
  std::uint64_t depth = 0;       // items queued now
  std::uint64_t capacity = 0;
  bool closed = false;

  // {"enqueued":N,...,"closed":false}
  std::string to_json() const;
  // callcache_queue_<counter>{queue="<name>"} N lines (Prometheus text format).
  std::string to_prometheus(std::string_view name) const;
};

template <class T>
class BoundedQueue {
 public:
  // kInvalidArgument naming the option when `options` are bad.
  static Result<std::unique_ptr<BoundedQueue>> create(BoundedQueueOptions options) {
    if (options.capacity == 0) {
      return Status::invalid_argument("queue '" + options.name + "': capacity must be at least 1");
    }
    if (options.block_timeout < Duration::zero()) {
      return Status::invalid_argument("queue '" + options.name +
                                      "': block_timeout must not be negative");
    }
    return std::unique_ptr<BoundedQueue>(new BoundedQueue(std::move(options)));
  }

  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  // Pushes `item` under the queue's policy (kBlock waits up to block_timeout).
  // The item is consumed whatever the outcome.
  PushOutcome push(T item) { return push_for(std::move(item), options_.block_timeout); }

  // As push(), with this call's own timeout for kBlock (ignored by other policies).
  PushOutcome push_for(T item, Duration timeout) {
    std::unique_lock lock(mu_);
    if (closed_) return count(stats_.refused_closed, PushOutcome::kClosed);
    PushOutcome outcome = PushOutcome::kEnqueued;
    if (items_.size() >= options_.capacity) {
      switch (options_.policy) {
        case OverflowPolicy::kDropNewest:
          return count(stats_.dropped_newest, PushOutcome::kDroppedNewest);
        case OverflowPolicy::kReject:
          return count(stats_.rejected, PushOutcome::kRejected);
        case OverflowPolicy::kDropOldest:
          items_.pop_front();
          ++stats_.dropped_oldest;
          outcome = PushOutcome::kEnqueuedDroppedOldest;
          break;
        case OverflowPolicy::kBlock:
          if (!wait(lock, not_full_, timeout,
                    [&] { return closed_ || items_.size() < options_.capacity; })) {
            return count(stats_.timed_out, PushOutcome::kTimedOut);
          }
          if (closed_) return count(stats_.refused_closed, PushOutcome::kClosed);
          break;
      }
    }
    items_.push_back(std::move(item));
    ++stats_.enqueued;
    if (items_.size() > stats_.high_water) stats_.high_water = items_.size();
    lock.unlock();
    not_empty_.notify_one();
    return outcome;
  }

  // Never waits: as push(), except that under kBlock a full queue returns
  // nullopt, counts nothing and leaves `item` with the caller, so an event
  // loop can wait for room its own way and try again. `item` is moved from
  // only when the outcome is enqueued(); a dropped, rejected or closed push
  // leaves it too.
  std::optional<PushOutcome> try_push(T& item) {
    std::unique_lock lock(mu_);
    if (closed_) return count(stats_.refused_closed, PushOutcome::kClosed);
    PushOutcome outcome = PushOutcome::kEnqueued;
    if (items_.size() >= options_.capacity) {
      switch (options_.policy) {
        case OverflowPolicy::kBlock:
          return std::nullopt;
        case OverflowPolicy::kDropNewest:
          return count(stats_.dropped_newest, PushOutcome::kDroppedNewest);
        case OverflowPolicy::kReject:
          return count(stats_.rejected, PushOutcome::kRejected);
        case OverflowPolicy::kDropOldest:
          items_.pop_front();
          ++stats_.dropped_oldest;
          outcome = PushOutcome::kEnqueuedDroppedOldest;
          break;
      }
    }
    items_.push_back(std::move(item));
    ++stats_.enqueued;
    if (items_.size() > stats_.high_water) stats_.high_water = items_.size();
    lock.unlock();
    not_empty_.notify_one();
    return outcome;
  }

  const BoundedQueueOptions& options() const { return options_; }

  // Takes the oldest item, waiting for one; nullopt once closed and empty.
  std::optional<T> pop() { return pop_for(Duration::max()); }

  // As pop(), giving up after `timeout` (nullopt).
  std::optional<T> pop_for(Duration timeout) {
    std::unique_lock lock(mu_);
    if (!wait(lock, not_empty_, timeout, [&] { return closed_ || !items_.empty(); })) {
      return std::nullopt;
    }
    return take(lock);
  }

  // Takes the oldest item if there is one; never waits.
  std::optional<T> try_pop() {
    std::unique_lock lock(mu_);
    return take(lock);
  }

  // Removes and returns every queued item, oldest first; never waits.
  std::vector<T> drain() {
    std::vector<T> out;
    {
      std::lock_guard lock(mu_);
      out.reserve(items_.size());
      for (auto& item : items_) out.push_back(std::move(item));
      stats_.dequeued += items_.size();
      items_.clear();
    }
    not_full_.notify_all();
    return out;
  }

  // Refuses further pushes and wakes every waiter. Idempotent.
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  bool closed() const {
    std::lock_guard lock(mu_);
    return closed_;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }
  BoundedQueueStats stats() const {
    std::lock_guard lock(mu_);
    BoundedQueueStats s = stats_;
    s.depth = items_.size();
    s.capacity = options_.capacity;
    s.closed = closed_;
    return s;
  }
  const std::string& name() const { return options_.name; }

  // OK for an enqueued outcome, else an error naming the queue:
  // kResourceExhausted (dropped or rejected: full), kTimeout, kShutdown.
  Status to_status(PushOutcome o) const {
    const std::string where = "queue '" + options_.name + "'";
    switch (o) {
      case PushOutcome::kEnqueued:
      case PushOutcome::kEnqueuedDroppedOldest:
        return Status();
      case PushOutcome::kDroppedNewest:
        return Status::resource_exhausted(where + " is full (" + std::to_string(options_.capacity) +
                                          " items): the new item was dropped");
      case PushOutcome::kRejected:
        return Status::resource_exhausted(where + " is full (" + std::to_string(options_.capacity) +
                                          " items): the new item was rejected");
      case PushOutcome::kTimedOut:
        return Status::timeout(where + " stayed full for the whole push timeout");
      case PushOutcome::kClosed:
        return Status::shutdown(where + " is closed");
    }
    return Status::internal(where + ": unknown push outcome");
  }

 private:
  explicit BoundedQueue(BoundedQueueOptions options)
      : options_(std::move(options)), clock_(options_.clock ? options_.clock : &default_clock()) {}

  PushOutcome count(std::uint64_t& counter, PushOutcome o) {
    ++counter;
    return o;
  }

  // REQUIRES: lock holds mu_.
  std::optional<T> take(std::unique_lock<std::mutex>& lock) {
    if (items_.empty()) return std::nullopt;
    std::optional<T> out(std::move(items_.front()));
    items_.pop_front();
    ++stats_.dequeued;
    lock.unlock();
    not_full_.notify_one();
    return out;
  }

  // Waits on `cv` until `ready()` or `timeout` passes on clock_. Returns ready().
  template <class Pred>
  bool wait(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, Duration timeout,
            Pred ready) {
    if (ready()) return true;
    if (timeout == Duration::max()) {
      cv.wait(lock, ready);
      return true;
    }
    const TimePoint start = clock_->now();
    const TimePoint deadline =
        timeout >= TimePoint::max() - start ? TimePoint::max() : start + timeout;
    while (!ready()) {
      const TimePoint now = clock_->now();
      if (now >= deadline) return false;
      // Sliced, so a virtual clock advanced by another thread is noticed.
      cv.wait_for(lock, std::min<Duration>(deadline - now, std::chrono::milliseconds(10)));
    }
    return true;
  }

  const BoundedQueueOptions options_;
  const Clock* clock_;
  mutable std::mutex mu_;  // guards items_, closed_, stats_
  std::condition_variable not_empty_;  // signalled on push and close
  std::condition_variable not_full_;   // signalled on pop, drain and close
  std::deque<T> items_;  // oldest first; size() <= capacity
  bool closed_ = false;
  BoundedQueueStats stats_;
};

inline const char* push_outcome_name(PushOutcome o) noexcept {
  switch (o) {
    case PushOutcome::kEnqueued: return "enqueued";
    case PushOutcome::kEnqueuedDroppedOldest: return "enqueued_dropped_oldest";
    case PushOutcome::kDroppedNewest: return "dropped_newest";
    case PushOutcome::kRejected: return "rejected";
    case PushOutcome::kTimedOut: return "timed_out";
    case PushOutcome::kClosed: return "closed";
  }
  return "unknown";
}

inline const char* overflow_policy_name(OverflowPolicy p) noexcept {
  switch (p) {
    case OverflowPolicy::kBlock: return "block";
    case OverflowPolicy::kDropNewest: return "drop_newest";
    case OverflowPolicy::kDropOldest: return "drop_oldest";
    case OverflowPolicy::kReject: return "reject";
  }
  return "unknown";
}

}  // namespace callcache
