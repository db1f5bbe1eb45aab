// Internal: thin RAII wrappers over the SQLite C API for the SQLite backend:
// a connection with a per-call deadline (enforced by a progress handler), and
// prepared statements.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache::tiers {

// Maps an SQLite result code to a Status: BUSY/LOCKED -> kUnavailable,
// INTERRUPT -> kTimeout, CORRUPT/NOTADB -> kCorruption, else kIoError.
Status sqlite_status(int rc, sqlite3* db, std::string_view what);

class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~Stmt() { sqlite3_finalize(s_); }

  sqlite3_stmt* get() const { return s_; }
  void bind(int i, std::string_view text) {
    sqlite3_bind_text(s_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void bind_blob(int i, std::string_view bytes) {
    sqlite3_bind_blob(s_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  // Resets after a step and clears bindings, so the statement can be reused.
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// One connection. Not thread-safe: its owner serialises use (a mutex).
class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Opens `path` (creating it), sets busy_timeout and the progress handler.
  Status open(const std::string& path, const Clock& clock, Duration call_timeout);
  sqlite3* db() const { return db_; }

  // Runs SQL text with no results.
  Status exec(const char* sql);
  Result<Stmt> prepare(const char* sql);

  // Calls running until end_call() are interrupted after now + call_timeout.
  void begin_call() { deadline_ = clock_->now() + timeout_; }
  void end_call() { deadline_ = TimePoint::max(); }

 private:
  static int on_progress(void* self);

  sqlite3* db_ = nullptr;
  const Clock* clock_ = nullptr;
  Duration timeout_{};
  TimePoint deadline_ = TimePoint::max();
};

// RAII begin_call/end_call.
class CallScope {
 public:
  explicit CallScope(Connection& c) : c_(c) { c_.begin_call(); }
  ~CallScope() { c_.end_call(); }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  Connection& c_;
};

}  // namespace callcache::tiers
