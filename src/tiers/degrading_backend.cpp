// DegradingBackend (callcache/degrading_backend.h).
//
// State: healthy (down_ == false) or in an outage. In an outage, admit()
// lets exactly one call through per backoff period (the probe); the others
// are skipped. A probe's success ends the outage; its failure grows the
// backoff. Log lines are built under mu_ and emitted after releasing it.
#include <cstdio>

#include "callcache/degrading_backend.h"

namespace callcache {
namespace {

bool is_outage(Code c) {
  switch (c) {
    case Code::kUnavailable:
    case Code::kTimeout:
    case Code::kIoError:
    case Code::kCorruption:
    case Code::kInternal:
    case Code::kShutdown:
    case Code::kDeadlineExceeded:
      return true;
    default:
      return false;
  }
}

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

DegradingBackend::DegradingBackend(std::unique_ptr<Backend> inner, DegradeOptions options)
    : inner_(std::move(inner)),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : &default_clock()) {
  if (options_.backoff_multiplier < 1.0) options_.backoff_multiplier = 1.0;
  if (options_.initial_backoff <= Duration::zero()) options_.initial_backoff = Duration(1);
  if (options_.max_backoff < options_.initial_backoff) options_.max_backoff = options_.initial_backoff;
}

DegradingBackend::~DegradingBackend() = default;

std::string_view DegradingBackend::name() const noexcept { return inner_->name(); }

void DegradingBackend::set_log(TierLogSink log) {
  std::lock_guard l(mu_);
  options_.log = std::move(log);
}

void DegradingBackend::log(TierLogLevel level, const std::string& message) {
  TierLogSink sink;
  {
    std::lock_guard l(mu_);
    sink = options_.log;
  }
  if (sink) {
    sink(level, message);
  } else {
    std::fprintf(stderr, "callcache %s: %s\n", level == TierLogLevel::kWarning ? "warning" : "info",
                 message.c_str());
  }
}

DegradingBackend::Admit DegradingBackend::admit() {
  if (!down_.load(std::memory_order_acquire)) return Admit::kPass;
  std::lock_guard l(mu_);
  if (!down_.load(std::memory_order_relaxed)) return Admit::kPass;
  if (probing_ || clock_->now() < retry_at_) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    return Admit::kSkip;
  }
  probing_ = true;
  return Admit::kProbe;
}

Status DegradingBackend::record(Status s, TimePoint started, Admit how) {
  TimePoint now = clock_->now();
  if (options_.slow_call > Duration::zero() && now - started > options_.slow_call) {
    slow_.fetch_add(1, std::memory_order_relaxed);
  }
  bool failed = !s.ok() && is_outage(s.code());
  if (!failed && how != Admit::kProbe) return s;

  std::string message;
  TierLogLevel level = TierLogLevel::kInfo;
  {
    std::lock_guard l(mu_);
    if (failed) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      last_error_ = s.to_string();
      if (!down_.load(std::memory_order_relaxed)) {
        down_.store(true, std::memory_order_release);
        outages_.fetch_add(1, std::memory_order_relaxed);
        outage_start_ = now;
        outage_errors_ = 1;
        backoff_ = options_.initial_backoff;
        level = TierLogLevel::kWarning;
        message = "L2 tier '" + std::string(inner_->name()) + "' is failing (" + last_error_ +
                  "); serving from L1 and loaders, retrying with backoff";
      } else {
        ++outage_errors_;
        if (how == Admit::kProbe) {
          auto next = std::chrono::duration_cast<Duration>(backoff_ * options_.backoff_multiplier);
          backoff_ = std::min(next, options_.max_backoff);
        }
      }
      if (how == Admit::kProbe) probing_ = false;
      retry_at_ = now + backoff_;
    } else {
      // A probe that did not fail. Only a probe ends an outage: a call
      // admitted before the outage began may still succeed and says nothing
      // about the store now. A probe refused for a caller error (bad key)
      // only frees the probe slot.
      probing_ = false;
      if (s.ok() && down_.load(std::memory_order_relaxed)) {
        down_.store(false, std::memory_order_release);
        recoveries_.fetch_add(1, std::memory_order_relaxed);
        message = "L2 tier '" + std::string(inner_->name()) + "' recovered after " +
                  std::to_string(seconds(now - outage_start_)) + " s and " +
                  std::to_string(outage_errors_) + " failed calls (last: " + last_error_ + ")";
      }
    }
  }
  if (!message.empty()) log(level, message);
  return s;
}

namespace {
Status skipped_status(std::string_view name) {
  return Status::unavailable("L2 tier '" + std::string(name) + "' is in backoff after failures");
}
}  // namespace

Result<std::optional<StoredValue>> DegradingBackend::get(const BackendKey& key) {
  Admit how = admit();
  if (how == Admit::kSkip) return skipped_status(name());
  TimePoint t = clock_->now();
  auto r = inner_->get(key);
  if (!r.ok()) return record(r.status(), t, how);
  (void)record(Status(), t, how);
  return r;
}

Result<std::vector<std::optional<StoredValue>>> DegradingBackend::get_many(
    std::span<const BackendKey> keys) {
  Admit how = admit();
  if (how == Admit::kSkip) return skipped_status(name());
  TimePoint t = clock_->now();
  auto r = inner_->get_many(keys);
  if (!r.ok()) return record(r.status(), t, how);
  (void)record(Status(), t, how);
  return r;
}

Status DegradingBackend::put(const BackendKey& key, std::string_view bytes, Duration ttl) {
  Admit how = admit();
  if (how == Admit::kSkip) return skipped_status(name());
  TimePoint t = clock_->now();
  return record(inner_->put(key, bytes, ttl), t, how);
}

Status DegradingBackend::put_many(std::span<const BackendItem> items) {
  Admit how = admit();
  if (how == Admit::kSkip) return skipped_status(name());
  TimePoint t = clock_->now();
  return record(inner_->put_many(items), t, how);
}

Status DegradingBackend::erase(const BackendKey& key) {
  Admit how = admit();
  if (how == Admit::kSkip) return skipped_status(name());
  TimePoint t = clock_->now();
  return record(inner_->erase(key), t, how);
}

Status DegradingBackend::erase_tenant(TenantId tenant) {
  Admit how = admit();
  if (how == Admit::kSkip) return skipped_status(name());
  TimePoint t = clock_->now();
  return record(inner_->erase_tenant(tenant), t, how);
}

Status DegradingBackend::erase_namespace(std::string_view ns) {
  Admit how = admit();
  if (how == Admit::kSkip) return skipped_status(name());
  TimePoint t = clock_->now();
  return record(inner_->erase_namespace(ns), t, how);
}

Result<std::uint64_t> DegradingBackend::purge_expired() {
  Admit how = admit();
  if (how == Admit::kSkip) return skipped_status(name());
  TimePoint t = clock_->now();
  auto r = inner_->purge_expired();
  if (!r.ok()) return record(r.status(), t, how);
  (void)record(Status(), t, how);
  return r;
}

Status DegradingBackend::flush() {
  // Never skipped: a flush is a durability barrier (shutdown, an invalidation
  // that must land), and the writes it commits were accepted before.
  Admit how = force_probe();
  TimePoint t = clock_->now();
  return record(inner_->flush(), t, how);
}

Status DegradingBackend::health() {
  Admit how = force_probe();
  TimePoint t = clock_->now();
  return record(inner_->health(), t, how);
}

DegradingBackend::Admit DegradingBackend::force_probe() {
  std::lock_guard l(mu_);
  if (!down_.load(std::memory_order_relaxed)) return Admit::kPass;
  probing_ = true;
  return Admit::kProbe;
}

BackendStats DegradingBackend::stats() const {
  BackendStats s = inner_->stats();
  s.errors += skipped_.load(std::memory_order_relaxed);
  return s;
}

DegradeStats DegradingBackend::degrade_stats() const {
  DegradeStats s;
  s.errors = errors_.load(std::memory_order_relaxed);
  s.skipped = skipped_.load(std::memory_order_relaxed);
  s.outages = outages_.load(std::memory_order_relaxed);
  s.recoveries = recoveries_.load(std::memory_order_relaxed);
  s.slow_calls = slow_.load(std::memory_order_relaxed);
  s.down = down_.load(std::memory_order_acquire);
  return s;
}

}  // namespace callcache
