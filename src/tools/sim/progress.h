// tools/sim/progress.h — a progress bar for simulations that take a while.
//
// Drawn on one terminal line (carriage returns, no newlines) once the run
// has taken longer than `delay` seconds, redrawn as (policy, size) runs
// complete and every `tick` seconds in between (so the clock moves while a
// long run works), and erased by finish(), so short runs show nothing.
//
//   [##########..........] 21/42 runs  12.3 s, about 12 s left
//
// Thread-safety: advance() may be called from any thread; construction and
// finish() from the owning thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

namespace callcache::sim {

class Progress {
 public:
  using Clock = std::function<double()>;  // monotonic seconds

  // Draws to `out` only if `enabled`; tick = 0 redraws only on advance().
  Progress(std::ostream& out, bool enabled, std::size_t total, double delay = 1.0,
           double tick = 0.25, Clock clock = {});
  ~Progress() { finish(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` of `total` runs have completed.
  void advance(std::size_t done);
  // Stops redrawing and erases the bar if it was drawn. Idempotent.
  void finish();

  // The bar for `done` of `total` after `elapsed` seconds.
  static std::string render(std::size_t done, std::size_t total, double elapsed);

 private:
  void draw();

  std::ostream& out_;
  const bool enabled_;
  const std::size_t total_;
  const double delay_;
  Clock clock_;
  const double start_;
  std::atomic<std::size_t> done_{0};
  std::mutex mu_;  // guards the fields below and the stream
  std::condition_variable cv_;
  bool stop_ = false;
  std::size_t width_ = 0;  // characters on the line (0 = nothing shown)
  std::thread ticker_;
};

}  // namespace callcache::sim
