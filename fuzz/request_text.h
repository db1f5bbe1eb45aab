// Shared by the fuzz targets of the gateway's planners: a request written as
// readable text, so seed corpora are real requests one can read and edit:
//
//   POST /bot<token>/sendMessage?chat_id=1
//   Content-Type: application/json
//   X-Api-Key: k1
//
//   {"text":"hi"}
//
// The first line is the method and the target; header lines follow up to an
// empty line; the rest is the body. Content-Type and Content-Length headers
// fill the view's fields of the same names.
#pragma once

#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/logic/request.h"

namespace callcache::fuzz {

struct TextRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::vector<gateway::logic::HeaderView> views;

  // REQUIRES: the TextRequest outlives the view and is not modified meanwhile.
  gateway::logic::HttpRequestView view(const gateway::logic::RequestLimits& limits = {}) {
    gateway::logic::HttpRequestView v;
    views.clear();
    for (const auto& [n, val] : headers) views.push_back({n, val});
    v.method = method;
    v.target = target;
    v.headers = views;
    v.body = body;
    v.limits = limits;
    for (const auto& [n, val] : headers) {
      if (gateway::logic::ascii_iequals(n, "content-type")) v.content_type = val;
      if (gateway::logic::ascii_iequals(n, "content-length")) {
        std::uint64_t len = 0;
        auto [p, ec] = std::from_chars(val.data(), val.data() + val.size(), len);
        if (ec == std::errc() && p == val.data() + val.size()) v.content_length = len;
      }
    }
    return v;
  }
};

inline TextRequest parse_text_request(std::string_view text) {
  TextRequest r;
  auto next_line = [&text]() {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    return line;
  };
  const std::string_view first = next_line();
  const std::size_t sp = first.find(' ');
  r.method = std::string(first.substr(0, sp));
  if (sp != std::string_view::npos) r.target = std::string(first.substr(sp + 1));
  while (!text.empty()) {
    const std::string_view line = next_line();
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    while (value.starts_with(' ')) value.remove_prefix(1);
    r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  r.body = std::string(text);
  return r;
}

}  // namespace callcache::fuzz
