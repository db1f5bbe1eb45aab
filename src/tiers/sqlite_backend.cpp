// The SQLite tier (callcache/sqlite_backend.h).
//
// Two connections: `writer_` commits the write-behind queue and runs erases,
// purges and namespace bumps; `reader_` serves gets, so a read never waits for
// a commit (WAL readers see the last committed snapshot). Reads consult the
// queue first: `pending_` holds writes not yet handed to a commit, and
// `flushing_` the batch a commit is writing right now, so a write is visible
// from put() on, whether or not it has reached the file.
#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "callcache/sqlite_backend.h"
#include "sqlite_db.h"
#include "sqlite_schema.h"
#include "stored_record.h"

namespace callcache {
namespace {

using tiers::CallScope;
using tiers::Connection;
using tiers::sqlite_status;
using tiers::Stmt;

std::int64_t to_ms(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// A queued write: a value, or a tombstone (erase).
struct PendingOp {
  std::string ns;
  std::int64_t version = 0;
  std::uint64_t tenant = 0;
  std::string key;
  bool erase = false;
  std::string value;
  std::int64_t expires_ms = 0;
};

// The identity of a row: ns, version, tenant and key in one string.
std::string row_id(std::string_view ns, std::int64_t version, std::uint64_t tenant,
                   std::string_view key) {
  std::string id;
  id.reserve(ns.size() + key.size() + 17);
  id.append(ns);
  id.push_back('\0');
  char buf[16];
  std::memcpy(buf, &version, 8);
  std::memcpy(buf + 8, &tenant, 8);
  id.append(buf, 16);
  id.append(key);
  return id;
}

// Background tasks hold this (shared) and check `alive` under `mu` before
// touching the backend; the destructor clears `alive` under `mu`, so no task
// runs on a destroyed backend.
struct BackgroundState {
  std::mutex mu;  // held while a background task runs; guards alive and the ids
  bool alive = true;
  Scheduler::TaskId flush_id = 0;
  Scheduler::TaskId purge_id = 0;
};

class SqliteBackend final : public Backend {
 public:
  explicit SqliteBackend(SqliteOptions options)
      : options_(std::move(options)),
        clock_(options_.clock ? options_.clock : &default_clock()),
        anchor_(clock_->now()),
        anchor_wall_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count()) {}

  ~SqliteBackend() override {
    {
      std::lock_guard l(bg_->mu);
      bg_->alive = false;
      if (scheduler_) {
        scheduler_->cancel(bg_->flush_id);
        scheduler_->cancel(bg_->purge_id);
      }
    }
    own_scheduler_.reset();
    (void)flush();
  }

  Status open();

  std::string_view name() const noexcept override { return "sqlite"; }

  Result<std::optional<StoredValue>> get(const BackendKey& key) override {
    if (Status s = check_key(key); !s.ok()) return s;
    gets_.fetch_add(1, std::memory_order_relaxed);
    std::int64_t now = now_ms();
    std::int64_t version = ns_version(key.ns);
    std::string id = row_id(key.ns, version, key.tenant.value, key.key);
    if (auto p = pending_lookup(id, now)) return count_hit(std::move(*p));
    std::lock_guard l(reader_mu_);
    CallScope call(reader_);
    auto r = read_row(key, version, now);
    if (!r.ok()) return fail(r.status());
    return count_hit(std::move(*r));
  }

  Result<std::vector<std::optional<StoredValue>>> get_many(
      std::span<const BackendKey> keys) override {
    for (const auto& k : keys) {
      if (Status s = check_key(k); !s.ok()) return s;
    }
    gets_.fetch_add(keys.size(), std::memory_order_relaxed);
    std::vector<std::optional<StoredValue>> out(keys.size());
    std::vector<std::size_t> from_db;
    std::vector<std::int64_t> versions(keys.size());
    std::int64_t now = now_ms();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      versions[i] = ns_version(keys[i].ns);
      auto id = row_id(keys[i].ns, versions[i], keys[i].tenant.value, keys[i].key);
      if (auto p = pending_lookup(id, now)) {
        out[i] = std::move(*p);
      } else {
        from_db.push_back(i);
      }
    }
    if (!from_db.empty()) {
      std::lock_guard l(reader_mu_);
      CallScope call(reader_);
      // One read transaction: one snapshot and one lock for the whole batch.
      if (Status s = reader_.exec("BEGIN"); !s.ok()) return fail(s);
      for (std::size_t i : from_db) {
        auto r = read_row(keys[i], versions[i], now);
        if (!r.ok()) {
          (void)reader_.exec("ROLLBACK");
          return fail(r.status());
        }
        out[i] = std::move(*r);
      }
      if (Status s = reader_.exec("COMMIT"); !s.ok()) return fail(s);
    }
    for (const auto& v : out) {
      if (v) hits_.fetch_add(1, std::memory_order_relaxed);
    }
    return out;
  }

  Status put(const BackendKey& key, std::string_view bytes, Duration ttl) override {
    BackendItem item{key, bytes, ttl};
    return put_many(std::span<const BackendItem>(&item, 1));
  }

  Status put_many(std::span<const BackendItem> items) override {
    for (const auto& it : items) {
      if (Status s = check_key(it.key); !s.ok()) return s;
      if (it.ttl <= Duration::zero()) return Status::invalid_argument("sqlite put: ttl must be > 0");
    }
    std::int64_t now = now_ms();
    std::vector<PendingOp> ops;
    ops.reserve(items.size());
    for (const auto& it : items) {
      PendingOp op{std::string(it.key.ns), ns_version(it.key.ns), it.key.tenant.value,
                   std::string(it.key.key), false, std::string(it.bytes),
                   now + std::max<std::int64_t>(1, to_ms(it.ttl))};
      ops.push_back(std::move(op));
    }
    puts_.fetch_add(items.size(), std::memory_order_relaxed);
    return enqueue(std::move(ops));
  }

  Status erase(const BackendKey& key) override {
    if (Status s = check_key(key); !s.ok()) return s;
    deletes_.fetch_add(1, std::memory_order_relaxed);
    std::vector<PendingOp> ops(1);
    ops[0] = PendingOp{std::string(key.ns), ns_version(key.ns), key.tenant.value,
                       std::string(key.key), true, {}, 0};
    return enqueue(std::move(ops));
  }

  Status erase_tenant(TenantId tenant) override {
    deletes_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard w(writer_mu_);
    {
      // Holding writer_mu_, no commit is in progress: flushing_ is empty.
      std::lock_guard l(pending_mu_);
      std::erase_if(pending_, [&](const auto& kv) { return kv.second.tenant == tenant.value; });
    }
    CallScope call(writer_);
    del_tenant_.bind(1, static_cast<std::int64_t>(tenant.value));
    int rc = sqlite3_step(del_tenant_.get());
    del_tenant_.reset();
    if (rc != SQLITE_DONE) return fail(sqlite_status(rc, writer_.db(), "sqlite erase_tenant"));
    return Status();
  }

  Status erase_namespace(std::string_view ns) override {
    if (ns.empty()) return Status::invalid_argument("sqlite erase_namespace: empty namespace");
    deletes_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard w(writer_mu_);
    std::int64_t next = ns_version(ns) + 1;
    CallScope call(writer_);
    set_ns_version_.bind(1, ns);
    set_ns_version_.bind(2, next);
    int rc = sqlite3_step(set_ns_version_.get());
    set_ns_version_.reset();
    if (rc != SQLITE_DONE) return fail(sqlite_status(rc, writer_.db(), "sqlite erase_namespace"));
    std::unique_lock l(ns_mu_);
    ns_versions_[std::string(ns)] = next;
    return Status();
  }

  Result<std::uint64_t> purge_expired() override {
    std::lock_guard w(writer_mu_);
    CallScope call(writer_);
    purge_.bind(1, now_ms());
    int rc = sqlite3_step(purge_.get());
    purge_.reset();
    if (rc != SQLITE_DONE) return fail(sqlite_status(rc, writer_.db(), "sqlite purge"));
    auto n = static_cast<std::uint64_t>(sqlite3_changes64(writer_.db()));
    purged_.fetch_add(n, std::memory_order_relaxed);
    return n;
  }

  Status flush() override {
    std::lock_guard w(writer_mu_);
    return flush_locked();
  }

  Status health() override {
    // Reads may work while writes fail (a full disk, a lock held elsewhere):
    // the tier is healthy only if its last commit went through too, or a
    // commit of what failed goes through now.
    if (!commit_status().ok()) {
      if (Status f = flush(); !f.ok()) return f;
    }
    std::lock_guard l(reader_mu_);
    CallScope call(reader_);
    Status s = reader_.exec("SELECT 1 FROM schema_version");
    return s.ok() ? s : fail(s);
  }

  BackendStats stats() const override {
    BackendStats s;
    s.gets = gets_.load(std::memory_order_relaxed);
    s.hits = hits_.load(std::memory_order_relaxed);
    s.puts = puts_.load(std::memory_order_relaxed);
    s.deletes = deletes_.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    s.purged = purged_.load(std::memory_order_relaxed);
    std::lock_guard l(pending_mu_);
    s.pending_writes = pending_.size() + flushing_.size();
    return s;
  }

 private:
  static Status check_key(const BackendKey& k) {
    if (k.ns.empty()) return Status::invalid_argument("sqlite: empty namespace");
    if (k.key.empty()) return Status::invalid_argument("sqlite: empty key");
    return Status();
  }

  // Wall-clock milliseconds, moving with clock_ (so tests can use a ManualClock).
  std::int64_t now_ms() const { return anchor_wall_ms_ + to_ms(clock_->now() - anchor_); }

  std::int64_t ns_version(std::string_view ns) const {
    std::shared_lock l(ns_mu_);
    auto it = ns_versions_.find(ns);
    return it == ns_versions_.end() ? 0 : it->second;
  }

  Status fail(Status s) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }

  Result<std::optional<StoredValue>> count_hit(std::optional<StoredValue> v) {
    if (v) hits_.fetch_add(1, std::memory_order_relaxed);
    return v;
  }

  // The queued state of a row: nullopt if not queued; an empty optional
  // inside if queued as erased or expired.
  std::optional<std::optional<StoredValue>> pending_lookup(const std::string& id,
                                                           std::int64_t now) const {
    std::lock_guard l(pending_mu_);
    const PendingOp* op = nullptr;
    if (auto it = pending_.find(id); it != pending_.end()) {
      op = &it->second;
    } else if (auto f = flushing_.find(id); f != flushing_.end()) {
      op = &f->second;
    }
    if (!op) return std::nullopt;
    if (op->erase || op->expires_ms <= now) return std::optional<StoredValue>();
    return std::optional<StoredValue>(
        StoredValue{op->value, tiers::ttl_from_ms(op->expires_ms - now)});
  }

  // REQUIRES: reader_mu_ held, inside a CallScope.
  Result<std::optional<StoredValue>> read_row(const BackendKey& key, std::int64_t version,
                                              std::int64_t now) {
    get_.bind(1, key.ns);
    get_.bind(2, version);
    get_.bind(3, static_cast<std::int64_t>(key.tenant.value));
    get_.bind_blob(4, key.key);
    get_.bind(5, now);
    int rc = sqlite3_step(get_.get());
    std::optional<StoredValue> out;
    if (rc == SQLITE_ROW) {
      const void* p = sqlite3_column_blob(get_.get(), 0);
      int n = sqlite3_column_bytes(get_.get(), 0);
      std::int64_t expires = sqlite3_column_int64(get_.get(), 1);
      out = StoredValue{std::string(static_cast<const char*>(p), static_cast<std::size_t>(n)),
                        tiers::ttl_from_ms(expires - now)};
      rc = SQLITE_DONE;
    }
    get_.reset();
    if (rc != SQLITE_DONE) return sqlite_status(rc, reader_.db(), "sqlite get");
    return out;
  }

  Status enqueue(std::vector<PendingOp> ops) {
    if (commit_failing_.load(std::memory_order_acquire)) {
      // The last commit failed (its batch is still queued): a write is
      // accepted only once a commit goes through again, so callers see the
      // failure (and back off) instead of queueing writes that may never
      // reach the file.
      if (Status s = flush(); !s.ok()) return s;
    }
    bool full;
    {
      std::lock_guard l(pending_mu_);
      full = pending_.size() + ops.size() > options_.max_pending_writes;
    }
    if (full) {
      // The queue is full: this writer commits what is queued, synchronously.
      if (Status s = flush(); !s.ok()) return s;
    }
    std::lock_guard l(pending_mu_);
    for (auto& op : ops) {
      std::string id = row_id(op.ns, op.version, op.tenant, op.key);
      pending_.insert_or_assign(std::move(id), std::move(op));
    }
    return Status();
  }

  // REQUIRES: writer_mu_ held.
  Status flush_locked() {
    {
      std::lock_guard l(pending_mu_);
      if (pending_.empty()) {
        commit_failing_.store(false, std::memory_order_release);  // nothing failed is queued
        return Status();
      }
      flushing_.swap(pending_);
    }
    Status s = commit(flushing_);
    std::lock_guard l(pending_mu_);
    if (!s.ok()) {
      // Keep the batch for the next attempt, unless newer writes replaced it.
      for (auto& [id, op] : flushing_) pending_.try_emplace(id, std::move(op));
      errors_.fetch_add(1, std::memory_order_relaxed);
      last_commit_error_ = s;
    }
    commit_failing_.store(!s.ok(), std::memory_order_release);
    flushing_.clear();
    return s;
  }

  // OK, or why the last commit failed (until one succeeds).
  Status commit_status() const {
    if (!commit_failing_.load(std::memory_order_acquire)) return Status();
    std::lock_guard l(pending_mu_);
    return commit_failing_.load(std::memory_order_relaxed) ? last_commit_error_ : Status();
  }

  // REQUIRES: writer_mu_ held. Does not touch `batch` concurrently with
  // readers (they only read it under pending_mu_, and it is not modified).
  Status commit(const std::unordered_map<std::string, PendingOp>& batch) {
    CallScope call(writer_);
    if (Status s = writer_.exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    for (const auto& [id, op] : batch) {
      Stmt& st = op.erase ? delete_ : upsert_;
      st.bind(1, op.ns);
      st.bind(2, op.version);
      st.bind(3, static_cast<std::int64_t>(op.tenant));
      st.bind_blob(4, op.key);
      if (!op.erase) {
        st.bind_blob(5, op.value);
        st.bind(6, op.expires_ms);
      }
      int rc = sqlite3_step(st.get());
      st.reset();
      if (rc != SQLITE_DONE) {
        Status s = sqlite_status(rc, writer_.db(), "sqlite write");
        (void)writer_.exec("ROLLBACK");
        return s;
      }
    }
    if (Status s = writer_.exec("COMMIT"); !s.ok()) {
      (void)writer_.exec("ROLLBACK");
      return s;
    }
    return Status();
  }

  void schedule_flush() {
    auto bg = bg_;
    bg_->flush_id = scheduler_->schedule_after(options_.flush_interval, [this, bg] {
      std::lock_guard l(bg->mu);
      if (!bg->alive) return;
      (void)flush();
      schedule_flush();
    });
  }

  void schedule_purge() {
    auto bg = bg_;
    bg_->purge_id = scheduler_->schedule_after(options_.purge_interval, [this, bg] {
      std::lock_guard l(bg->mu);
      if (!bg->alive) return;
      (void)purge_expired();
      schedule_purge();
    });
  }

  SqliteOptions options_;
  const Clock* clock_;
  TimePoint anchor_;
  std::int64_t anchor_wall_ms_;

  std::mutex reader_mu_;  // guards reader_ and get_
  Connection reader_;
  Stmt get_;

  std::mutex writer_mu_;  // guards writer_, its statements, and commits (one at a time)
  Connection writer_;
  Stmt upsert_, delete_, del_tenant_, set_ns_version_, purge_;

  mutable std::mutex pending_mu_;  // guards pending_, flushing_ and last_commit_error_
  std::unordered_map<std::string, PendingOp> pending_;
  std::unordered_map<std::string, PendingOp> flushing_;
  Status last_commit_error_;
  // The last commit failed; set and cleared (with pending_mu_ held) by flush_locked().
  std::atomic<bool> commit_failing_{false};

  mutable std::shared_mutex ns_mu_;  // guards ns_versions_ (writes also hold writer_mu_)
  std::map<std::string, std::int64_t, std::less<>> ns_versions_;

  std::atomic<std::uint64_t> gets_{0}, hits_{0}, puts_{0}, deletes_{0}, errors_{0}, purged_{0};

  std::shared_ptr<BackgroundState> bg_ = std::make_shared<BackgroundState>();
  std::unique_ptr<Scheduler> own_scheduler_;
  Scheduler* scheduler_ = nullptr;
};

Status SqliteBackend::open() {
  const std::string& path = options_.path;
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return Status::io_error("cannot create directory '" + dir.string() + "' for '" + path +
                              "': " + ec.message());
    }
  }
  if (Status s = writer_.open(path, *clock_, options_.call_timeout); !s.ok()) return s;
  {
    // Opening and migrating may take longer than one call's budget.
    auto wal = writer_.prepare("PRAGMA journal_mode=WAL");
    if (!wal.ok()) return Status(wal.status().code(), "'" + path + "': " + wal.status().message());
    int rc = sqlite3_step(wal->get());
    std::string mode = rc == SQLITE_ROW
                           ? reinterpret_cast<const char*>(sqlite3_column_text(wal->get(), 0))
                           : "";
    if (mode != "wal") {
      return rc == SQLITE_ROW ? Status::io_error("'" + path + "': cannot enable WAL (mode " +
                                                 mode + ")")
                              : sqlite_status(rc, writer_.db(), "'" + path + "': journal_mode");
    }
  }
  if (Status s = writer_.exec("PRAGMA synchronous=NORMAL"); !s.ok()) return s;
  if (Status s = tiers::ensure_schema(writer_, path); !s.ok()) return s;
  if (Status s = reader_.open(path, *clock_, options_.call_timeout); !s.ok()) return s;

  auto prep = [&](Connection& c, Stmt& st, const char* sql) -> Status {
    auto r = c.prepare(sql);
    if (!r.ok()) return r.status();
    st = std::move(*r);
    return Status();
  };
  Status s = prep(reader_, get_,
                  "SELECT value, expires_at FROM entries WHERE ns = ?1 AND version = ?2 AND "
                  "tenant = ?3 AND key = ?4 AND expires_at > ?5");
  if (s.ok()) {
    s = prep(writer_, upsert_,
             "INSERT OR REPLACE INTO entries(ns, version, tenant, key, value, expires_at) "
             "VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  }
  if (s.ok()) {
    s = prep(writer_, delete_,
             "DELETE FROM entries WHERE ns = ?1 AND version = ?2 AND tenant = ?3 AND key = ?4");
  }
  if (s.ok()) s = prep(writer_, del_tenant_, "DELETE FROM entries WHERE tenant = ?1");
  if (s.ok()) {
    s = prep(writer_, set_ns_version_, "INSERT OR REPLACE INTO namespaces(ns, version) VALUES(?1, ?2)");
  }
  if (s.ok()) {
    s = prep(writer_, purge_,
             "DELETE FROM entries WHERE expires_at <= ?1 OR version < COALESCE("
             "(SELECT n.version FROM namespaces n WHERE n.ns = entries.ns), 0)");
  }
  if (!s.ok()) return s;

  {
    auto r = writer_.prepare("SELECT ns, version FROM namespaces");
    if (!r.ok()) return r.status();
    while (sqlite3_step(r->get()) == SQLITE_ROW) {
      std::string ns(reinterpret_cast<const char*>(sqlite3_column_text(r->get(), 0)));
      ns_versions_[ns] = sqlite3_column_int64(r->get(), 1);
    }
  }

  if (options_.flush_interval > Duration::zero() || options_.purge_interval > Duration::zero()) {
    if (options_.scheduler) {
      scheduler_ = options_.scheduler;
    } else {
      own_scheduler_ = make_thread_scheduler(*clock_);
      scheduler_ = own_scheduler_.get();
    }
    std::lock_guard l(bg_->mu);
    if (options_.flush_interval > Duration::zero()) schedule_flush();
    if (options_.purge_interval > Duration::zero()) schedule_purge();
  }
  return Status();
}

}  // namespace

Result<std::unique_ptr<Backend>> open_sqlite_backend(SqliteOptions options) {
  if (options.path.empty()) return Status::invalid_argument("sqlite: path is empty");
  if (options.max_pending_writes == 0) {
    return Status::invalid_argument("sqlite: max_pending_writes must be > 0");
  }
  if (options.call_timeout <= Duration::zero()) {
    return Status::invalid_argument("sqlite: call_timeout must be > 0");
  }
  auto b = std::make_unique<SqliteBackend>(std::move(options));
  if (Status s = b->open(); !s.ok()) return s;
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace callcache
