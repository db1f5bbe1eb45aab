// callcache/degrading_backend.h — a Backend wrapper that keeps a failing or
// slow second tier from costing its callers.
//
// When a call fails with an outage-like error (kUnavailable, kTimeout,
// kIoError, kCorruption, kInternal, kShutdown), the wrapper counts it, logs
// ONCE for the whole outage through the log sink, and backs off: until the
// backoff ends, every call (but flush() and health(), which always probe)
// returns kUnavailable at once without touching the store. When it ends, one call probes the store; success ends the outage
// (logged once, with its length), failure doubles the backoff (up to
// max_backoff). Caller errors (kInvalidArgument, kTooLarge, kNotFound) pass
// through and never start an outage. Each call's time is bounded by the
// wrapped backend itself (Redis connect/command timeouts, SQLite
// call_timeout); a call that still takes longer than `slow_call` is counted
// as slow.
//
// tiers::make_backend (the `storage:` configuration) returns its store
// wrapped in one; TieredCache and Tiers take any Backend.
//
// Thread-safety: every member may be called from any thread.
// Ownership: the wrapper owns the wrapped backend.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/backend.h"
#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache {

enum class TierLogLevel : std::uint8_t { kInfo, kWarning };

// Receives the tiers' log lines (outage start and end). Called on the thread
// whose call detected the change, never under an internal lock. Must be
// thread-safe. An empty sink writes to stderr.
using TierLogSink = std::function<void(TierLogLevel level, std::string_view message)>;

struct DegradeOptions {
  // First wait after an outage starts, and its growth.
  Duration initial_backoff = std::chrono::milliseconds(100);
  Duration max_backoff = std::chrono::seconds(30);
  double backoff_multiplier = 2.0;  // REQUIRES: >= 1
  // Calls taking longer than this are counted as slow (0 = not measured).
  Duration slow_call = std::chrono::milliseconds(250);
  // Backoff is measured on this clock; nullptr = default_clock().
  const Clock* clock = nullptr;
  TierLogSink log;
};

struct DegradeStats {
  std::uint64_t errors = 0;      // calls that failed with an outage-like error
  std::uint64_t skipped = 0;     // calls answered kUnavailable during backoff
  std::uint64_t outages = 0;     // outages started (each logged once)
  std::uint64_t recoveries = 0;  // outages ended
  std::uint64_t slow_calls = 0;
  bool down = false;  // an outage is in progress now
};

class DegradingBackend final : public Backend {
 public:
  // Takes ownership of `inner`. REQUIRES: inner != nullptr.
  DegradingBackend(std::unique_ptr<Backend> inner, DegradeOptions options);
  ~DegradingBackend() override;

  std::string_view name() const noexcept override;
  Result<std::optional<StoredValue>> get(const BackendKey& key) override;
  Result<std::vector<std::optional<StoredValue>>> get_many(
      std::span<const BackendKey> keys) override;
  Status put(const BackendKey& key, std::string_view bytes, Duration ttl) override;
  Status put_many(std::span<const BackendItem> items) override;
  Status erase(const BackendKey& key) override;
  Status erase_tenant(TenantId tenant) override;
  Status erase_namespace(std::string_view ns) override;
  Result<std::uint64_t> purge_expired() override;
  // Flush and health probe the store even during backoff (and end the
  // outage if it answers): a flush is a durability barrier, never skipped.
  Status flush() override;
  Status health() override;
  BackendStats stats() const override;  // the wrapped backend's, plus skipped calls as errors

  DegradeStats degrade_stats() const;
  // Replaces the log sink. Safe at any time.
  void set_log(TierLogSink log);
  Backend& inner() noexcept { return *inner_; }

 private:
  enum class Admit : std::uint8_t { kPass, kProbe, kSkip };
  // Whether a call may go to the store now (kSkip: answer kUnavailable).
  Admit admit();
  // kPass, or kProbe during an outage (never kSkip).
  Admit force_probe();
  // Records a call's outcome and returns `s`.
  Status record(Status s, TimePoint started, Admit how);
  void log(TierLogLevel level, const std::string& message);

  std::unique_ptr<Backend> inner_;
  DegradeOptions options_;
  const Clock* clock_;

  std::atomic<bool> down_{false};  // fast path: false = healthy, no lock taken
  mutable std::mutex mu_;          // guards everything below, and options_.log
  bool probing_ = false;           // a call is probing the store
  TimePoint retry_at_{};           // when the next probe may run
  Duration backoff_{};
  TimePoint outage_start_{};
  std::uint64_t outage_errors_ = 0;
  std::string last_error_;
  std::atomic<std::uint64_t> errors_{0}, skipped_{0}, outages_{0}, recoveries_{0}, slow_{0};
};

}  // namespace callcache
