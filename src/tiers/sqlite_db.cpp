#include "sqlite_db.h"

#include <chrono>

namespace callcache::tiers {

Status sqlite_status(int rc, sqlite3* db, std::string_view what) {
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::unavailable(std::move(msg));
    case SQLITE_INTERRUPT:
      return Status::timeout(std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::corruption(std::move(msg));
    default:
      return Status::io_error(std::move(msg));
  }
}

Connection::~Connection() {
  if (db_) sqlite3_close_v2(db_);
}

Status Connection::open(const std::string& path, const Clock& clock, Duration call_timeout) {
  clock_ = &clock;
  timeout_ = call_timeout;
  int rc = sqlite3_open_v2(path.c_str(), &db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    Status s = sqlite_status(rc, db_, "cannot open '" + path + "'");
    sqlite3_close_v2(db_);
    db_ = nullptr;
    return s;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(call_timeout).count();
  sqlite3_busy_timeout(db_, static_cast<int>(ms > 0 ? ms : 1));
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_progress_handler(db_, 1000, &Connection::on_progress, this);
  return Status();
}

int Connection::on_progress(void* self) {
  auto* c = static_cast<Connection*>(self);
  return c->clock_->now() > c->deadline_ ? 1 : 0;
}

Status Connection::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status();
  std::string what = std::string("'") + sql + "'";
  Status s = sqlite_status(rc, db_, what);
  sqlite3_free(err);
  return s;
}

Result<Stmt> Connection::prepare(const char* sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return sqlite_status(rc, db_, std::string("prepare '") + sql + "'");
  return Stmt(s);
}

}  // namespace callcache::tiers
