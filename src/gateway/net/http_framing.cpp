// Request framing rules (gateway/net/http_framing.h). The only Beast in this
// file is the HTTP parser (no Asio I/O), for read_request().
#include "gateway/net/http_framing.h"

#include <algorithm>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

namespace callcache::gateway {
namespace {

namespace http = boost::beast::http;

constexpr std::string_view kHeadEnd = "\r\n\r\n";

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Untrusted text for a message: at most 40 printable ASCII characters.
std::string quote(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) {
    const auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7f ? c : '?';
  }
  if (s.size() > 40) out += "...";
  return out;
}

FramingRefusal bad_request(std::string why) { return {400, "Bad Request: " + std::move(why)}; }

}  // namespace

HeadEnd find_head_end(std::string_view bytes, std::size_t max_header_bytes,
                      std::size_t scanned) noexcept {
  const std::string_view window = bytes.substr(0, std::min(bytes.size(), max_header_bytes));
  // The terminator may straddle what was scanned and what is new.
  const std::size_t from =
      std::min(scanned, window.size()) >= 3 ? std::min(scanned, window.size()) - 3 : 0;
  const std::size_t at = window.find(kHeadEnd, from);
  if (at != std::string_view::npos) return {HeadEnd::Kind::kComplete, at + kHeadEnd.size()};
  if (bytes.size() >= max_header_bytes) return {HeadEnd::Kind::kTooLarge, 0};
  return {HeadEnd::Kind::kIncomplete, 0};
}

std::optional<FramingRefusal> check_request_head(std::string_view head) {
  std::size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) return std::nullopt;  // malformed: the parser says so
  const bool http10 = head.substr(0, eol).ends_with(" HTTP/1.0");
  std::string_view rest = head.substr(eol + 2);
  int content_lengths = 0;
  int transfer_encodings = 0;
  while (!rest.empty()) {
    eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    if (line.empty()) break;  // the blank line that ends the head
    if (line.front() == ' ' || line.front() == '\t') {
      return bad_request("a header line continues on the next line (obs-fold)");
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // malformed: the parser says so
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      if (++content_lengths > 1 || value.find(',') != std::string_view::npos) {
        return bad_request("Content-Length is given more than once");
      }
      if (value.empty() || value.size() > 19 ||
          value.find_first_not_of("0123456789") != std::string_view::npos) {
        return bad_request("invalid Content-Length '" + quote(value) + "'");
      }
    } else if (iequals(name, "transfer-encoding")) {
      if (++transfer_encodings > 1) {
        return bad_request("Transfer-Encoding is given more than once");
      }
      if (!iequals(value, "chunked")) {
        return bad_request("unsupported Transfer-Encoding '" + quote(value) +
                           "' (only chunked is accepted)");
      }
    }
  }
  if (content_lengths > 0 && transfer_encodings > 0) {
    return bad_request("Content-Length and Transfer-Encoding together");
  }
  if (transfer_encodings > 0 && http10) {
    return bad_request("Transfer-Encoding in an HTTP/1.0 request");
  }
  return std::nullopt;
}

FramingRefusal refusal_for(const boost::system::error_code& ec, std::uint64_t max_body_bytes) {
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    return {431, "Request Header Fields Too Large"};
  }
  if (ec == http::error::body_limit) {
    return {413,
            "Request Entity Too Large: body over " + std::to_string(max_body_bytes) + " bytes"};
  }
  return bad_request("malformed HTTP request (" + ec.message() + ")");
}

FramedRequest read_request(std::string_view bytes, const FramingLimits& limits) {
  FramedRequest out;
  auto refuse = [&out](FramingRefusal r) {
    out = FramedRequest{};
    out.kind = FramedRequest::Kind::kRefused;
    out.refusal = std::move(r);
    return out;
  };
  const HeadEnd end = find_head_end(bytes, limits.max_header_bytes);
  if (end.kind == HeadEnd::Kind::kIncomplete) return out;
  if (end.kind == HeadEnd::Kind::kTooLarge) {
    return refuse(refusal_for(http::error::header_limit, limits.max_body_bytes));
  }
  if (auto refusal = check_request_head(bytes.substr(0, end.size))) return refuse(*refusal);

  http::request_parser<http::string_body> parser;
  parser.header_limit(
      static_cast<std::uint32_t>(std::min<std::size_t>(limits.max_header_bytes, UINT32_MAX)));
  parser.body_limit(limits.max_body_bytes);
  std::size_t used = 0;
  // Feeds the parser until `done`; false if it needs more bytes or failed
  // (`out` then says which).
  auto feed = [&](auto done) {
    while (!done()) {
      boost::system::error_code ec;
      const std::size_t n =
          parser.put(boost::asio::const_buffer(bytes.data() + used, bytes.size() - used), ec);
      used += n;
      if (ec == http::error::need_more && n > 0) continue;
      if (ec && ec != http::error::need_more) refuse(refusal_for(ec, limits.max_body_bytes));
      if (ec || n == 0) return false;
    }
    return true;
  };
  // As a session does: the request's headers are those of the head (the
  // parser stops there); a chunked body's trailer fields never become headers.
  parser.eager(false);
  if (!feed([&] { return parser.is_header_done(); })) return out;
  const auto& msg = parser.get();
  HttpRequest& req = out.request;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.keep_alive = msg.keep_alive();
  for (const auto& f : msg) {
    req.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  }
  parser.eager(true);
  if (!feed([&] { return parser.is_done(); })) {
    if (out.kind != FramedRequest::Kind::kRefused) return FramedRequest{};  // kIncomplete
    return out;
  }
  req.body = std::move(parser.get().body());
  out.kind = FramedRequest::Kind::kRequest;
  out.consumed = used;
  return out;
}

}  // namespace callcache::gateway
