// GenericHandler: a generic JSON API's request handling (no socket code here).
#include "gateway/generic_handler.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <charconv>

#include "gateway/logic/request.h"

namespace callcache::gateway {
namespace {

namespace net = boost::asio;
using boost::asio::awaitable;
using boost::asio::use_awaitable;

constexpr std::string_view kEnvelopeMagic = "gh1\n";

bool hop_by_hop(std::string_view name) {
  return iequals(name, "accept-encoding") || iequals(name, "expect") ||
         iequals(name, "connection") || iequals(name, "keep-alive") || iequals(name, "host") ||
         iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "te") || iequals(name, "upgrade") || iequals(name, "proxy-connection");
}

// Headers that would make the answer depend on what the leader of a
// coalesced read already had (304, 206, 412).
bool conditional(std::string_view name) {
  return iequals(name, "if-none-match") || iequals(name, "if-modified-since") ||
         iequals(name, "if-match") || iequals(name, "if-unmodified-since") ||
         iequals(name, "if-range") || iequals(name, "range");
}

bool cached_header(std::string_view name) {
  for (std::string_view h : kCachedHeaders) {
    if (iequals(name, h)) return true;
  }
  return false;
}

// The request as the upstream receives it. A cached read keeps `in` (a
// background refresh may need it again); the others move it.
HttpRequest upstream_request(const HttpRequest& in, bool cached_read) {
  HttpRequest out;
  out.method = in.method;
  out.target = in.target;
  out.body = in.body;
  for (const auto& h : in.headers) {
    if (!hop_by_hop(h.name) && !(cached_read && conditional(h.name))) out.headers.push_back(h);
  }
  return out;
}

HttpRequest upstream_request(HttpRequest&& in) {
  HttpRequest out;
  out.method = std::move(in.method);
  out.target = std::move(in.target);
  out.body = std::move(in.body);
  for (auto& h : in.headers) {
    if (!hop_by_hop(h.name)) out.headers.push_back(std::move(h));
  }
  return out;
}

HttpResponse json_error(int status, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body = "{\"error\":\"" + json_escape(message) + "\"}";
  return r;
}

// The upstream's answer as the client gets it. For a cached read (shared
// with coalesced callers) never a Set-Cookie, and a 200 keeps only the
// headers a cached answer keeps, so a miss and a later hit look alike.
HttpResponse relay(UpstreamResult& u, Outcome outcome, bool cached_read) {
  if (u.error) {
    HttpResponse r = json_error(502, "Bad Gateway: " + u.error.message());
    r.outcome = outcome_name(Outcome::kError);
    return r;
  }
  HttpResponse r = std::move(u.response);
  const bool stored_shape = cached_read && r.status == 200;
  std::erase_if(r.headers, [&](const Header& h) {
    if (stored_shape) return !cached_header(h.name);
    return iequals(h.name, "server") || iequals(h.name, "date") ||
           (cached_read && iequals(h.name, "set-cookie"));
  });
  r.outcome = outcome_name(outcome);
  return r;
}

// "gh1\n<content type>\n<name>: <value>\n...\n\n<body>"
std::string encode_envelope(const HttpResponse& r) {
  std::string_view body = r.body_view();
  std::string out;
  out.reserve(kEnvelopeMagic.size() + r.content_type.size() + body.size() + 64);
  out += kEnvelopeMagic;
  out += r.content_type;
  out += '\n';
  for (const auto& h : r.headers) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += '\n';
  }
  out += '\n';
  out += body;
  return out;
}

// Decodes an envelope into `out` (status 200). False if it is not one.
bool decode_envelope(std::string_view s, HttpResponse& out) {
  if (!s.starts_with(kEnvelopeMagic)) return false;
  s.remove_prefix(kEnvelopeMagic.size());
  std::size_t nl = s.find('\n');
  if (nl == std::string_view::npos) return false;
  out.status = 200;
  out.content_type = std::string(s.substr(0, nl));
  s.remove_prefix(nl + 1);
  for (;;) {
    nl = s.find('\n');
    if (nl == std::string_view::npos) return false;
    std::string_view line = s.substr(0, nl);
    s.remove_prefix(nl + 1);
    if (line.empty()) break;
    std::size_t colon = line.find(": ");
    if (colon == std::string_view::npos) return false;
    out.headers.push_back({std::string(line.substr(0, colon)), std::string(line.substr(colon + 2))});
  }
  out.body = std::string(s);
  return true;
}


// A metrics label: printable ASCII without quotes or backslashes.
std::string label_text(std::string_view api, std::string_view rule) {
  std::string out(api);
  out += ':';
  for (char c : rule) {
    bool ok = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    out += ok ? c : '_';
  }
  return out;
}

}  // namespace

GenericHandler::GenericHandler(GenericHandlerDeps deps, GenericHandlerOptions options)
    : deps_(deps), options_(std::move(options)) {}

Result<std::unique_ptr<GenericHandler>> GenericHandler::create(GenericHandlerDeps deps,
                                                               GenericHandlerOptions options) {
  if (!deps.engine || !deps.upstream || !deps.metrics) {
    return Status::invalid_argument("GenericHandler: a required dependency is missing");
  }
  std::unique_ptr<GenericHandler> h(new GenericHandler(deps, std::move(options)));
  for (const std::string& ns : h->options_.rules.namespaces_used()) {
    auto cache = Cache<std::string>::open(*deps.engine, ns);
    if (!cache.ok()) {
      return Status(cache.status().code(),
                    "apis '" + h->options_.name + "': " + cache.status().message());
    }
    h->caches_.emplace(ns, *cache);
  }
  for (const logic::Rule& rule : h->options_.rules.rules) {
    h->labels_.push_back(label_text(h->options_.name, rule.name));
  }
  for (const std::string& label : h->labels_) h->counters_.push_back(&deps.metrics->rule(label));
  h->unmatched_label_ = h->options_.name + ":-";
  h->unmatched_ = &deps.metrics->rule(h->unmatched_label_);
  return h;
}

std::string GenericHandler::tag(std::string_view plan_tag) const {
  std::string t = options_.name;
  t += ':';
  t += plan_tag;
  return t;
}

awaitable<HttpResponse> GenericHandler::handle(HttpRequest request) {
  std::string log_target;
  if (options_.log_targets) {
    auto [path, query] = logic::split_target(request.target);
    log_target = std::string(path);
    if (!query.empty()) log_target += "?...";  // the query may hold an API key
  }
  // The target the rules see and the upstream receives (after its base path).
  if (options_.strip_prefix && request.target.starts_with(options_.prefix)) {
    request.target.erase(0, options_.prefix.size());
    if (request.target.empty() || request.target.front() != '/') request.target.insert(0, "/");
  }

  std::vector<logic::HeaderView> headers;
  headers.reserve(request.headers.size());
  for (const auto& h : request.headers) headers.push_back({h.name, h.value});
  logic::HttpRequestView view;
  view.method = request.method;
  view.target = request.target;
  view.headers = headers;
  view.content_type = request.header("content-type");
  view.body = request.body;
  view.limits = options_.limits;
  auto plan = logic::plan_generic(view, options_.rules, options_.tenant_key);
  if (!plan.ok()) {
    HttpResponse r = json_error(logic::http_status_of(plan.status()), plan.status().message());
    r.outcome = outcome_name(Outcome::kRejected);
    r.log_target = std::move(log_target);
    deps_.metrics->count(Outcome::kRejected);
    unmatched_->count(Outcome::kRejected);
    co_return r;
  }

  std::size_t index = plan->rule ? static_cast<std::size_t>(plan->rule - options_.rules.rules.data())
                                 : labels_.size();
  std::string_view label = plan->rule ? std::string_view(labels_[index]) : unmatched_label_;
  Metrics::RuleCounters* counters = plan->rule ? counters_[index] : unmatched_;

  HttpResponse res;
  if (plan->kind == logic::RulePlan::Kind::kCachedRead && request.body.empty()) {
    Read read;
    read.ns = std::move(plan->ns);
    auto cache_it = caches_.find(read.ns);  // every namespace_used() was opened
    read.cache = &cache_it->second;
    read.ns_id = cache_it->second.id();
    read.tenant = plan->tenant;
    // A `*` rule answers several methods: one entry each (HEAD has no body).
    read.key = plan->rule->method == "*" ? request.method + ' ' + plan->key : std::move(plan->key);
    read.ttl = plan->ttl;
    read.tags.reserve(plan->tags.size());
    for (const auto& t : plan->tags) read.tags.push_back(tag(t));
    read.counters = counters;
    read.label = label;
    read.flight_key = read.ns + '\x1f' + to_hex(read.tenant) + '\x1f' + read.key;
    res = co_await cached_read(std::move(request), std::move(read));
  } else if (plan->kind == logic::RulePlan::Kind::kInvalidate) {
    std::vector<std::string> tags = std::move(plan->invalidate_tags);
    res = co_await forward_and_relay(std::move(request), label, counters, Outcome::kPass);
    invalidate(tags);
  } else {
    // Passthrough, or a cached read with a body (the rules cannot key on it).
    res = co_await forward_and_relay(std::move(request), label, counters, Outcome::kPass);
  }
  res.log_target = std::move(log_target);
  deps_.metrics->tenant_answer(plan->tenant, res.outcome);
  co_return res;
}

awaitable<UpstreamResult> GenericHandler::forward(HttpRequest request, std::string_view label) {
  UpstreamResult u = co_await deps_.upstream->send(options_.upstream, std::move(request));
  deps_.metrics->upstream_call(label, u.error ? 0 : u.response.status, u.latency);
  if (u.error) {
    spdlog::warn("upstream {} ({}): {}", options_.upstream.key(), label, u.error.message());
  }
  co_return u;
}

awaitable<HttpResponse> GenericHandler::forward_and_relay(HttpRequest request,
                                                          std::string_view label,
                                                          Metrics::RuleCounters* counters,
                                                          Outcome outcome) {
  UpstreamResult u = co_await forward(upstream_request(std::move(request)), label);
  Outcome o = u.error ? Outcome::kError : outcome;
  deps_.metrics->count(o);
  counters->count(o);
  co_return relay(u, outcome, /*cached_read=*/false);
}

void GenericHandler::invalidate(const std::vector<std::string>& plan_tags) {
  if (plan_tags.empty()) return;
  std::vector<std::string> tags;
  tags.reserve(plan_tags.size());
  for (const auto& t : plan_tags) tags.push_back(tag(t));
  for (const auto& t : tags) deps_.engine->invalidate_tag(t);
  if (deps_.l2) deps_.l2->invalidate_tags(tags);
}

awaitable<HttpResponse> GenericHandler::cached_read(HttpRequest request, Read read) {
  Metrics& m = *deps_.metrics;
  Engine& engine = *deps_.engine;
  for (int round = 0; round < 3; ++round) {
    Freshness freshness = Freshness::kMiss;
    internal::Entry* e = engine.lookup_for_load(read.ns_id, read.tenant, read.key, &freshness);
    if (e && (freshness == Freshness::kFresh || freshness == Freshness::kRefreshDue ||
              freshness == Freshness::kStale)) {
      auto ref = Ref<std::string>::adopt(e);
      HttpResponse hit;
      if (decode_envelope(*ref, hit)) {
        Outcome outcome = freshness == Freshness::kStale ? Outcome::kStale : Outcome::kHit;
        engine.record(read.ns_id, outcome == Outcome::kStale ? Engine::LoadEvent::kStaleHit
                                                             : Engine::LoadEvent::kHit);
        if (freshness != Freshness::kFresh && flights_.try_lead(read.flight_key)) {
          engine.record(read.ns_id, Engine::LoadEvent::kRefresh);
          net::co_spawn(co_await net::this_coro::executor,
                        refresh(upstream_request(request, /*cached_read=*/true), read),
                        net::detached);
        }
        m.count(outcome);
        read.counters->count(outcome);
        hit.outcome = outcome_name(outcome);
        co_return hit;
      }
      // Not an envelope (written by something else): treated as a miss.
    } else if (e) {
      internal::unref(e);  // a negative entry: not used by the gateway
    }

    if (flights_.try_lead(read.flight_key)) {
      engine.record(read.ns_id, Engine::LoadEvent::kMiss);
      co_return co_await lead(std::move(request), read, false);
    }
    SharedResponse shared = co_await flights_.async_wait(read.flight_key, use_awaitable);
    if (shared) {
      engine.record(read.ns_id, Engine::LoadEvent::kCoalesced);
      m.count(Outcome::kCoalesced);
      read.counters->count(Outcome::kCoalesced);
      co_return shared_answer(shared, outcome_name(Outcome::kCoalesced));
    }
    // The flight ended before we joined: its answer is in the cache now.
  }
  co_return co_await forward_and_relay(std::move(request), read.label, read.counters,
                                       Outcome::kPass);
}

awaitable<HttpResponse> GenericHandler::lead(HttpRequest request, const Read& read,
                                             bool background) {
  FlightGuard guard(flights_, read.flight_key);
  Metrics& m = *deps_.metrics;
  Engine& engine = *deps_.engine;
  if (deps_.l2 && !background) {
    if (auto hit = deps_.l2->get(read.ns, read.tenant, read.key)) {
      auto answer = std::make_shared<HttpResponse>();
      if (decode_envelope(hit->body, *answer)) {
        if (hit->ttl_left > Duration::zero()) {
          PutOptions put;
          put.ttl = hit->ttl_left;
          put.tags = read.tags;
          Status s = read.cache->put(read.tenant, read.key, std::move(hit->body), put);
          (void)s;  // too large or shutting down: served anyway, counted by the engine
        }
        m.count(Outcome::kL2Hit);
        read.counters->count(Outcome::kL2Hit);
        guard.complete(answer);
        co_return shared_answer(answer, outcome_name(Outcome::kL2Hit));
      }
    }
  }
  // An invalidation while the call is in flight (a write of the same
  // resource) makes the answer too old to store: it is delivered, not cached.
  const std::uint64_t epoch = engine.epoch(read.ns_id);
  UpstreamResult u =
      co_await forward(upstream_request(request, /*cached_read=*/true), read.label);
  HttpResponse answer = relay(u, Outcome::kMiss, /*cached_read=*/true);
  if (!u.error && answer.status == 200) {
    std::string envelope = encode_envelope(answer);
    PutOptions put;
    put.ttl = read.ttl;
    put.tags = read.tags;
    put.if_epoch = epoch;
    std::string l2_copy = deps_.l2 ? envelope : std::string();
    Status s = read.cache->put(read.tenant, read.key, std::move(envelope), put);
    // kCancelled (raced an invalidation), kTooLarge, kShutdown: not stored.
    if (s.ok() && deps_.l2) {
      Duration ttl = read.ttl.value_or(engine.policy(read.ns_id).ttl);
      deps_.l2->put(read.ns, read.tenant, read.key, l2_copy, ttl, read.tags);
    }
  }
  if (u.error) {
    m.count(Outcome::kError);
    read.counters->count(Outcome::kError);
  } else if (!background) {
    m.count(Outcome::kMiss);
    read.counters->count(Outcome::kMiss);
  }
  auto shared = std::make_shared<const HttpResponse>(std::move(answer));
  guard.complete(shared);
  co_return shared_answer(shared, outcome_name(u.error ? Outcome::kError : Outcome::kMiss));
}

awaitable<void> GenericHandler::refresh(HttpRequest request, Read read) {
  // REQUIRES: the caller leads read.flight_key (lead() completes it).
  (void)co_await lead(std::move(request), read, true);
}

}  // namespace callcache::gateway
