#include "sqlite_schema.h"

#include <string>

#include "callcache/sqlite_backend.h"

namespace callcache::tiers {

const char* const kSqliteSchemaV1 = R"sql(
CREATE TABLE schema_version(version INTEGER NOT NULL);
INSERT INTO schema_version VALUES(1);
CREATE TABLE entries(
  ns TEXT NOT NULL, tenant INTEGER NOT NULL, key BLOB NOT NULL,
  value BLOB NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY(ns, tenant, key)) WITHOUT ROWID;
CREATE INDEX entries_expires ON entries(expires_at);
)sql";

namespace {

// Tables and indexes of version 2, shared by creation and migration.
const char* const kV2Tables = R"sql(
CREATE TABLE namespaces(ns TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE entries(
  ns TEXT NOT NULL, version INTEGER NOT NULL, tenant INTEGER NOT NULL, key BLOB NOT NULL,
  value BLOB NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY(ns, version, tenant, key)) WITHOUT ROWID;
CREATE INDEX entries_expires ON entries(expires_at);
CREATE INDEX entries_tenant ON entries(tenant);
)sql";

Status create_v2(Connection& c) {
  if (Status s = c.exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  Status s = c.exec("CREATE TABLE schema_version(version INTEGER NOT NULL);"
                    "INSERT INTO schema_version VALUES(2);");
  if (s.ok()) s = c.exec(kV2Tables);
  if (s.ok()) s = c.exec("COMMIT");
  if (!s.ok()) (void)c.exec("ROLLBACK");
  return s;
}

// v1 -> v2: entries gain a namespace version (0 for all existing rows).
Status migrate_1_to_2(Connection& c) {
  if (Status s = c.exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  Status s = c.exec("DROP INDEX IF EXISTS entries_expires;"
                    "ALTER TABLE entries RENAME TO entries_v1;");
  if (s.ok()) s = c.exec(kV2Tables);
  if (s.ok()) {
    s = c.exec(
        "INSERT INTO entries(ns, version, tenant, key, value, expires_at) "
        "SELECT ns, 0, tenant, key, value, expires_at FROM entries_v1;"
        "DROP TABLE entries_v1;"
        "UPDATE schema_version SET version = 2;");
  }
  if (s.ok()) s = c.exec("COMMIT");
  if (!s.ok()) (void)c.exec("ROLLBACK");
  return s;
}

}  // namespace

Status ensure_schema(Connection& c, const std::string& path) {
  auto tables = c.prepare(
      "SELECT count(*), sum(name = 'schema_version') FROM sqlite_master WHERE type = 'table'");
  if (!tables.ok()) return tables.status();
  int rc = sqlite3_step(tables->get());
  if (rc != SQLITE_ROW) return sqlite_status(rc, c.db(), "reading the schema of '" + path + "'");
  std::int64_t n_tables = sqlite3_column_int64(tables->get(), 0);
  bool has_version = sqlite3_column_int64(tables->get(), 1) > 0;
  tables->reset();
  if (n_tables == 0) return create_v2(c);
  if (!has_version) {
    return Status::corruption("'" + path + "' is not a callcache database (no schema_version table)");
  }

  auto ver = c.prepare("SELECT version FROM schema_version");
  if (!ver.ok()) return ver.status();
  rc = sqlite3_step(ver->get());
  if (rc != SQLITE_ROW) {
    return Status::corruption("'" + path + "': schema_version table is empty");
  }
  std::int64_t version = sqlite3_column_int64(ver->get(), 0);
  ver->reset();

  if (version > kSqliteSchemaVersion) {
    return Status::invalid_argument("'" + path + "' has schema version " +
                                    std::to_string(version) + "; this build reads up to " +
                                    std::to_string(kSqliteSchemaVersion));
  }
  if (version < 1) {
    return Status::corruption("'" + path + "' has invalid schema version " +
                              std::to_string(version));
  }
  if (version == 1) {
    if (Status s = migrate_1_to_2(c); !s.ok()) {
      return Status(s.code(), "migrating '" + path + "' from schema 1 to 2: " + s.message());
    }
  }
  return Status();
}

}  // namespace callcache::tiers
