// SwitchableBackend: a real backend (SQLite in the tests that use it) that
// fails every call while `failing` is set, for testing what sits above an
// L2 store that goes away and comes back (DegradingBackend, the gateway's
// InvalidationKeeper).
//
// Header-only; every test target has tests/ on its include path (cc_test).
// Thread-safety: as the wrapped backend's; `failing` and the counters are
// atomics.
#pragma once

#include <atomic>
#include <memory>
#include <utility>

#include "callcache/backend.h"

namespace callcache::testing {

class SwitchableBackend final : public Backend {
 public:
  // `failure`: what every call answers while `failing` (an outage-like
  // status by default).
  explicit SwitchableBackend(std::unique_ptr<Backend> real,
                             Status failure = Status::unavailable("store down"))
      : real_(std::move(real)), failure_(std::move(failure)) {}

  std::atomic<bool> failing{false};
  std::atomic<int> calls{0};    // every call that reached this backend (not stats())
  std::atomic<int> flushes{0};  // flushes passed on to the real backend

  std::string_view name() const noexcept override { return "switchable"; }
  Result<std::optional<StoredValue>> get(const BackendKey& k) override {
    if (Status s = touch(); !s.ok()) return s;
    return real_->get(k);
  }
  Result<std::vector<std::optional<StoredValue>>> get_many(std::span<const BackendKey> k) override {
    if (Status s = touch(); !s.ok()) return s;
    return real_->get_many(k);
  }
  Status put(const BackendKey& k, std::string_view b, Duration t) override {
    if (Status s = touch(); !s.ok()) return s;
    return real_->put(k, b, t);
  }
  Status put_many(std::span<const BackendItem> i) override {
    if (Status s = touch(); !s.ok()) return s;
    return real_->put_many(i);
  }
  Status erase(const BackendKey& k) override {
    if (Status s = touch(); !s.ok()) return s;
    return real_->erase(k);
  }
  Status erase_tenant(TenantId t) override {
    if (Status s = touch(); !s.ok()) return s;
    return real_->erase_tenant(t);
  }
  Status erase_namespace(std::string_view ns) override {
    if (Status s = touch(); !s.ok()) return s;
    return real_->erase_namespace(ns);
  }
  Result<std::uint64_t> purge_expired() override {
    if (Status s = touch(); !s.ok()) return s;
    return real_->purge_expired();
  }
  Status flush() override {
    if (Status s = touch(); !s.ok()) return s;
    flushes.fetch_add(1);
    return real_->flush();
  }
  Status health() override { return touch(); }
  BackendStats stats() const override { return real_->stats(); }

 private:
  Status touch() {
    calls.fetch_add(1);
    return failing ? failure_ : Status();
  }

  std::unique_ptr<Backend> real_;
  const Status failure_;
};

}  // namespace callcache::testing
