#include "request.h"

#include <cctype>

#include "callcache/text_writer.h"

namespace callcache::gateway::logic {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}


std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string quote_for_error(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  if (s.size() > 40) out += "...";
  return out;
}

std::optional<std::string_view> HttpRequestView::header(std::string_view name) const noexcept {
  for (const HeaderView& h : headers) {
    if (ascii_iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

BodyKind body_kind(std::string_view content_type) noexcept {
  std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  if (media.empty()) return BodyKind::kNone;
  if (ascii_iequals(media, "application/json")) return BodyKind::kJson;
  if (ascii_iequals(media, "application/x-www-form-urlencoded")) return BodyKind::kForm;
  if (ascii_iequals(media, "multipart/form-data")) return BodyKind::kMultipart;
  return BodyKind::kOther;
}

bool ascii_iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_tolower(a[i]) != ascii_tolower(b[i])) {
      return false;
    }
  }
  return true;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_tolower(c);
  return out;
}

Result<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  // Nothing to decode is the common case. (A plain loop: find_first_of
  // calls memchr once per character.)
  bool plain = true;
  for (char c : s) {
    if (c == '%' || (c == '+' && plus_is_space)) {
      plain = false;
      break;
    }
  }
  if (plain) return std::string(s);
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return Status::invalid_argument("Bad Request: invalid percent-encoding in '" +
                                        quote_for_error(s) + "'");
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  std::string out;
  append_percent_encoded(out, s);
  return out;
}

void append_percent_encoded(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '_' ||
        c == '.' || c == '~' || c == '-') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
}

Result<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (piece.empty()) continue;
    std::size_t eq = piece.find('=');
    auto name = percent_decode(piece.substr(0, eq), true);
    if (!name.ok()) return name.status();
    std::string value;
    if (eq != std::string_view::npos) {
      auto v = percent_decode(piece.substr(eq + 1), true);
      if (!v.ok()) return v.status();
      value = std::move(*v);
    }
    out.emplace_back(std::move(*name), std::move(value));
  }
  return out;
}

std::pair<std::string_view, std::string_view> split_target(std::string_view target) noexcept {
  std::size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

int http_status_of(const Status& status) noexcept {
  switch (status.code()) {
    case Code::kInvalidArgument:
      return 400;
    case Code::kBusy:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kTooLarge:
      return 413;
    default:
      return 500;
  }
}

std::string error_json(int http_status, std::string_view description) {
  std::string out =
      "{\"ok\":false,\"error_code\":" + std::to_string(http_status) + ",\"description\":";
  text::append_json_string(out, description);
  out += '}';
  return out;
}

std::string error_json(const Status& status) {
  return error_json(http_status_of(status), status.message());
}

}  // namespace callcache::gateway::logic
