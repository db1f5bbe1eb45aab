// Internal: the gateway's use of the L2 tier (SQLite by default, or Redis)
// under the engine: cached answers survive a restart.
//
// The Backend interface knows keys, tenants and namespaces but not tags, and
// writes invalidate some reads by tag (banChatMember drops every cached
// getChatMember of that chat). So each stored answer carries its tags and
// store time in a small envelope (l2_envelope.h), and a tag invalidation writes a marker
// (namespace "_gw_tags", key = the tag, value = the wall-clock time). An L2
// answer older than a marker of one of its tags is a miss. Markers live in
// the tier itself, so this holds across restarts too.
//
// Failures never fail a request: they are counted (Metrics::tier_error), and
// the answer is simply not found / not stored. Outages are logged once per
// outage by the DegradingBackend the gateway wraps the tier in
// (tiers::make_backend); other failures are logged once here, then at debug
// level. The same store serves SQLite and Redis (shared by every gateway
// using one server: an answer one gateway stored is an L2 hit for the
// others, and tag markers invalidate across gateways).
//
// Thread-safety: all members may be called from any thread (the Backend is
// thread-safe). L2 reads block the calling thread for one SQLite lookup (a
// few microseconds, on L1 misses only).
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/backend.h"
#include "callcache/clock.h"
#include "callcache/tenant.h"
#include "gateway/metrics.h"

namespace callcache::gateway {

struct L2Answer {
  std::string body;
  Duration ttl_left{};
};

class L2Store {
 public:
  // `marker_ttl`: how long tag markers are kept (at least the longest
  // ttl + stale_ttl of any namespace). REQUIRES: backend and metrics outlive
  // the store.
  L2Store(Backend& backend, Metrics& metrics, Duration marker_ttl);

  std::optional<L2Answer> get(std::string_view ns, TenantId tenant, std::string_view key);
  void put(std::string_view ns, TenantId tenant, std::string_view key, std::string_view body,
           Duration ttl, const std::vector<std::string>& tags);
  void invalidate_key(std::string_view ns, TenantId tenant, std::string_view key);
  void invalidate_tags(const std::vector<std::string>& tags);
  void invalidate_tenant(TenantId tenant);
  void invalidate_namespace(std::string_view ns);
  Status flush();
  Status health();
  Backend& backend() { return backend_; }

 private:
  void failed(const Status& s, const char* what);

  Backend& backend_;
  Metrics& metrics_;
  Duration marker_ttl_;
  std::atomic<bool> warned_{false};  // a non-outage failure was logged at warn level
};

}  // namespace callcache::gateway
