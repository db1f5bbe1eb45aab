// callcache/clock.h — time, injectable: real clocks for production, a manual
// clock and scheduler for tests and deterministic simulations.
//
// Every time-dependent part of callcache (expiry, pacing, locks, sweeping)
// reads time from a `Clock` and defers work through a `Scheduler`, so tests
// advance virtual time instead of sleeping.
//
// Thread-safety: all clocks and schedulers here are safe to use from any
// thread. A Clock or Scheduler passed to another object by reference must
// outlive that object.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace callcache {

using Duration = std::chrono::nanoseconds;
// A point on a monotonic time line. Only differences are meaningful; the
// epoch is the clock's own (not the Unix epoch).
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

class Clock {
 public:
  virtual ~Clock() = default;
  // Returns the current time. Never decreases.
  virtual TimePoint now() const noexcept = 0;
};

// Reads std::chrono::steady_clock on every call (precise, ~20 ns).
class SteadyClock final : public Clock {
 public:
  TimePoint now() const noexcept override;
};

// A clock read from one atomic, refreshed by a ticker thread every
// `resolution` (default 1 ms). A read costs about a nanosecond, so the cache's
// hit path can check expiry without a system call. Owns its ticker thread,
// which stops in the destructor.
class CoarseClock final : public Clock {
 public:
  explicit CoarseClock(Duration resolution = std::chrono::milliseconds(1));
  ~CoarseClock() override;
  CoarseClock(const CoarseClock&) = delete;
  CoarseClock& operator=(const CoarseClock&) = delete;

  TimePoint now() const noexcept override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The process-wide CoarseClock used when an option leaves the clock unset.
// Created on first use and never destroyed (safe to use during static
// destruction).
const Clock& default_clock();

// A clock that moves only when told to. Starts at `start` (by default one
// second past its epoch, so that "now - 1s" is still a valid time point).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint(std::chrono::seconds(1)));
  TimePoint now() const noexcept override;
  // REQUIRES: d >= 0.
  void advance(Duration d) noexcept;
  // REQUIRES: t >= now().
  void set(TimePoint t) noexcept;

 private:
  std::atomic<std::int64_t> ns_;
};

// Runs deferred work: timers for background sweeps, load timeouts and
// callback-style waits that must not park a thread.
class Scheduler {
 public:
  using Task = std::function<void()>;
  using TaskId = std::uint64_t;  // 0 is never a valid id

  virtual ~Scheduler() = default;

  // The clock that `schedule_at` deadlines are measured on.
  virtual const Clock& clock() const noexcept = 0;

  // Runs `task` once, at or after `when`, on a scheduler-owned thread (or, for
  // ManualScheduler, inside advance()); never inline inside this call.
  // Returns an id for cancel(), or 0 if the scheduler is shut down (the task
  // is then dropped without running).
  virtual TaskId schedule_at(TimePoint when, Task task) = 0;
  TaskId schedule_after(Duration delay, Task task) {
    return schedule_at(clock().now() + delay, std::move(task));
  }

  // Cancels a pending task. Returns true if it will not run; false if it has
  // run, is running, or was never scheduled.
  virtual bool cancel(TaskId id) = 0;
};

// A scheduler with one background thread waiting on real time measured by
// `clock`. Pending tasks are dropped (not run) when it is destroyed; a task
// that is running when the destructor starts finishes first.
std::unique_ptr<Scheduler> make_thread_scheduler(const Clock& clock = default_clock());

// A scheduler for virtual time: nothing runs until advance() or run_due() is
// called, and then tasks run on the calling thread in deadline order (ties in
// scheduling order), with the clock set to each task's deadline as it runs.
class ManualScheduler final : public Scheduler {
 public:
  explicit ManualScheduler(ManualClock& clock);
  ~ManualScheduler() override;

  const Clock& clock() const noexcept override;
  TaskId schedule_at(TimePoint when, Task task) override;
  bool cancel(TaskId id) override;

  // Moves the clock forward by `d`, running every task due on the way
  // (including tasks those tasks schedule, if due). Returns tasks run.
  std::size_t advance(Duration d);
  // Runs the tasks due at the current time. Returns tasks run.
  std::size_t run_due();
  // Tasks scheduled and not yet run or cancelled.
  std::size_t pending() const;
  // Deadline of the earliest pending task, or TimePoint::max() if none.
  TimePoint next_deadline() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ManualClock& clock_;
};

}  // namespace callcache
