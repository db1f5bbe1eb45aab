#include "callcache/sqlite_backend.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "callcache/codec.h"
#include "sqlite_schema.h"
#include "test_util.h"

namespace callcache {
namespace sqlite_backend_test {

using namespace std::chrono_literals;
using tiers::testing::sqlite_exec;
using tiers::testing::sqlite_scalar;
using tiers::testing::TempDir;

const TenantId kAlice = tenant_from_name("alice");
const TenantId kBob = tenant_from_name("bob");

class SqliteBackendTest : public ::testing::Test {
 protected:
  SqliteOptions options(Duration flush = Duration::zero(), Duration purge = Duration::zero()) {
    SqliteOptions o;
    o.path = dir_.file("sub/dir/cc.sqlite3");
    o.clock = &clock_;
    o.scheduler = &sched_;
    o.flush_interval = flush;
    o.purge_interval = purge;
    return o;
  }
  std::unique_ptr<Backend> open(SqliteOptions o) {
    auto r = open_sqlite_backend(std::move(o));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? std::move(*r) : nullptr;
  }
  std::string rows() { return sqlite_scalar(dir_.file("sub/dir/cc.sqlite3"), "SELECT count(*) FROM entries"); }

  TempDir dir_;
  ManualClock clock_;
  ManualScheduler sched_{clock_};
};

TEST_F(SqliteBackendTest, PutGetWithRemainingTtl) {
  auto b = open(options());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->name(), "sqlite");
  ASSERT_TRUE(b->put({"entity", kAlice, "user:1"}, "alice-bytes", 10s).ok());
  clock_.advance(4s);
  auto v = b->get({"entity", kAlice, "user:1"});
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ((*v)->bytes, "alice-bytes");
  EXPECT_EQ((*v)->ttl_left, 6s);
  // Tenants never see each other's keys.
  EXPECT_FALSE(b->get({"entity", kBob, "user:1"})->has_value());
  ASSERT_TRUE(b->flush().ok());
  clock_.advance(3s);
  v = b->get({"entity", kAlice, "user:1"});
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ((*v)->ttl_left, 3s);
  clock_.advance(3s);
  EXPECT_FALSE(b->get({"entity", kAlice, "user:1"})->has_value());
  auto st = b->stats();
  EXPECT_EQ(st.gets, 4u);
  EXPECT_EQ(st.hits, 2u);
  EXPECT_EQ(st.puts, 1u);
}

TEST_F(SqliteBackendTest, BadArgumentsAreRejected) {
  auto b = open(options());
  EXPECT_EQ(b->put({"", kAlice, "k"}, "v", 1s).code(), Code::kInvalidArgument);
  EXPECT_EQ(b->put({"ns", kAlice, ""}, "v", 1s).code(), Code::kInvalidArgument);
  EXPECT_EQ(b->put({"ns", kAlice, "k"}, "v", 0s).code(), Code::kInvalidArgument);
  EXPECT_EQ(b->get({"ns", kAlice, ""}).status().code(), Code::kInvalidArgument);
  SqliteOptions o = options();
  o.max_pending_writes = 0;
  EXPECT_EQ(open_sqlite_backend(o).status().code(), Code::kInvalidArgument);
}

TEST_F(SqliteBackendTest, BinaryKeysAndValues) {
  auto b = open(options());
  std::string key("k\0ey", 4), val("v\0\xff", 3);
  ASSERT_TRUE(b->put({"ns", kAlice, key}, val, 1h).ok());
  ASSERT_TRUE(b->flush().ok());
  EXPECT_FALSE(b->get({"ns", kAlice, "k"})->has_value());
  EXPECT_EQ((*b->get({"ns", kAlice, key}))->bytes, val);
}

TEST_F(SqliteBackendTest, WritesAreVisibleAtOnceAndDurableAfterFlush) {
  auto b = open(options());
  ASSERT_TRUE(b->put({"entity", kAlice, "a"}, "1", 1h).ok());
  EXPECT_EQ(rows(), "0");  // queued, not committed
  EXPECT_EQ(b->stats().pending_writes, 1u);
  EXPECT_TRUE(b->get({"entity", kAlice, "a"})->has_value());
  ASSERT_TRUE(b->flush().ok());
  EXPECT_EQ(rows(), "1");
  EXPECT_EQ(b->stats().pending_writes, 0u);
  // Erase is queued too, and visible at once.
  ASSERT_TRUE(b->erase({"entity", kAlice, "a"}).ok());
  EXPECT_FALSE(b->get({"entity", kAlice, "a"})->has_value());
  ASSERT_TRUE(b->flush().ok());
  EXPECT_EQ(rows(), "0");
}

TEST_F(SqliteBackendTest, DestructionFlushesAndReopenFindsEntries) {
  {
    auto b = open(options());
    ASSERT_TRUE(b->put({"entity", kAlice, "a"}, "1", 1h).ok());
    std::vector<BackendItem> items = {{{"message", kBob, "m1"}, "x", 1h},
                                      {{"message", kBob, "m2"}, "y", 1h}};
    ASSERT_TRUE(b->put_many(items).ok());
  }
  auto b = open(options());
  std::vector<BackendKey> keys = {{"entity", kAlice, "a"},
                                  {"message", kBob, "m1"},
                                  {"message", kBob, "nope"},
                                  {"message", kBob, "m2"}};
  auto r = b->get_many(keys);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0]->bytes, "1");
  EXPECT_EQ((*r)[1]->bytes, "x");
  EXPECT_FALSE((*r)[2].has_value());
  EXPECT_EQ((*r)[3]->bytes, "y");
}

TEST_F(SqliteBackendTest, FullQueueIsCommittedByTheWriterNotDropped) {
  SqliteOptions o = options();
  o.max_pending_writes = 4;
  auto b = open(o);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(b->put({"ns", kAlice, "k" + std::to_string(i)}, "v", 1h).ok());
    EXPECT_LE(b->stats().pending_writes, 4u);
  }
  EXPECT_EQ(rows(), "8");  // two synchronous commits of 4; 2 still queued
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(b->get({"ns", kAlice, "k" + std::to_string(i)})->has_value()) << i;
  }
}

// A commit that fails (here: another connection holds the write lock; a
// full disk looks the same) is reported by health() and by the next writes
// until a commit goes through again; its batch is kept and lands then.
TEST_F(SqliteBackendTest, FailingCommitsAreReportedUntilOneSucceeds) {
  SqliteOptions o = options(100ms);
  o.call_timeout = 20ms;
  auto b = open(o);
  ASSERT_TRUE(b->put({"ns", kAlice, "k1"}, "v1", 1h).ok());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(o.path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  sched_.advance(100ms);  // the background commit fails: the lock is held
  EXPECT_FALSE(b->health().ok());
  Status put = b->put({"ns", kAlice, "k2"}, "v2", 1h);
  EXPECT_FALSE(put.ok()) << "a write while commits fail is refused, not queued";
  EXPECT_TRUE(b->get({"ns", kAlice, "k1"})->has_value()) << "the failed batch stays visible";
  EXPECT_FALSE(b->get({"ns", kAlice, "k2"})->has_value());
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE(b->put({"ns", kAlice, "k3"}, "v3", 1h).ok())
      << "the write commits the kept batch first";
  EXPECT_TRUE(b->health().ok());
  EXPECT_EQ(rows(), "1");  // k1, committed by that write; k3 queued
  ASSERT_TRUE(b->flush().ok());
  EXPECT_EQ(rows(), "2");

  // health() itself retries the failed commit: it is what ends an outage.
  ASSERT_EQ(sqlite3_open(o.path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_TRUE(b->put({"ns", kAlice, "k4"}, "v4", 1h).ok());
  EXPECT_FALSE(b->flush().ok());
  EXPECT_FALSE(b->health().ok());
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE(b->health().ok());
  EXPECT_EQ(rows(), "3");
}

TEST_F(SqliteBackendTest, BackgroundFlushRunsOnTheScheduler) {
  auto b = open(options(100ms));
  ASSERT_TRUE(b->put({"ns", kAlice, "k"}, "v", 1h).ok());
  EXPECT_EQ(rows(), "0");
  sched_.advance(99ms);
  EXPECT_EQ(rows(), "0");
  sched_.advance(1ms);
  EXPECT_EQ(rows(), "1");
  ASSERT_TRUE(b->put({"ns", kAlice, "k2"}, "v", 1h).ok());
  sched_.advance(100ms);
  EXPECT_EQ(rows(), "2");
}

TEST_F(SqliteBackendTest, ExpiredRowsArePurgedInTheBackground) {
  auto b = open(options(Duration::zero(), 60s));
  ASSERT_TRUE(b->put({"ns", kAlice, "short"}, "v", 10s).ok());
  ASSERT_TRUE(b->put({"ns", kAlice, "long"}, "v", 1h).ok());
  ASSERT_TRUE(b->flush().ok());
  EXPECT_EQ(rows(), "2");
  sched_.advance(60s);
  EXPECT_EQ(rows(), "1");
  EXPECT_EQ(b->stats().purged, 1u);
  clock_.advance(1h);
  auto n = b->purge_expired();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(rows(), "0");
}

TEST_F(SqliteBackendTest, EraseNamespaceBumpsAVersionThatSurvivesReopen) {
  {
    auto b = open(options());
    ASSERT_TRUE(b->put({"entity", kAlice, "a"}, "1", 1h).ok());
    ASSERT_TRUE(b->put({"entity", kBob, "b"}, "2", 1h).ok());
    ASSERT_TRUE(b->put({"message", kAlice, "m"}, "3", 1h).ok());
    ASSERT_TRUE(b->flush().ok());
    ASSERT_TRUE(b->erase_namespace("entity").ok());
    EXPECT_FALSE(b->get({"entity", kAlice, "a"})->has_value());
    EXPECT_FALSE(b->get({"entity", kBob, "b"})->has_value());
    EXPECT_TRUE(b->get({"message", kAlice, "m"})->has_value());
    EXPECT_EQ(rows(), "3");  // O(1): nothing deleted yet
    // New writes go to the new version.
    ASSERT_TRUE(b->put({"entity", kAlice, "a"}, "new", 1h).ok());
    EXPECT_EQ((*b->get({"entity", kAlice, "a"}))->bytes, "new");
  }
  auto b = open(options());
  EXPECT_EQ((*b->get({"entity", kAlice, "a"}))->bytes, "new");
  EXPECT_FALSE(b->get({"entity", kBob, "b"})->has_value());
  EXPECT_EQ(*b->purge_expired(), 2u);  // the old version's rows
  EXPECT_EQ(rows(), "2");
}

TEST_F(SqliteBackendTest, EraseTenantDropsQueuedAndCommittedRows) {
  auto b = open(options());
  ASSERT_TRUE(b->put({"entity", kAlice, "a"}, "1", 1h).ok());
  ASSERT_TRUE(b->flush().ok());
  ASSERT_TRUE(b->put({"message", kAlice, "m"}, "2", 1h).ok());  // still queued
  ASSERT_TRUE(b->put({"entity", kBob, "b"}, "3", 1h).ok());
  ASSERT_TRUE(b->erase_tenant(kAlice).ok());
  EXPECT_FALSE(b->get({"entity", kAlice, "a"})->has_value());
  EXPECT_FALSE(b->get({"message", kAlice, "m"})->has_value());
  EXPECT_TRUE(b->get({"entity", kBob, "b"})->has_value());
  ASSERT_TRUE(b->flush().ok());
  EXPECT_EQ(rows(), "1");
}

TEST_F(SqliteBackendTest, MigratesAVersion1File) {
  std::string path = dir_.file("sub/dir/cc.sqlite3");
  std::filesystem::create_directories(dir_.file("sub/dir"));
  auto far = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch() + 1h)
                 .count();
  std::string t = std::to_string(static_cast<std::int64_t>(kAlice.value));
  ASSERT_TRUE(sqlite_exec(path, tiers::kSqliteSchemaV1));
  ASSERT_TRUE(sqlite_exec(path, "INSERT INTO entries VALUES('entity', " + t +
                                    ", CAST('user:1' AS BLOB), CAST('old' AS BLOB), " +
                                    std::to_string(far) + ")"));
  auto b = open(options());
  ASSERT_TRUE(b);
  EXPECT_EQ(sqlite_scalar(path, "SELECT version FROM schema_version"), "2");
  auto v = b->get({"entity", kAlice, "user:1"});
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ((*v)->bytes, "old");
  EXPECT_GT((*v)->ttl_left, 59min);
  // And the migrated file works as a v2 file.
  ASSERT_TRUE(b->erase_namespace("entity").ok());
  EXPECT_FALSE(b->get({"entity", kAlice, "user:1"})->has_value());
  EXPECT_EQ(sqlite_scalar(path, "PRAGMA integrity_check"), "ok");
}

TEST_F(SqliteBackendTest, RefusesNewerSchemaAndForeignDatabases) {
  std::string path = dir_.file("newer.sqlite3");
  ASSERT_TRUE(sqlite_exec(path, "CREATE TABLE schema_version(version INTEGER);"
                                "INSERT INTO schema_version VALUES(99);"));
  SqliteOptions o = options();
  o.path = path;
  auto r = open_sqlite_backend(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("schema version 99"), std::string::npos);

  o.path = dir_.file("foreign.sqlite3");
  ASSERT_TRUE(sqlite_exec(o.path, "CREATE TABLE users(id INTEGER);"));
  r = open_sqlite_backend(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("foreign.sqlite3"), std::string::npos);

  o.path = dir_.file("garbage.sqlite3");
  {
    std::ofstream f(o.path);
    f << std::string(8192, 'g');
  }
  r = open_sqlite_backend(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().to_string();
}

TEST_F(SqliteBackendTest, CompressedAndRawValuesMix) {
  SqliteOptions o = options();
  std::string big(20000, 'q');
  {
    auto raw = wrap_compression(open(o), {.threshold = 0});
    ASSERT_TRUE(raw->put({"ns", kAlice, "raw"}, big, 1h).ok());
  }
  auto zb = wrap_compression(open(o), {.threshold = 100});
  ASSERT_TRUE(zb->put({"ns", kAlice, "z"}, big, 1h).ok());
  ASSERT_TRUE(zb->flush().ok());
  EXPECT_LT(std::stoi(sqlite_scalar(o.path, "SELECT length(value) FROM entries WHERE key = "
                                            "CAST('z' AS BLOB)")),
            1000);
  EXPECT_EQ((*zb->get({"ns", kAlice, "raw"}))->bytes, big);
  EXPECT_EQ((*zb->get({"ns", kAlice, "z"}))->bytes, big);
}

// ---- kill -9 ----
//
// The parent re-executes this binary running only Kill9.Child, which writes
// entries, flushes, and after each flush reports the highest flushed index on
// a pipe. The parent kills it with SIGKILL mid-stream, reopens the file and
// checks every reported entry and the file's integrity.

constexpr const char* kChildDb = "CALLCACHE_KILL9_DB";
constexpr const char* kChildFd = "CALLCACHE_KILL9_FD";

TEST(Kill9, Child) {
  const char* db = std::getenv(kChildDb);
  const char* fd = std::getenv(kChildFd);
  if (!db || !fd) GTEST_SKIP() << "runs only as the child of Kill9.AcknowledgedEntriesSurvive";
  SqliteOptions o;
  o.path = db;
  o.flush_interval = 5ms;  // background commits race with the explicit ones
  auto b = open_sqlite_backend(o);
  if (!b.ok()) std::_Exit(3);
  int out = std::atoi(fd);
  for (int i = 0; i < 10'000'000; ++i) {
    std::string v(100 + i % 300, static_cast<char>('a' + i % 26));
    if (!(*b)->put({"ns", kAlice, "k" + std::to_string(i)}, v, 1h).ok()) std::_Exit(4);
    if (i % 10 == 9) {
      if (!(*b)->flush().ok()) std::_Exit(5);
      std::string line = std::to_string(i) + "\n";
      if (::write(out, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        std::_Exit(6);
      }
    }
  }
  std::_Exit(0);
}

TEST(Kill9, AcknowledgedEntriesSurvive) {
  TempDir dir;
  std::string path = dir.file("kill9.sqlite3");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  // Everything the child needs is built before fork (only exec after it).
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  env.push_back(std::string(kChildDb) + "=" + path);
  env.push_back(std::string(kChildFd) + "=" + std::to_string(fds[1]));
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* args[] = {"kill9-child", "--gtest_filter=Kill9.Child", nullptr};
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::execve("/proc/self/exe", const_cast<char* const*>(args), envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  // Read acknowledgements until the child is well into its stream.
  std::string buf;
  long last_ack = -1;
  char chunk[4096];
  while (last_ack < 3000) {
    ssize_t n = ::read(fds[0], chunk, sizeof chunk);
    if (n <= 0) break;
    buf.append(chunk, static_cast<std::size_t>(n));
    auto nl = buf.rfind('\n');
    if (nl != std::string::npos) {
      auto prev = buf.rfind('\n', nl - 1);
      last_ack = std::stol(buf.substr(prev == std::string::npos ? 0 : prev + 1));
    }
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st)) << "child exited early with status " << WEXITSTATUS(st);
  // Acknowledgements written before the kill are still in the pipe.
  ssize_t n;
  while ((n = ::read(fds[0], chunk, sizeof chunk)) > 0) buf.append(chunk, static_cast<std::size_t>(n));
  ::close(fds[0]);
  auto nl = buf.rfind('\n');
  ASSERT_NE(nl, std::string::npos);
  auto prev = buf.rfind('\n', nl - 1);
  last_ack = std::stol(buf.substr(prev == std::string::npos ? 0 : prev + 1));
  ASSERT_GE(last_ack, 3000);

  EXPECT_EQ(sqlite_scalar(path, "PRAGMA integrity_check"), "ok");
  SqliteOptions o;
  o.path = path;
  auto b = open_sqlite_backend(o);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  for (long i = 0; i <= last_ack; ++i) {
    auto v = (*b)->get({"ns", kAlice, "k" + std::to_string(i)});
    ASSERT_TRUE(v.ok());
    ASSERT_TRUE(v->has_value()) << "acknowledged entry " << i << " of " << last_ack << " lost";
    ASSERT_EQ((*v)->bytes.size(), static_cast<std::size_t>(100 + i % 300));
  }
  EXPECT_EQ(sqlite_scalar(path, "PRAGMA integrity_check"), "ok");
}

}  // namespace sqlite_backend_test
}  // namespace callcache
