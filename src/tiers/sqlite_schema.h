// Internal: the SQLite tier's schema — creation of a fresh file and the
// migrations from older schema versions (see callcache/sqlite_backend.h).
#pragma once

#include "callcache/status.h"
#include "sqlite_db.h"

namespace callcache::tiers {

// The version-1 schema (before namespace versions were part of the key).
// Kept for the migration test and as documentation of what v1 files hold.
extern const char* const kSqliteSchemaV1;

// Brings the database on `conn` to kSqliteSchemaVersion: creates it if the
// file is empty, migrates older versions in one transaction, refuses newer
// versions (kInvalidArgument) and foreign databases (kCorruption).
// `path` only names the file in errors.
Status ensure_schema(Connection& conn, const std::string& path);

}  // namespace callcache::tiers
