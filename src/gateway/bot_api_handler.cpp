// BotApiHandler: the Bot API front's request handling (no socket code here).
#include "gateway/bot_api_handler.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cmath>

#include "gateway/error.h"
#include "gateway/logic/request.h"
#include "gateway/logic/telegram_call.h"

namespace callcache::gateway {
namespace {

namespace net = boost::asio;
using boost::asio::awaitable;
using boost::asio::use_awaitable;

// A cached answer's status: 200 for {"ok":true...}; an error answer stored
// negatively carries its own "error_code".
int status_of_body(std::string_view body) {
  if (body.starts_with("{\"ok\":true")) return 200;
  std::size_t p = body.find("\"error_code\":");
  if (p == std::string_view::npos) return logic::cacheable_answer(body) ? 200 : 400;
  p += 13;
  int code = 0;
  auto r = std::from_chars(body.data() + p, body.data() + body.size(), code);
  return r.ec == std::errc() && code >= 400 && code <= 599 ? code : 400;
}

HttpResponse from_entry(Ref<std::string> ref, Outcome outcome) {
  HttpResponse r;
  auto holder = std::make_shared<Ref<std::string>>(std::move(ref));
  r.shared_body = std::shared_ptr<const std::string>(holder, holder->get());
  r.status = status_of_body(*r.shared_body);
  r.outcome = outcome_name(outcome);
  return r;
}


bool dropped_request_header(std::string_view name) {
  return iequals(name, "accept-encoding") || iequals(name, "expect") ||
         iequals(name, "connection") || iequals(name, "keep-alive") || iequals(name, "host") ||
         iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "te") || iequals(name, "upgrade") || iequals(name, "proxy-connection");
}

HttpRequest upstream_request(const HttpRequest& in) {
  HttpRequest out;
  out.method = in.method;
  out.target = in.target;
  out.body = in.body;
  out.body_stream = in.body_stream;
  for (const auto& h : in.headers) {
    if (!dropped_request_header(h.name)) out.headers.push_back(h);
  }
  return out;
}

// Moves the body (uploads can be large) when the request is not needed again.
HttpRequest upstream_request(HttpRequest&& in) {
  HttpRequest out;
  out.method = std::move(in.method);
  out.target = std::move(in.target);
  out.body = std::move(in.body);
  out.body_stream = std::move(in.body_stream);
  for (auto& h : in.headers) {
    if (!dropped_request_header(h.name)) out.headers.push_back(std::move(h));
  }
  return out;
}

HttpResponse relay(UpstreamResult& u, Outcome outcome) {
  if (u.error) {
    HttpResponse r = bot_api_error(502, "Bad Gateway: " + u.error.message());
    r.outcome = outcome_name(Outcome::kError);
    return r;
  }
  HttpResponse r = std::move(u.response);
  std::erase_if(r.headers, [](const Header& h) {
    return iequals(h.name, "server") || iequals(h.name, "date");
  });
  r.outcome = outcome_name(outcome);
  return r;
}

// Rate-limiter attributes. A public @username has no numeric id: it is
// hashed to a stable negative id (group limits apply to channels).
struct PacingCall {
  std::string bot;
  CallAttributes attrs;
  KeyScope penalty_scope = key_scope::kBot;
};

void fill_pacing(PacingCall& pc, const logic::Pacing& p, std::string_view method) {
  pc.bot = to_hex(p.bot);
  pc.attrs.method = method;
  pc.attrs.bot = pc.bot;
  pc.attrs.paid = p.paid;
  if (p.scope == logic::PaceScope::kChat && !p.chat_id.empty()) {
    std::int64_t id = 0;
    auto r = std::from_chars(p.chat_id.data(), p.chat_id.data() + p.chat_id.size(), id);
    if (r.ec != std::errc() || r.ptr != p.chat_id.data() + p.chat_id.size()) {
      id = -static_cast<std::int64_t>(siphash24(kDefaultTenantKey, p.chat_id) >> 2) - 1;
    }
    pc.attrs.chat = id;
    pc.penalty_scope = key_scope::kBot | key_scope::kChat;
  }
}

int ceil_seconds(Duration d) {
  double s = std::chrono::duration<double>(d).count();
  return std::max(1, static_cast<int>(std::ceil(s)));
}

awaitable<void> sleep_for(Duration d) {
  net::steady_timer timer(co_await net::this_coro::executor,
                          std::chrono::duration_cast<net::steady_timer::duration>(d));
  boost::system::error_code ec;
  co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
}

}  // namespace

BotApiHandler::BotApiHandler(BotApiHandlerDeps deps, BotApiHandlerOptions options)
    : deps_(deps), options_(std::move(options)) {}

Result<std::unique_ptr<BotApiHandler>> BotApiHandler::create(BotApiHandlerDeps deps,
                                                             BotApiHandlerOptions options) {
  if (!deps.preset || !deps.post_write || !deps.engine || !deps.upstream || !deps.metrics) {
    return Status::invalid_argument("BotApiHandler: a required dependency is missing");
  }
  std::unique_ptr<BotApiHandler> h(new BotApiHandler(deps, std::move(options)));
  for (const auto& spec : deps.preset->namespaces) {
    auto cache = Cache<std::string>::open(*deps.engine, spec.name);
    if (!cache.ok()) return cache.status();
    h->caches_.emplace(spec.name, *cache);
  }
  return h;
}

std::string_view BotApiHandler::label_of(const logic::TelegramCall& call) const {
  if (call.kind == logic::TelegramCall::Kind::kFile) return "file";
  const logic::Preset& p = *deps_.preset;
  if (const auto* r = p.find_read(call.method_lower)) return r->name;
  if (const auto* a = p.find_action(call.method_lower)) return a->name;
  if (auto it = p.passthrough.find(call.method_lower); it != p.passthrough.end()) return it->second;
  return "other";
}

awaitable<HttpResponse> BotApiHandler::handle(HttpRequest request) {
  std::vector<logic::HeaderView> headers;
  headers.reserve(request.headers.size());
  std::optional<std::uint64_t> content_length;
  for (const auto& h : request.headers) {
    headers.push_back({h.name, h.value});
    if (iequals(h.name, "content-length")) {
      std::uint64_t n = 0;
      auto r = std::from_chars(h.value.data(), h.value.data() + h.value.size(), n);
      if (r.ec == std::errc()) content_length = n;
    }
  }
  logic::HttpRequestView view;
  view.method = request.method;
  view.target = request.target;
  view.headers = headers;
  view.content_type = request.header("content-type");
  view.content_length = content_length;
  view.body = request.body;
  view.limits = options_.limits;

  auto call = logic::parse_telegram(view, options_.tenant_key);
  std::string log_target;
  if (options_.log_targets) log_target = logic::redact_target(request.target, options_.tenant_key);
  if (!call.ok()) {
    HttpResponse r;
    r.status = logic::http_status_of(call.status());
    r.body = logic::error_json(call.status());
    r.outcome = outcome_name(Outcome::kRejected);
    r.log_target = std::move(log_target);
    deps_.metrics->count(Outcome::kRejected);
    co_return r;
  }
  std::string_view label = label_of(*call);
  logic::Plan plan =
      logic::plan(*call, *deps_.preset, deps_.engine->clock().now(), *deps_.post_write);

  HttpResponse res;
  if (auto* read = std::get_if<logic::CachedRead>(&plan)) {
    res = co_await cached_read(std::move(request), std::move(*read), label);
  } else if (auto* send = std::get_if<logic::PacedSend>(&plan)) {
    res = co_await paced(std::move(request), label, send->method, &send->pacing, Outcome::kPaced);
    apply(send->invalidations);
  } else if (auto* write = std::get_if<logic::Write>(&plan)) {
    res = co_await paced(std::move(request), label, write->method, nullptr, Outcome::kPass);
    apply(write->invalidations);
  } else if (auto* pass = std::get_if<logic::Passthrough>(&plan)) {
    res = co_await paced(std::move(request), label, pass->method,
                         pass->pacing ? &*pass->pacing : nullptr,
                         pass->pacing ? Outcome::kPaced : Outcome::kPass,
                         /*json_answer=*/call->kind != logic::TelegramCall::Kind::kFile);
  } else {
    const auto& reject = std::get<logic::Reject>(plan);
    res.status = reject.status;
    res.body = reject.json;
    res.outcome = outcome_name(Outcome::kRejected);
    deps_.metrics->count(Outcome::kRejected);
  }
  res.log_target = std::move(log_target);
  deps_.metrics->tenant_answer(call->tenant, res.outcome);
  co_return res;
}

bool BotApiHandler::stream_request_body(const HttpRequest& head) const {
  // Uploads are never parsed: they pass through as they arrive. Parsed
  // bodies (JSON, forms) are buffered (and limited by the planner).
  return logic::body_kind(head.header("content-type")) == logic::BodyKind::kMultipart;
}

awaitable<UpstreamResult> BotApiHandler::forward(HttpRequest request, std::string_view label,
                                                 bool stream_answer, bool json_answer) {
  // (No co_await inside ?: — GCC 12 miscompiles it.)
  UpstreamResult u;
  if (stream_answer) {
    u = co_await deps_.upstream->send_streaming(options_.upstream, std::move(request));
  } else {
    u = co_await deps_.upstream->send(options_.upstream, std::move(request));
  }
  // Every Bot API answer, success or error, is a JSON object. Anything else
  // (a proxy's HTML error page, a body cut short with a matching length) is
  // an upstream failure: a stale answer or a 502 in the Bot API's shape,
  // never relayed as if it were the answer.
  if (!u.error && json_answer && !u.response.body_stream &&
      !logic::bot_api_answer(u.response.body)) {
    spdlog::warn("upstream {} ({}): HTTP {} with a body that is not Bot API JSON ({} bytes)",
                 options_.upstream.key(), label, u.response.status, u.response.body.size());
    u.error = GatewayError::kUpstreamNotJson;
    u.response = HttpResponse();
  }
  deps_.metrics->upstream_call(label, u.error ? 0 : u.response.status, u.latency);
  // A client gone is not news; a body that is not JSON was logged above.
  if (u.error && u.error != GatewayError::kRequestBodyAborted &&
      u.error != GatewayError::kUpstreamNotJson) {
    spdlog::warn("upstream {} ({}): {}", options_.upstream.key(), label, u.error.message());
  }
  co_return u;
}

awaitable<HttpResponse> BotApiHandler::cached_read(HttpRequest request, logic::CachedRead read,
                                                   std::string_view label) {
  Metrics& m = *deps_.metrics;
  if (read.bypass) {
    UpstreamResult u = co_await forward(upstream_request(request), label);
    m.count(u.error ? Outcome::kError : Outcome::kBypass);
    co_return relay(u, Outcome::kBypass);
  }
  auto cache_it = caches_.find(read.ns);
  if (cache_it == caches_.end()) {  // the preset and the engine disagree: do not cache
    UpstreamResult u = co_await forward(upstream_request(request), label);
    m.count(u.error ? Outcome::kError : Outcome::kPass);
    co_return relay(u, Outcome::kPass);
  }
  const NamespaceId ns = cache_it->second.id();
  Engine& engine = *deps_.engine;
  std::string flight_key;

  for (int round = 0; round < 3; ++round) {
    Freshness freshness = Freshness::kMiss;
    internal::Entry* e = engine.lookup_for_load(ns, read.tenant, read.key, &freshness);
    if (e && (freshness == Freshness::kFresh || freshness == Freshness::kRefreshDue ||
              freshness == Freshness::kStale)) {
      auto ref = Ref<std::string>::adopt(e);
      Outcome outcome = freshness == Freshness::kStale ? Outcome::kStale : Outcome::kHit;
      engine.record(ns, outcome == Outcome::kStale ? Engine::LoadEvent::kStaleHit
                                                   : Engine::LoadEvent::kHit);
      if (freshness != Freshness::kFresh) {
        if (flight_key.empty()) flight_key = read.ns + '\x1f' + to_hex(read.tenant) + '\x1f' + read.key;
        if (flights_.try_lead(flight_key)) {
          engine.record(ns, Engine::LoadEvent::kRefresh);
          net::co_spawn(co_await net::this_coro::executor,
                        refresh(upstream_request(request), read, label, flight_key), net::detached);
        }
      }
      m.count(outcome);
      co_return from_entry(std::move(ref), outcome);
    }
    if (e) internal::unref(e);  // a negative entry: not used by the gateway

    if (flight_key.empty()) flight_key = read.ns + '\x1f' + to_hex(read.tenant) + '\x1f' + read.key;
    if (flights_.try_lead(flight_key)) {
      engine.record(ns, Engine::LoadEvent::kMiss);
      co_return co_await lead(std::move(request), read, label, flight_key, false);
    }
    SharedResponse shared = co_await flights_.async_wait(flight_key, use_awaitable);
    if (shared) {
      engine.record(ns, Engine::LoadEvent::kCoalesced);
      m.count(Outcome::kCoalesced);
      co_return shared_answer(shared, outcome_name(Outcome::kCoalesced));
    }
    // The flight ended before we joined: its answer is in the cache now.
  }
  UpstreamResult u = co_await forward(upstream_request(request), label);
  m.count(u.error ? Outcome::kError : Outcome::kPass);
  co_return relay(u, Outcome::kPass);
}

awaitable<HttpResponse> BotApiHandler::lead(HttpRequest request, const logic::CachedRead& read,
                                            std::string_view label,
                                            const std::string& flight_key, bool background) {
  FlightGuard guard(flights_, flight_key);
  Metrics& m = *deps_.metrics;
  auto cache_it = caches_.find(read.ns);
  // An invalidation of the namespace while this flight reads L2 or the
  // upstream (a write of the same chat) makes what it read too old to
  // store: it is delivered, not cached, in L1 or L2.
  const std::uint64_t epoch = deps_.engine->epoch(cache_it->second.id());
  if (deps_.l2 && !background) {
    if (auto hit = deps_.l2->get(read.ns, read.tenant, read.key)) {
      PutOptions put;
      put.ttl = hit->ttl_left;
      put.tags = read.tags;
      put.if_epoch = epoch;
      auto body = std::make_shared<HttpResponse>();
      body->status = status_of_body(hit->body);
      body->body = std::move(hit->body);
      if (hit->ttl_left > Duration::zero()) {
        Status s = cache_it->second.put(read.tenant, read.key, body->body, put);
        (void)s;  // raced an invalidation, too large or shutting down: served anyway
      }
      m.count(Outcome::kL2Hit);
      guard.complete(body);
      co_return shared_answer(body, outcome_name(Outcome::kL2Hit));
    }
  }
  UpstreamResult u = co_await forward(upstream_request(request), label);
  if (u.error) m.count(Outcome::kError);
  else if (!background) m.count(Outcome::kMiss);
  HttpResponse answer = relay(u, Outcome::kMiss);
  if (!u.error) store(read, answer, epoch);
  auto shared = std::make_shared<const HttpResponse>(std::move(answer));
  guard.complete(shared);
  co_return shared_answer(shared, outcome_name(u.error ? Outcome::kError : Outcome::kMiss));
}

awaitable<void> BotApiHandler::refresh(HttpRequest request, logic::CachedRead read,
                                       std::string_view label, std::string flight_key) {
  // REQUIRES: the caller leads `flight_key` (lead() completes it).
  (void)co_await lead(std::move(request), read, label, flight_key, true);
}

void BotApiHandler::store(const logic::CachedRead& read, const HttpResponse& answer,
                          std::uint64_t epoch) {
  logic::AnswerDecision d = logic::classify_answer(read, answer.status, answer.body_view());
  if (d.action == logic::AnswerAction::kDoNotStore) return;
  auto cache_it = caches_.find(read.ns);
  if (cache_it == caches_.end()) return;
  PutOptions put;
  put.ttl = d.ttl;
  put.tags = read.tags;
  put.if_epoch = epoch;
  Status s = cache_it->second.put(read.tenant, read.key, std::string(answer.body_view()), put);
  // kCancelled (raced an invalidation: L2 must not get it either), kTooLarge,
  // kShutdown: not stored, counted by the engine.
  if (s.code() == Code::kCancelled) return;
  if (deps_.l2 && d.action == logic::AnswerAction::kStore) {
    deps_.l2->put(read.ns, read.tenant, read.key, answer.body_view(), d.ttl, read.tags);
  }
}

void BotApiHandler::apply(const logic::Invalidations& inv) {
  Engine& engine = *deps_.engine;
  for (const auto& k : inv.keys) {
    Status s = engine.invalidate(k.ns, k.tenant, k.key);
    if (!s.ok()) spdlog::debug("invalidate {}: {}", k.ns, s.to_string());
    if (deps_.l2) deps_.l2->invalidate_key(k.ns, k.tenant, k.key);
  }
  for (const auto& t : inv.tags) engine.invalidate_tag(t);
  if (deps_.l2) deps_.l2->invalidate_tags(inv.tags);
  if (!inv.bypass_scopes.empty() && inv.bypass_window > Duration::zero()) {
    deps_.post_write->mark(inv.bypass_scopes, engine.clock().now() + inv.bypass_window);
  }
}

awaitable<HttpResponse> BotApiHandler::paced(HttpRequest request, std::string_view label,
                                             const std::string& method, const logic::Pacing* pacing,
                                             Outcome outcome, bool json_answer) {
  Metrics& m = *deps_.metrics;
  RateLimiter* limiter = pacing ? deps_.limiter : nullptr;
  PacingCall pc;
  if (limiter) fill_pacing(pc, *pacing, method);
  // A streamed upload is read once, as it arrives: an upstream 429 to it is
  // relayed, not retried.
  const bool keep_for_retry = limiter && options_.retry_429 > 0 && !request.body_stream;

  for (std::uint64_t attempt = 0;; ++attempt) {
    if (limiter) {
      TryAcquireResult t = limiter->try_acquire(pc.attrs);
      if (!t.admitted) {
        Duration wait = t.wait;
        if (wait <= options_.pacing_max_wait) {
          auto reserved = limiter->reserve(pc.attrs, options_.pacing_max_wait);
          if (reserved.ok()) {
            wait = *reserved;
          } else {
            wait = std::max(wait, options_.pacing_max_wait + std::chrono::milliseconds(1));
          }
        }
        if (wait > options_.pacing_max_wait) {
          m.pacing_refused(pacing_rule_name(*limiter, t));
          m.count(Outcome::kRejected);
          int ra = ceil_seconds(wait);
          HttpResponse refused =
              bot_api_error(429, "Too Many Requests: retry after " + std::to_string(ra), ra);
          refused.outcome = outcome_name(Outcome::kRejected);  // as counted: not an upstream error
          co_return refused;
        }
        if (wait > Duration::zero()) {
          m.pacing_wait(wait, pacing_rule_name(*limiter, t));
          co_await sleep_for(wait);
        }
      }
    }
    HttpRequest up = keep_for_retry ? upstream_request(std::as_const(request))
                                    : upstream_request(std::move(request));
    // Answers of sends, writes and passthroughs are never stored: large ones
    // (file downloads) stream through.
    UpstreamResult u = co_await forward(std::move(up), label, /*stream_answer=*/true, json_answer);
    if (!u.error && u.response.status == 429 && limiter) {
      auto ra = logic::retry_after(u.response.status, u.response.body,
                                   u.response.header("retry-after").empty()
                                       ? std::nullopt
                                       : std::optional<std::string_view>(
                                             u.response.header("retry-after")));
      Duration back_off = ra.value_or(options_.default_retry_after);
      Status s = limiter->penalize(pc.attrs, pc.penalty_scope, back_off);
      if (!s.ok()) spdlog::warn("penalize: {}", s.to_string());
      if (keep_for_retry && attempt < options_.retry_429 &&
          back_off <= options_.retry_max_delay) {
        m.upstream_429_retried();
        continue;  // the limiter now makes this call wait out the back-off
      }
    }
    m.count(u.error ? Outcome::kError : outcome);
    co_return relay(u, outcome);
  }
}

}  // namespace callcache::gateway
