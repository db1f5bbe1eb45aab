#include "tools/sim/progress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace callcache::sim {
namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Progress::Progress(std::ostream& out, bool enabled, std::size_t total, double delay, double tick,
                   Clock clock)
    : out_(out),
      enabled_(enabled && total > 0),
      total_(total),
      delay_(delay),
      clock_(clock ? std::move(clock) : Clock(steady_seconds)),
      start_(clock_()) {
  if (!enabled_ || tick <= 0) return;
  ticker_ = std::thread([this, tick] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::duration<double>(tick), [this] { return stop_; })) {
      lock.unlock();
      draw();
      lock.lock();
    }
  });
}

std::string Progress::render(std::size_t done, std::size_t total, double elapsed) {
  constexpr std::size_t kBar = 20;
  const std::size_t filled = total ? std::min(done, total) * kBar / total : kBar;
  std::string line = "[" + std::string(filled, '#') + std::string(kBar - filled, '.') + "]";
  char buf[96];
  std::snprintf(buf, sizeof buf, " %zu/%zu runs  %.1f s", done, total, elapsed);
  line += buf;
  if (done > 0 && done < total) {
    const double left = elapsed * static_cast<double>(total - done) / static_cast<double>(done);
    std::snprintf(buf, sizeof buf, ", about %.0f s left", std::ceil(left));
    line += buf;
  }
  return line;
}

void Progress::advance(std::size_t done) {
  if (!enabled_) return;
  done_.store(done, std::memory_order_relaxed);
  draw();
}

void Progress::draw() {
  const double elapsed = clock_() - start_;
  if (elapsed < delay_) return;
  std::lock_guard lock(mu_);
  if (stop_) return;
  std::string line = render(done_.load(std::memory_order_relaxed), total_, elapsed);
  const std::size_t width = line.size();
  if (width < width_) line += std::string(width_ - width, ' ');  // cover a longer previous line
  out_ << '\r' << line << std::flush;
  width_ = std::max(width_, width);
}

void Progress::finish() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
    if (width_) out_ << '\r' << std::string(width_, ' ') << '\r' << std::flush;
    width_ = 0;
  }
  cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

}  // namespace callcache::sim
