// Internal: the client-facing listener's HttpHandler — sends each request to
// the handler its path belongs to:
//   /bot<token>/...  and  /file/bot<token>/...   the Bot API handler
//   <prefix>, <prefix>/..., <prefix>?...         that generic API's handler
//   anything else                                404 in the Bot API error shape
// and renders the answers the server gives itself (error_answer()) in the
// shape of the front the request was for.
// A prefix matches whole path segments only: "/sns" takes "/sns/templates"
// but not "/snsx". The configuration guarantees prefixes neither overlap nor
// shadow the Bot API routes (config.h), so the order of checks is irrelevant.
//
// handle() adds no coroutine frame of its own: it returns the chosen
// handler's awaitable.
//
// Thread-safety: immutable after construction; handle() may run
// concurrently. REQUIRES: the handlers and metrics outlive the router.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gateway/metrics.h"
#include "gateway/net/server.h"

namespace callcache::gateway {

class Router final : public HttpHandler {
 public:
  struct Route {
    std::string prefix;  // "/sns": starts with '/', no trailing '/'
    HttpHandler* handler = nullptr;
  };

  Router(HttpHandler& bot_api, std::vector<Route> routes, Metrics& metrics);

  boost::asio::awaitable<HttpResponse> handle(HttpRequest request) override;
  // Asks the handler the request goes to (a Bot API upload streams through).
  bool stream_request_body(const HttpRequest& head) const override;

  // The handler for `target` (origin-form), or nullptr (404).
  HttpHandler* route(std::string_view target) const noexcept;

  // The server's own answers (ServerOptions::error_answer): a generic API's
  // {"error":...} (json_error) when `target` is under its prefix, else the
  // Bot API's shape (bot_api_error) — also when the target is unknown (a
  // head over the limit, too many connections).
  HttpResponse error_answer(int status, std::string_view reason, std::string_view target) const;

 private:
  boost::asio::awaitable<HttpResponse> not_found(HttpRequest request);

  HttpHandler& bot_api_;
  std::vector<Route> routes_;
  Metrics& metrics_;
  std::string routes_text_;  // for the 404 description
};

}  // namespace callcache::gateway
