// Internal: the admin routes, served on their own listener (loopback by
// default; a Bearer token is required when one is configured, except for the
// dashboard's files and /auth, which hold no data):
//   GET  /            the dashboard (dashboard_assets.h: /index.html,
//                     /dashboard.js, /dashboard.css, /favicon.svg), served
//                     with a Content-Security-Policy that allows this origin
//                     only; it reads /stats and /stats/history every second
//   GET  /auth        {"token_required":true|false}: whether the page must
//                     ask for the admin token
//   GET  /metrics     Prometheus text: gateway counters, engine StatsSnapshot,
//                     rate limiter, connections
//   GET  /stats       the same as JSON
//   GET  /stats/history  ?window=5m|1h [&since=<Unix ms>]: per-second (5m) or
//                     per-10-second (1h) history as JSON (stats_history.h)
//   GET  /healthz     200 while the process serves
//   GET  /readyz      200 when the gateway accepts traffic and L2 answers
//                     (503 while shutting down; L2 down = 200 "degraded")
//   POST /invalidate  ?tenant=<16 hex> | ?bot_token=<token> (hashed, never logged)
//                     [&namespace=<ns>] [&key=<key>] [&method=<getChat>]
//                     tenant alone: everything of that bot; namespace alone:
//                     the namespace; tenant+namespace+key: one entry;
//                     tenant+method: every answer of that method (any case:
//                     getchat is getChat) for the bot.
//
// Thread-safety: handle() may run concurrently; state is read through
// thread-safe snapshots.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "callcache/engine.h"
#include "callcache/rate_limiter.h"
#include "callcache/tiers.h"
#include "gateway/admin/stats_history.h"
#include "gateway/logic/preset.h"
#include "gateway/metrics.h"
#include "gateway/net/server.h"

namespace callcache::gateway {

struct AdminDeps {
  Engine* engine = nullptr;
  Metrics* metrics = nullptr;
  RateLimiter* limiter = nullptr;         // optional
  Tiers* tiers = nullptr;                 // invalidation of both tiers; its L2 (if any) for stats
  const logic::Preset* preset = nullptr;  // optional: canonical method names
  // Connection gauges of the client-facing server (optional).
  std::function<std::size_t()> connections;
  std::function<std::size_t()> busy;
  const std::atomic<bool>* stopping = nullptr;
  const StatsHistory* history = nullptr;  // optional: /stats/history
  TenantKey tenant_key = kDefaultTenantKey;
  std::string admin_token;  // "" = no token required
};

// Whether `authorization` (an Authorization header value) is exactly
// "Bearer <token>". Constant-time in the token: both sides are hashed
// (SHA-256) and the digests compared with CRYPTO_memcmp, so the time taken
// depends on the lengths only, never on where or whether the header differs
// from the token (an early-exit comparison would leak the token a prefix at
// a time).
bool admin_token_matches(std::string_view authorization, std::string_view token);

class AdminHandler final : public HttpHandler {
 public:
  explicit AdminHandler(AdminDeps deps) : deps_(std::move(deps)) {}
  boost::asio::awaitable<HttpResponse> handle(HttpRequest request) override;
  // The synchronous core (all admin routes are synchronous).
  HttpResponse respond(const HttpRequest& request);

 private:
  HttpResponse invalidate(std::string_view query);
  std::string stats_json();
  std::string metrics_text();

  AdminDeps deps_;
};

}  // namespace callcache::gateway
