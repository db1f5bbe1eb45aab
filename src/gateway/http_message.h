// Internal: the plain HTTP request/response values that the gateway's pure
// handlers take and return. No Asio or Beast here: the session (server.cpp)
// translates from and to Beast messages, so handler code compiles fast and can
// be tested without sockets.
//
// Thread-safety: plain values.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callcache::gateway {

struct Header {
  std::string name;
  std::string value;
};

// Case-insensitive ASCII comparison (HTTP header names).
bool iequals(std::string_view a, std::string_view b) noexcept;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form: "/bot<token>/getChat?chat_id=1"
  std::vector<Header> headers;
  std::string body;
  bool keep_alive = true;
  // The peer, for logs ("127.0.0.1:51234"); may be empty.
  std::string peer;

  // The first header named `name` (case-insensitive), or "".
  std::string_view header(std::string_view name) const noexcept;
};

struct HttpResponse {
  int status = 200;
  // Extra headers; Content-Length, Connection and Server are set by the session.
  std::vector<Header> headers;
  std::string content_type = "application/json";
  // The body: `body`, unless `shared_body` is set (a cached answer handed out
  // without a copy; it pins the bytes for as long as the response lives).
  std::string body;
  std::shared_ptr<const std::string> shared_body;
  // Set by handlers for the access log and the X-Callcache header ("hit",
  // "miss", "coalesced", "stale", "bypass", "pass", "error", ...).
  std::string outcome;
  // The request target as the access log may show it (token redacted); the
  // session logs "-" when empty, never the raw target.
  std::string log_target;

  std::string_view body_view() const noexcept {
    return shared_body ? std::string_view(*shared_body) : std::string_view(body);
  }
  std::string_view header(std::string_view name) const noexcept;
};

// A Bot API-shaped error: {"ok":false,"error_code":<status>,"description":...}
// with an optional "parameters":{"retry_after":N}.
HttpResponse bot_api_error(int status, std::string_view description, int retry_after = -1);

// Escapes `s` for a JSON string literal (without the quotes).
std::string json_escape(std::string_view s);

}  // namespace callcache::gateway
