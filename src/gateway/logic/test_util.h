// Test helper: an owning request from which an HttpRequestView is built.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "request.h"

namespace callcache::gateway::logic::testing {

// A syntactically valid token (the Bot API documentation's example shape).
inline constexpr const char* kToken = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";
inline constexpr const char* kOtherToken = "654321:ZYX-wvu9876ABCde-fgh12A3b4c567de89";

struct OwnedRequest {
  std::string method = "GET";
  std::string target;
  std::string content_type;
  std::string body;
  std::optional<std::uint64_t> content_length;
  std::vector<std::pair<std::string, std::string>> headers;
  RequestLimits limits;
  std::vector<HeaderView> header_views;

  HttpRequestView view() {
    header_views.clear();
    for (const auto& [n, v] : headers) header_views.push_back({n, v});
    HttpRequestView v;
    v.method = method;
    v.target = target;
    v.headers = header_views;
    v.content_type = content_type;
    v.content_length = content_length;
    v.body = body;
    v.limits = limits;
    return v;
  }
};

inline OwnedRequest get(std::string target) {
  OwnedRequest r;
  r.target = std::move(target);
  return r;
}

inline OwnedRequest post(std::string target, std::string content_type, std::string body) {
  OwnedRequest r;
  r.method = "POST";
  r.target = std::move(target);
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

inline std::string bot(const std::string& method, const char* token = kToken) {
  return std::string("/bot") + token + "/" + method;
}

}  // namespace callcache::gateway::logic::testing
