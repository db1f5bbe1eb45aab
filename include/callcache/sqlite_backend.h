// callcache/sqlite_backend.h — the embedded second-level tier: one SQLite file
// that keeps what was fetched across restarts.
//
// Storage. WAL journal, synchronous=NORMAL (a committed write survives a
// process crash, including kill -9; only an OS crash or power loss may lose
// the last commits), prepared statements, and this schema (version 2):
//   schema_version(version)                   one row: the schema of the file
//   namespaces(ns PRIMARY KEY, version)       the current version of each namespace
//   entries(ns, version, tenant, key, value, expires_at,
//           PRIMARY KEY(ns, version, tenant, key)) WITHOUT ROWID
// `expires_at` is Unix-epoch milliseconds (wall time, so it means the same
// after a restart). Because the namespace version is part of every key,
// erase_namespace() is O(1): it bumps the version, and the old rows become
// unreachable and are deleted by the next purge. Opening a file of an older
// schema migrates it in one transaction (v1 — entries without a version
// column — becomes v2); a file of a newer schema is refused.
//
// Writes are write-behind: put/put_many/erase go to an in-memory queue that
// reads consult first, committed in one transaction every `flush_interval`,
// when the queue reaches `max_pending_writes` (the writer that fills it
// commits synchronously — nothing is dropped), on flush(), and on
// destruction. A write is durable once flush() has returned OK after it.
// erase_tenant/erase_namespace commit immediately.
//
// Expired rows (and rows of old namespace versions) are deleted in the
// background every `purge_interval`, and on purge_expired().
//
// One process per file: namespace versions are cached in memory, so a second
// process writing the same file would not see the first one's
// erase_namespace. Use Redis to share a tier between processes.
//
// Thread-safety: all members may be called from any thread. Reads use their
// own connection and do not wait for a commit in progress.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "callcache/backend.h"
#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache {

struct SqliteOptions {
  // The database file; its directory is created if missing.
  std::string path = "./data/callcache.sqlite3";
  // Queue depth at which the writer commits synchronously. REQUIRES: > 0.
  std::size_t max_pending_writes = 1024;
  // How often queued writes are committed in the background (0 = only when
  // the queue is full, on flush() and on destruction).
  Duration flush_interval = std::chrono::milliseconds(100);
  // How often expired rows are deleted in the background (0 = never; call
  // purge_expired()).
  Duration purge_interval = std::chrono::seconds(60);
  // Upper bound on one call's time in SQLite: waiting for a lock
  // (busy_timeout) and running a statement (interrupted past it, returning
  // kTimeout). REQUIRES: > 0.
  Duration call_timeout = std::chrono::milliseconds(250);
  // Expiry is measured on this clock (anchored to wall time when the file is
  // opened); nullptr = default_clock().
  const Clock* clock = nullptr;
  // Runs the background flush and purge; nullptr = the backend owns a thread
  // scheduler. A scheduler passed in must outlive the backend.
  Scheduler* scheduler = nullptr;
};

// The schema version this build writes.
inline constexpr int kSqliteSchemaVersion = 2;

// Opens (creating or migrating) the file. Errors name the path: kIoError
// (cannot create or open), kCorruption (not a callcache database, or
// integrity problems SQLite reports), kInvalidArgument (bad options, or a
// schema newer than this build).
Result<std::unique_ptr<Backend>> open_sqlite_backend(SqliteOptions options);

}  // namespace callcache
