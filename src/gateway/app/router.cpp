#include "gateway/app/router.h"

#include "gateway/logic/request.h"
#include "gateway/telegram/bot_api_handler.h"

namespace callcache::gateway {

Router::Router(HttpHandler& bot_api, std::vector<Route> routes, Metrics& metrics)
    : bot_api_(bot_api), routes_(std::move(routes)), metrics_(metrics) {
  routes_text_ = "/bot<token>/<method>, /file/bot<token>/<path>";
  for (const Route& r : routes_) routes_text_ += ", " + r.prefix + "/...";
}

HttpHandler* Router::route(std::string_view target) const noexcept {
  if (target.starts_with("/bot") || target.starts_with("/file/bot")) return &bot_api_;
  for (const Route& r : routes_) {
    if (!target.starts_with(r.prefix)) continue;
    if (target.size() == r.prefix.size()) return r.handler;
    char next = target[r.prefix.size()];
    if (next == '/' || next == '?') return r.handler;
  }
  return nullptr;
}

bool Router::stream_request_body(const HttpRequest& head) const {
  const HttpHandler* handler = route(head.target);
  return handler && handler->stream_request_body(head);
}

HttpResponse Router::error_answer(int status, std::string_view reason,
                                  std::string_view target) const {
  const HttpHandler* handler = target.empty() ? nullptr : route(target);
  if (handler && handler != &bot_api_) return json_error(status, reason);
  return bot_api_error(status, reason);
}

boost::asio::awaitable<HttpResponse> Router::handle(HttpRequest request) {
  HttpHandler* handler = route(request.target);
  if (!handler) return not_found(std::move(request));
  return handler->handle(std::move(request));
}

boost::asio::awaitable<HttpResponse> Router::not_found(HttpRequest request) {
  (void)request;  // its target may hold a secret: not echoed, not logged
  HttpResponse r;
  r.status = 404;
  r.body = logic::error_json(404, "Not Found: routes are " + routes_text_);
  r.outcome = outcome_name(Outcome::kRejected);
  metrics_.count(Outcome::kRejected);
  co_return r;
}

}  // namespace callcache::gateway
