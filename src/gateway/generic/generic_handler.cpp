// GenericHandler: a generic JSON API's request handling (no socket code here).
#include "gateway/generic/generic_handler.h"

#include <spdlog/spdlog.h>

#include <boost/asio/use_awaitable.hpp>
#include <charconv>

#include "gateway/logic/request.h"

namespace callcache::gateway {
namespace {

namespace net = boost::asio;
using boost::asio::awaitable;
using boost::asio::use_awaitable;

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

// The request as it goes upstream; a cached read drops the client's
// conditional headers (its answer is shared). By value: callers move the
// request in (a cached read builds its Fetch once, cached_answer.h).
HttpRequest upstream_request(HttpRequest in, bool cached_read) {
  HttpRequest out;
  out.method = std::move(in.method);
  out.target = std::move(in.target);
  out.body = std::move(in.body);
  out.body_stream = std::move(in.body_stream);
  for (auto& h : in.headers) {
    if (!dropped_request_header(h.name) && !(cached_read && conditional(h.name)))
      out.headers.push_back(std::move(h));
  }
  return out;
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

// What a cached read keeps of the upstream's answer: a 200 in both tiers
// (with the rule's ttl and tags), anything else (and a failed exchange)
// nowhere.
Loaded<CachedAnswer> keep(std::optional<Duration> ttl, const std::vector<std::string>& tags,
                          UpstreamResult& u) {
  CachedAnswer a = answer_of(relay(u, Outcome::kMiss, /*cached_read=*/true));
  a.upstream_failed = static_cast<bool>(u.error);
  if (a.upstream_failed || a.status != 200) return {std::move(a), std::nullopt, {}, Retain::kNone};
  return {std::move(a), ttl, tags, Retain::kAllTiers};
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
  if (!deps.tiers || !deps.upstream || !deps.metrics) {
    return Status::invalid_argument("GenericHandler: a required dependency is missing");
  }
  std::unique_ptr<GenericHandler> h(new GenericHandler(deps, std::move(options)));
  for (const std::string& ns : h->options_.rules.namespaces_used()) {
    auto cache = AnswerCache::open(*deps.tiers, ns);
    if (!cache.ok()) {
      return Status(cache.status().code(),
                    "apis '" + h->options_.name + "': " + cache.status().message());
    }
    h->caches_.emplace(ns, std::move(*cache));
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

  std::size_t index = plan->rule
                          ? static_cast<std::size_t>(plan->rule - options_.rules.rules.data())
                          : labels_.size();
  std::string_view label = plan->rule ? std::string_view(labels_[index]) : unmatched_label_;
  Metrics::RuleCounters* counters = plan->rule ? counters_[index] : unmatched_;

  HttpResponse res;
  if (plan->kind == logic::RulePlan::Kind::kCachedRead && request.body.empty()) {
    Read read;
    read.cache = &caches_.find(plan->ns)->second;  // every namespace_used() was opened
    read.tenant = plan->tenant;
    // A `*` rule answers several methods: one entry each (HEAD has no body).
    read.key = plan->rule->method == "*" ? request.method + ' ' + plan->key : std::move(plan->key);
    read.ttl = plan->ttl;
    read.tags.reserve(plan->tags.size());
    for (const auto& t : plan->tags) read.tags.push_back(tag(t));
    read.counters = counters;
    read.label = label;
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
  UpstreamResult u =
      co_await forward(upstream_request(std::move(request), /*cached_read=*/false), label);
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
  deps_.tiers->invalidate_tags(tags);
}

awaitable<HttpResponse> GenericHandler::cached_read(HttpRequest request, Read read) {
  // (A named function, not a temporary in the co_await: GCC 12 destroys
  // temporaries of a co_await full-expression twice.)
  MakeFetch make_fetch = [&] {
    auto up = std::make_shared<const HttpRequest>(
        upstream_request(std::move(request), /*cached_read=*/true));
    return Fetch{
        [this, up, label = read.label] { return forward(*up, label); },
        [ttl = read.ttl, tags = read.tags](UpstreamResult& u) { return keep(ttl, tags, u); }};
  };
  ReadAnswer answer =
      co_await read_through(*read.cache, read.tenant, std::move(read.key), make_fetch, &json_error);
  deps_.metrics->count(answer.outcome);
  read.counters->count(answer.outcome);
  co_return std::move(answer.response);
}

}  // namespace callcache::gateway
