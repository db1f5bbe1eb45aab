#include "gateway/l2_store.h"

#include <spdlog/spdlog.h>

#include <charconv>

namespace callcache::gateway {
namespace {

constexpr std::string_view kMarkerNs = "_gw_tags";
constexpr std::string_view kMagic = "cc1\n";

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t parse_ms(std::string_view s) {
  std::int64_t v = -1;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() ? v : -1;
}

}  // namespace

L2Store::L2Store(Backend& backend, Metrics& metrics, Duration marker_ttl,
                 std::vector<std::string> namespaces, Scheduler* scheduler)
    : backend_(backend),
      metrics_(metrics),
      marker_ttl_(marker_ttl),
      namespaces_(std::move(namespaces)),
      scheduler_(scheduler) {}

L2Store::~L2Store() {
  std::lock_guard lock(retry_->mu);  // waits for a retry that is running
  retry_->alive = false;
  if (scheduler_ && retry_->task) scheduler_->cancel(retry_->task);
}

void L2Store::arm_retry(Duration delay) {
  if (!scheduler_) return;
  std::lock_guard lock(retry_->mu);
  if (!retry_->alive || retry_->armed) return;
  schedule_retry_locked(delay);
}

void L2Store::schedule_retry_locked(Duration delay) {
  retry_->armed = true;
  std::shared_ptr<RetryState> st = retry_;
  retry_->task = scheduler_->schedule_after(delay, [this, st, delay] {
    std::lock_guard lock(st->mu);  // the destructor waits for this to finish
    if (!st->alive) return;
    st->armed = false;
    if (!replay_missed() && has_missed_.load(std::memory_order_acquire)) {
      schedule_retry_locked(std::min<Duration>(delay * 2, std::chrono::seconds(5)));
    }
  });
}

void L2Store::failed(const Status& s, const char* what) {
  metrics_.tier_error();
  // Outages (the tier down or slow) are logged once per outage by the
  // DegradingBackend the gateway wraps every tier in; other failures (a
  // value the tier refuses) once here, then at debug level.
  const Code c = s.code();
  const bool outage = c == Code::kUnavailable || c == Code::kTimeout || c == Code::kIoError ||
                      c == Code::kCorruption || c == Code::kInternal || c == Code::kShutdown ||
                      c == Code::kDeadlineExceeded;
  if (!outage && !warned_.exchange(true, std::memory_order_relaxed)) {
    spdlog::warn("L2 {} {} failed: {} (further failures are logged at debug level)",
                 backend_.name(), what, s.to_string());
  } else {
    spdlog::debug("L2 {} {} failed: {}", backend_.name(), what, s.to_string());
  }
}

std::optional<L2Answer> L2Store::get(std::string_view ns, TenantId tenant, std::string_view key) {
  // Until the invalidations the tier missed are applied, any answer in it
  // may be one a write dropped: none is served.
  if (has_missed_.load(std::memory_order_acquire) && !replay_missed()) return std::nullopt;
  auto got = backend_.get(BackendKey{ns, tenant, key});
  if (!got.ok()) {
    failed(got.status(), "get");
    return std::nullopt;
  }
  if (!got->has_value()) return std::nullopt;
  StoredValue& v = **got;
  // Envelope: "cc1\n<stored ms>\n<tag>\t<tag>...\n<body>"
  std::string_view s = v.bytes;
  if (!s.starts_with(kMagic)) return std::nullopt;
  s.remove_prefix(kMagic.size());
  std::size_t nl = s.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  std::int64_t stored = parse_ms(s.substr(0, nl));
  s.remove_prefix(nl + 1);
  nl = s.find('\n');
  if (stored < 0 || nl == std::string_view::npos) return std::nullopt;
  std::string_view tag_text = s.substr(0, nl);
  std::string_view body = s.substr(nl + 1);
  std::vector<std::string> tags;
  while (!tag_text.empty()) {
    std::size_t tab = tag_text.find('\t');
    tags.emplace_back(tag_text.substr(0, tab));
    if (tab == std::string_view::npos) break;
    tag_text.remove_prefix(tab + 1);
  }
  if (!tags.empty()) {
    std::vector<BackendKey> keys;
    keys.reserve(tags.size());
    for (const auto& t : tags) keys.push_back(BackendKey{kMarkerNs, kSharedTenant, t});
    auto markers = backend_.get_many(keys);
    if (!markers.ok()) {
      failed(markers.status(), "get_many");
      return std::nullopt;  // cannot prove it is still valid
    }
    for (const auto& m : *markers) {
      if (m && parse_ms(m->bytes) >= stored) return std::nullopt;
    }
  }
  return L2Answer{std::string(body), v.ttl_left};
}

void L2Store::put(std::string_view ns, TenantId tenant, std::string_view key,
                  std::string_view body, Duration ttl, const std::vector<std::string>& tags) {
  std::string bytes;
  bytes.reserve(body.size() + 64);
  bytes += kMagic;
  bytes += std::to_string(wall_ms());
  bytes += '\n';
  for (std::size_t i = 0; i < tags.size(); ++i) {
    if (i) bytes += '\t';
    bytes += tags[i];
  }
  bytes += '\n';
  bytes += body;
  Status s = backend_.put(BackendKey{ns, tenant, key}, bytes, ttl);
  if (!s.ok()) failed(s, "put");
}

void L2Store::invalidate_key(std::string_view ns, TenantId tenant, std::string_view key) {
  Missed m;
  m.kind = Missed::kKey;
  m.ns = ns;
  m.tenant = tenant;
  m.key = key;
  invalidate(std::move(m));
}

void L2Store::invalidate_tags(const std::vector<std::string>& tags) {
  if (tags.empty()) return;
  Missed m;
  m.kind = Missed::kTags;
  m.tags = tags;
  invalidate(std::move(m));
}

void L2Store::invalidate_tenant(TenantId tenant) {
  Missed m;
  m.kind = Missed::kTenant;
  m.tenant = tenant;
  invalidate(std::move(m));
}

void L2Store::invalidate_namespace(std::string_view ns) {
  Missed m;
  m.kind = Missed::kNamespace;
  m.ns = ns;
  invalidate(std::move(m));
}

void L2Store::invalidate(Missed m) {
  // Order does not matter: an invalidation only removes, and a marker
  // written late (its time is when it is written) drops more, never less.
  if (Status s = apply(m); !s.ok()) remember(std::move(m));
}

Status L2Store::apply(const Missed& m) {
  Status s;
  const char* what = "erase";
  switch (m.kind) {
    case Missed::kKey:
      s = backend_.erase(BackendKey{m.ns, m.tenant, m.key});
      break;
    case Missed::kTags: {
      what = "put_many";
      std::string now = std::to_string(wall_ms());
      std::vector<BackendItem> items;
      items.reserve(m.tags.size());
      for (const auto& t : m.tags)
        items.push_back({BackendKey{kMarkerNs, kSharedTenant, t}, now, marker_ttl_});
      s = backend_.put_many(items);
      break;
    }
    case Missed::kTenant:
      what = "erase_tenant";
      s = backend_.erase_tenant(m.tenant);
      break;
    case Missed::kNamespace:
      what = "erase_namespace";
      s = backend_.erase_namespace(m.ns);
      break;
  }
  // A write-behind tier (SQLite) queues erases and markers: commit them now,
  // before the write that caused them is answered, or a crash in between
  // would bring the invalidated answer back from disk.
  if (s.ok()) s = backend_.flush();
  if (!s.ok()) failed(s, what);
  return s;
}

void L2Store::remember(Missed m) {
  std::lock_guard lock(missed_mu_);
  if (missed_.size() < kMaxMissed) {
    missed_.push_back(std::move(m));
  } else {
    missed_overflow_ = true;  // too many to replay one by one: every namespace goes
  }
  has_missed_.store(true, std::memory_order_release);
  arm_retry(std::chrono::milliseconds(200));
}

bool L2Store::replay_missed() {
  std::unique_lock lock(missed_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return false;  // another thread is replaying: not yet trusted
  if (missed_overflow_) {
    for (const auto& ns : namespaces_) {
      if (!backend_.erase_namespace(ns).ok()) return false;
    }
    if (!backend_.flush().ok()) return false;
    missed_.clear();
    missed_overflow_ = false;
  }
  while (!missed_.empty()) {
    if (!apply(missed_.front()).ok()) return false;
    missed_.erase(missed_.begin());
  }
  has_missed_.store(false, std::memory_order_release);
  spdlog::info("L2 {}: the invalidations it missed while failing are applied", backend_.name());
  return true;
}

Status L2Store::flush() { return backend_.flush(); }
Status L2Store::health() { return backend_.health(); }

}  // namespace callcache::gateway
