// Internal: the gateway's pure request handler for the Telegram Bot API
// front — request in, response out. All effects go through injected
// interfaces: the upstream (UpstreamExecutor), the cache (the library's
// Tiers, read through TieredCache), pacing (RateLimiter), metrics.
//
// Per request: logic::parse_telegram → logic::plan → one of
//   CachedRead  the library's read-through (cached_answer.h): L1 (fresh →
//               hit; refresh-due/stale → served and refreshed in the
//               background), then L2, then one coalesced upstream call per
//               (namespace, tenant, key); {"ok":true} answers are kept in
//               both tiers, errors the preset caches negatively in memory
//               only, and nothing an invalidation overtook
//   PacedSend   wait for the rate limiter (or 429 with an honest retry_after
//               beyond pacing_max_wait), forward, honour an upstream 429
//               (penalise its key, retry up to retry_429 times), invalidate
//   Write       forward, invalidate what it changes, open the bypass window
//   Passthrough forward as is (paced first when the plan says so)
//   Reject      the Bot API-shaped 4xx the plan wrote
// The upstream failing gives 502 {"ok":false,"error_code":502,...}.
// Large uploads (multipart) and the large answers of everything but cached
// reads (file downloads) stream through: see HttpServer and UpstreamClient.
//
// Thread-safety: handle() may run concurrently on any number of threads.
// REQUIRES: every dependency outlives the handler and every coroutine it
// started (background refreshes finish or are destroyed with the io_context).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "callcache/rate_limiter.h"
#include "callcache/tiers.h"
#include "gateway/cached_answer.h"
#include "gateway/logic/plan.h"
#include "gateway/metrics.h"
#include "gateway/net/server.h"
#include "gateway/net/upstream.h"

namespace callcache::gateway {

// The Bot API's error shape: {"ok":false,"error_code":<status>,
// "description":...} with an optional "parameters":{"retry_after":N} (and a
// Retry-After header). The Telegram front answers its errors in it, and the
// gateway gives it to the server for the answers the server gives itself
// (ServerOptions::error_answer).
HttpResponse bot_api_error(int status, std::string_view description, int retry_after = -1);

struct BotApiHandlerOptions {
  Origin upstream;
  TenantKey tenant_key = kDefaultTenantKey;
  logic::RequestLimits limits;
  // Pacing (ignored without a limiter).
  Duration pacing_max_wait = std::chrono::seconds(10);
  std::uint64_t retry_429 = 2;
  Duration retry_max_delay = std::chrono::seconds(5);
  // Used when an upstream 429 names no retry_after.
  Duration default_retry_after = std::chrono::seconds(1);
  // Fill HttpResponse::log_target (token-redacted) for the access log; off
  // when no access log is written (it costs an allocation per request).
  bool log_targets = true;
};

struct BotApiHandlerDeps {
  const logic::Preset* preset = nullptr;
  logic::PostWriteState* post_write = nullptr;
  Tiers* tiers = nullptr;          // the engine and the L2 tier (if any)
  RateLimiter* limiter = nullptr;  // optional: no pacing without it
  UpstreamExecutor* upstream = nullptr;
  Metrics* metrics = nullptr;
};

class BotApiHandler final : public HttpHandler {
 public:
  // Opens a read-through cache for every namespace of the preset. Errors: a
  // namespace the engine lacks (kNotFound) or bound to another type.
  static Result<std::unique_ptr<BotApiHandler>> create(BotApiHandlerDeps deps,
                                                       BotApiHandlerOptions options);

  boost::asio::awaitable<HttpResponse> handle(HttpRequest request) override;
  // Multipart uploads stream through; other bodies are buffered.
  bool stream_request_body(const HttpRequest& head) const override;

 private:
  using Response = boost::asio::awaitable<HttpResponse>;
  BotApiHandler(BotApiHandlerDeps deps, BotApiHandlerOptions options);

  // `label` (metrics) views the preset or a literal: valid while the handler lives.
  Response cached_read(HttpRequest request, logic::CachedRead read, std::string_view label);
  Response paced(HttpRequest request, std::string_view label, const std::string& method,
                 const logic::Pacing* pacing, Outcome outcome, bool json_answer = true);
  // `stream_answer`: a large answer may stay streaming (not for answers that
  // are stored). `json_answer`: a buffered answer that is not a JSON object
  // becomes the error kUpstreamNotJson.
  boost::asio::awaitable<UpstreamResult> forward(HttpRequest request, std::string_view label,
                                                 bool stream_answer = false,
                                                 bool json_answer = true);
  void apply(const logic::Invalidations& invalidations);
  std::string_view label_of(const logic::TelegramCall& call) const;
  BotApiHandlerDeps deps_;
  // Upstream 429s that set a pacing back-off so far (calls that slept for a
  // slot meanwhile are paced again).
  std::atomic<std::uint64_t> penalties_{0};
  BotApiHandlerOptions options_;
  std::map<std::string, AnswerCache, std::less<>> caches_;
};

}  // namespace callcache::gateway
