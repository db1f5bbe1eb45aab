#include "gateway/l2_store.h"

#include <spdlog/spdlog.h>

#include "gateway/l2_envelope.h"

namespace callcache::gateway {
namespace {

constexpr std::string_view kMarkerNs = "_gw_tags";

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

L2Store::L2Store(Backend& backend, Metrics& metrics, Duration marker_ttl)
    : backend_(backend), metrics_(metrics), marker_ttl_(marker_ttl) {}

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
  auto got = backend_.get(BackendKey{ns, tenant, key});
  if (!got.ok()) {
    failed(got.status(), "get");
    return std::nullopt;
  }
  if (!got->has_value()) return std::nullopt;
  StoredValue& v = **got;
  auto envelope = decode_l2_envelope(v.bytes);
  if (!envelope) return std::nullopt;
  const std::vector<std::string>& tags = envelope->tags;
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
      if (m && decode_marker_ms(m->bytes) >= envelope->stored_ms) return std::nullopt;
    }
  }
  return L2Answer{std::string(envelope->body), v.ttl_left};
}

void L2Store::put(std::string_view ns, TenantId tenant, std::string_view key,
                  std::string_view body, Duration ttl, const std::vector<std::string>& tags) {
  auto bytes = encode_l2_envelope(wall_ms(), tags, body);
  if (!bytes) {
    failed(Status::invalid_argument("a tag holds a tab or a newline"), "put");
    return;
  }
  Status s = backend_.put(BackendKey{ns, tenant, key}, *bytes, ttl);
  if (!s.ok()) failed(s, "put");
}

void L2Store::invalidate_key(std::string_view ns, TenantId tenant, std::string_view key) {
  Status s = backend_.erase(BackendKey{ns, tenant, key});
  if (!s.ok()) failed(s, "erase");
}

void L2Store::invalidate_tags(const std::vector<std::string>& tags) {
  if (tags.empty()) return;
  std::string now = std::to_string(wall_ms());
  std::vector<BackendItem> items;
  items.reserve(tags.size());
  for (const auto& t : tags) items.push_back({BackendKey{kMarkerNs, kSharedTenant, t}, now, marker_ttl_});
  Status s = backend_.put_many(items);
  if (!s.ok()) failed(s, "put_many");
}

void L2Store::invalidate_tenant(TenantId tenant) {
  Status s = backend_.erase_tenant(tenant);
  if (!s.ok()) failed(s, "erase_tenant");
}

void L2Store::invalidate_namespace(std::string_view ns) {
  Status s = backend_.erase_namespace(ns);
  if (!s.ok()) failed(s, "erase_namespace");
}

Status L2Store::flush() { return backend_.flush(); }
Status L2Store::health() { return backend_.health(); }

}  // namespace callcache::gateway
