// BotApiHandler: the Bot API front's request handling (no socket code here).
#include "gateway/telegram/bot_api_handler.h"

#include <spdlog/spdlog.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cmath>

#include "callcache/text_writer.h"
#include "gateway/logic/request.h"
#include "gateway/logic/telegram_call.h"
#include "gateway/net/error.h"

namespace callcache::gateway {
namespace {

namespace net = boost::asio;
using boost::asio::awaitable;
using boost::asio::use_awaitable;

// The request as it goes upstream. By value: callers move the request in
// when they do not need it again (uploads can be large).
HttpRequest upstream_request(HttpRequest in) {
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

HttpResponse bot_api_error_answer(int status, std::string_view description) {
  return bot_api_error(status, description);
}

// What a cached read keeps of the upstream's answer: {"ok":true} answers in
// both tiers for the read's ttl, errors the preset caches negatively in
// memory only, the rest (and a failed exchange) nowhere. Kept answers carry
// no upstream headers, so a miss and its later hits look alike.
Loaded<CachedAnswer> keep(const logic::CachedRead& read, UpstreamResult& u) {
  CachedAnswer a = answer_of(relay(u, Outcome::kMiss));
  a.upstream_failed = static_cast<bool>(u.error);
  if (a.upstream_failed) return {std::move(a), std::nullopt, {}, Retain::kNone};
  logic::AnswerDecision d = logic::classify_answer(read, a.status, a.body);
  if (d.action == logic::AnswerAction::kDoNotStore) {
    return {std::move(a), std::nullopt, {}, Retain::kNone};
  }
  a.headers.clear();
  Retain where = d.action == logic::AnswerAction::kStore ? Retain::kAllTiers : Retain::kMemoryOnly;
  return {std::move(a), d.ttl, read.tags, where};
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

HttpResponse bot_api_error(int status, std::string_view description, int retry_after) {
  HttpResponse r;
  r.status = status;
  r.body = "{\"ok\":false,\"error_code\":" + std::to_string(status) + ",\"description\":";
  text::append_json_string(r.body, description);
  if (retry_after >= 0) {
    r.body += ",\"parameters\":{\"retry_after\":" + std::to_string(retry_after) + "}";
    r.headers.push_back({"Retry-After", std::to_string(retry_after)});
  }
  r.body += "}";
  r.outcome = "error";
  return r;
}

BotApiHandler::BotApiHandler(BotApiHandlerDeps deps, BotApiHandlerOptions options)
    : deps_(deps), options_(std::move(options)) {}

Result<std::unique_ptr<BotApiHandler>> BotApiHandler::create(BotApiHandlerDeps deps,
                                                             BotApiHandlerOptions options) {
  if (!deps.preset || !deps.post_write || !deps.tiers || !deps.upstream || !deps.metrics) {
    return Status::invalid_argument("BotApiHandler: a required dependency is missing");
  }
  std::unique_ptr<BotApiHandler> h(new BotApiHandler(deps, std::move(options)));
  for (const auto& spec : deps.preset->namespaces) {
    auto cache = AnswerCache::open(*deps.tiers, spec.name);
    if (!cache.ok()) return cache.status();
    h->caches_.emplace(spec.name, std::move(*cache));
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
      logic::plan(*call, *deps_.preset, deps_.tiers->engine().clock().now(), *deps_.post_write);

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
  // Inside a post-write window, or a namespace the engine lacks (the preset
  // and the engine disagree): forwarded, not cached.
  auto cache_it = read.bypass ? caches_.end() : caches_.find(read.ns);
  if (cache_it == caches_.end()) {
    const Outcome outcome = read.bypass ? Outcome::kBypass : Outcome::kPass;
    UpstreamResult u = co_await forward(upstream_request(std::move(request)), label);
    m.count(u.error ? Outcome::kError : outcome);
    co_return relay(u, outcome);
  }
  // (A named function, not a temporary in the co_await: GCC 12 destroys
  // temporaries of a co_await full-expression twice.)
  MakeFetch make_fetch = [&] {
    auto up = std::make_shared<const HttpRequest>(upstream_request(std::move(request)));
    return Fetch{[this, up, label] { return forward(*up, label); },
                 [read](UpstreamResult& u) { return keep(read, u); }};
  };
  ReadAnswer answer = co_await read_through(cache_it->second, read.tenant, read.key, make_fetch,
                                            &bot_api_error_answer);
  m.count(answer.outcome);
  co_return std::move(answer.response);
}

void BotApiHandler::apply(const logic::Invalidations& inv) {
  Tiers& tiers = *deps_.tiers;
  for (const auto& k : inv.keys) {
    Status s = tiers.invalidate(k.ns, k.tenant, k.key);
    if (!s.ok()) spdlog::debug("invalidate {}: {}", k.ns, s.to_string());
  }
  tiers.invalidate_tags(inv.tags);
  if (!inv.bypass_scopes.empty() && inv.bypass_window > Duration::zero()) {
    deps_.post_write->mark(inv.bypass_scopes, tiers.engine().clock().now() + inv.bypass_window);
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
    // A call that slept for its slot is paced again if an upstream 429 set a
    // back-off while it slept (the limiter does not say whose key: any 429
    // counts), so it never goes out inside the back-off; all rounds together
    // wait at most pacing_max_wait.
    Duration budget = options_.pacing_max_wait;
    for (int round = 0; limiter && round < 4; ++round) {
      const std::uint64_t penalties_seen = penalties_.load(std::memory_order_acquire);
      TryAcquireResult t = limiter->try_acquire(pc.attrs);
      if (t.admitted) break;
      Duration wait = t.wait;
      if (wait <= budget) {
        auto reserved = limiter->reserve(pc.attrs, budget);
        if (reserved.ok()) {
          wait = *reserved;
        } else {
          wait = std::max(wait, budget + std::chrono::milliseconds(1));
        }
      }
      if (wait > budget) {
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
        budget -= wait;
      }
      if (penalties_.load(std::memory_order_acquire) == penalties_seen) break;
    }
    HttpRequest up =
        keep_for_retry ? upstream_request(request) : upstream_request(std::move(request));
    // Answers of sends, writes and passthroughs are never stored: large ones
    // (file downloads) stream through.
    UpstreamResult u = co_await forward(std::move(up), label, /*stream_answer=*/true, json_answer);
    if (!u.error && u.response.status == 429 && limiter) {
      auto ra = logic::retry_after(
          u.response.status, u.response.body,
          u.response.header("retry-after").empty()
              ? std::nullopt
              : std::optional<std::string_view>(u.response.header("retry-after")));
      Duration back_off = ra.value_or(options_.default_retry_after);
      Status s = limiter->penalize(pc.attrs, pc.penalty_scope, back_off);
      if (!s.ok()) spdlog::warn("penalize: {}", s.to_string());
      penalties_.fetch_add(1, std::memory_order_acq_rel);
      if (keep_for_retry && attempt < options_.retry_429 && back_off <= options_.retry_max_delay) {
        m.upstream_429_retried();
        continue;  // the limiter now makes this call wait out the back-off
      }
    }
    m.count(u.error ? Outcome::kError : outcome);
    co_return relay(u, outcome);
  }
}

}  // namespace callcache::gateway
