#include "callcache/clock.h"

#include <cassert>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace callcache {

TimePoint SteadyClock::now() const noexcept {
  return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
}

// ---- CoarseClock -----------------------------------------------------------

struct CoarseClock::Impl {
  std::atomic<std::int64_t> ns{0};
  std::mutex mu;  // guards stop; paired with cv
  std::condition_variable cv;
  bool stop = false;
  std::thread ticker;

  static std::int64_t read_steady() {
    return std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

CoarseClock::CoarseClock(Duration resolution) : impl_(std::make_unique<Impl>()) {
  impl_->ns.store(Impl::read_steady(), std::memory_order_relaxed);
  Impl* impl = impl_.get();
  impl_->ticker = std::thread([impl, resolution] {
    std::unique_lock lock(impl->mu);
    while (!impl->stop) {
      impl->cv.wait_for(lock, resolution);
      impl->ns.store(Impl::read_steady(), std::memory_order_relaxed);
    }
  });
}

CoarseClock::~CoarseClock() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->ticker.join();
}

TimePoint CoarseClock::now() const noexcept {
  return TimePoint(Duration(impl_->ns.load(std::memory_order_relaxed)));
}

const Clock& default_clock() {
  // Leaked on purpose: objects destroyed during static destruction may still
  // read the clock.
  static const CoarseClock* clock = new CoarseClock();
  return *clock;
}

// ---- ManualClock -----------------------------------------------------------

ManualClock::ManualClock(TimePoint start) : ns_(start.time_since_epoch().count()) {}

TimePoint ManualClock::now() const noexcept {
  return TimePoint(Duration(ns_.load(std::memory_order_acquire)));
}

void ManualClock::advance(Duration d) noexcept {
  assert(d.count() >= 0);
  ns_.fetch_add(d.count(), std::memory_order_acq_rel);
}

void ManualClock::set(TimePoint t) noexcept {
  assert(t >= now());
  ns_.store(t.time_since_epoch().count(), std::memory_order_release);
}

// ---- Task queue shared by both schedulers -----------------------------------

namespace {

// Pending tasks ordered by (deadline, id). Not synchronised: callers lock.
class TaskQueue {
 public:
  Scheduler::TaskId add(TimePoint when, Scheduler::Task task) {
    Scheduler::TaskId id = ++last_id_;
    by_time_.emplace(Key{when, id}, std::move(task));
    deadline_of_.emplace(id, when);
    return id;
  }
  bool remove(Scheduler::TaskId id) {
    auto it = deadline_of_.find(id);
    if (it == deadline_of_.end()) return false;
    by_time_.erase(Key{it->second, id});
    deadline_of_.erase(it);
    return true;
  }
  bool empty() const { return by_time_.empty(); }
  std::size_t size() const { return by_time_.size(); }
  TimePoint next_deadline() const {
    return by_time_.empty() ? TimePoint::max() : by_time_.begin()->first.when;
  }
  // REQUIRES: !empty().
  std::pair<TimePoint, Scheduler::Task> pop_front() {
    auto node = by_time_.extract(by_time_.begin());
    deadline_of_.erase(node.key().id);
    return {node.key().when, std::move(node.mapped())};
  }

 private:
  struct Key {
    TimePoint when;
    Scheduler::TaskId id;
    bool operator<(const Key& o) const { return when != o.when ? when < o.when : id < o.id; }
  };
  Scheduler::TaskId last_id_ = 0;
  std::map<Key, Scheduler::Task> by_time_;
  std::unordered_map<Scheduler::TaskId, TimePoint> deadline_of_;
};

class ThreadScheduler final : public Scheduler {
 public:
  explicit ThreadScheduler(const Clock& clock) : clock_(clock) {
    worker_ = std::thread([this] { run(); });
  }
  ~ThreadScheduler() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  const Clock& clock() const noexcept override { return clock_; }

  TaskId schedule_at(TimePoint when, Task task) override {
    TaskId id;
    {
      std::lock_guard lock(mu_);
      if (stop_) return 0;
      id = queue_.add(when, std::move(task));
    }
    cv_.notify_all();
    return id;
  }

  bool cancel(TaskId id) override {
    std::lock_guard lock(mu_);
    return queue_.remove(id);
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      if (queue_.empty()) {
        cv_.wait(lock);
        continue;
      }
      TimePoint now = clock_.now();
      TimePoint due = queue_.next_deadline();
      if (due > now) {
        // Cap the wait so a coarse or virtual clock is re-read regularly.
        Duration wait = std::min<Duration>(due - now, std::chrono::milliseconds(50));
        cv_.wait_for(lock, wait);
        continue;
      }
      Task task = queue_.pop_front().second;
      lock.unlock();
      task();
      lock.lock();
    }
  }

  const Clock& clock_;
  std::mutex mu_;  // guards queue_ and stop_
  std::condition_variable cv_;
  TaskQueue queue_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace

std::unique_ptr<Scheduler> make_thread_scheduler(const Clock& clock) {
  return std::make_unique<ThreadScheduler>(clock);
}

// ---- ManualScheduler -------------------------------------------------------

struct ManualScheduler::Impl {
  mutable std::mutex mu;  // guards queue
  TaskQueue queue;
};

ManualScheduler::ManualScheduler(ManualClock& clock)
    : impl_(std::make_unique<Impl>()), clock_(clock) {}
ManualScheduler::~ManualScheduler() = default;

const Clock& ManualScheduler::clock() const noexcept { return clock_; }

Scheduler::TaskId ManualScheduler::schedule_at(TimePoint when, Task task) {
  std::lock_guard lock(impl_->mu);
  return impl_->queue.add(when, std::move(task));
}

bool ManualScheduler::cancel(TaskId id) {
  std::lock_guard lock(impl_->mu);
  return impl_->queue.remove(id);
}

std::size_t ManualScheduler::advance(Duration d) {
  TimePoint target = clock_.now() + d;
  std::size_t ran = 0;
  for (;;) {
    Task task;
    {
      std::lock_guard lock(impl_->mu);
      if (impl_->queue.empty() || impl_->queue.next_deadline() > target) break;
      auto [when, t] = impl_->queue.pop_front();
      if (when > clock_.now()) clock_.set(when);
      task = std::move(t);
    }
    task();
    ++ran;
  }
  if (target > clock_.now()) clock_.set(target);
  return ran;
}

std::size_t ManualScheduler::run_due() { return advance(Duration::zero()); }

std::size_t ManualScheduler::pending() const {
  std::lock_guard lock(impl_->mu);
  return impl_->queue.size();
}

TimePoint ManualScheduler::next_deadline() const {
  std::lock_guard lock(impl_->mu);
  return impl_->queue.next_deadline();
}

}  // namespace callcache
