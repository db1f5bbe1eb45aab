#include "telegram_call.h"

#include <cctype>

namespace callcache::gateway::logic {
namespace {

Status not_found(std::string why) { return Status::not_found("Not Found: " + std::move(why)); }

bool valid_method_name(std::string_view m) noexcept {
  if (m.empty() || m.size() > 64) return false;
  for (char c : m) {
    if (!is_ascii_alpha(c)) return false;
  }
  return true;
}

struct Route {
  bool file = false;
  std::string_view raw_token;  // as in the target (possibly percent-encoded)
  std::string_view rest;       // method or file path (raw)
  bool matched = false;
};

// Splits "/bot<token>/<rest>" or "/file/bot<token>/<rest>".
Route split_route(std::string_view path) noexcept {
  Route r;
  std::string_view p = path;
  if (p.starts_with("/file/bot")) {
    r.file = true;
    p.remove_prefix(9);
  } else if (p.starts_with("/bot")) {
    p.remove_prefix(4);
  } else {
    return r;
  }
  std::size_t slash = p.find('/');
  r.raw_token = p.substr(0, slash);
  r.rest = slash == std::string_view::npos ? std::string_view() : p.substr(slash + 1);
  r.matched = true;
  return r;
}

// Usernames are case-insensitive: "@MyChannel" and "@mychannel" are one chat.
void lowercase_usernames(Params& params) {
  for (std::string_view name : {"chat_id", "from_chat_id"}) {
    std::string* v = params.find(name);
    if (v && v->starts_with('@')) *v = ascii_lower(*v);
  }
}

// Percent-decodes what decodes and keeps the rest as it is (for looking for
// a secret in text that may be malformed).
std::string lenient_decode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string redact(std::string_view target, const TenantKey* key) {
  auto [path, query] = split_target(target);
  Route r = split_route(path);
  if (!r.matched || r.raw_token.empty()) return std::string(target);
  std::size_t start = static_cast<std::size_t>(r.raw_token.data() - target.data());
  std::string out(target.substr(0, start));
  auto token = percent_decode(r.raw_token, false);
  const std::string_view decoded = token.ok() ? std::string_view(*token) : r.raw_token;
  if (key) {
    out += "<t:" + to_hex(tenant_from_secret(decoded, *key)) + ">";
  } else {
    out += "<redacted>";
  }
  // The rest of the target may repeat the token (a client passing it as a
  // parameter): its secret part is removed there too, and if only a
  // percent-decoding shows it, everything after the method goes.
  std::string rest(target.substr(start + r.raw_token.size()));
  const std::size_t colon = decoded.find(':');
  const std::string_view secret =
      colon == std::string_view::npos ? decoded : decoded.substr(colon + 1);
  if (secret.size() >= 8) {
    for (std::size_t p = rest.find(secret); p != std::string::npos; p = rest.find(secret, p)) {
      rest.replace(p, secret.size(), "<redacted>");
    }
    if (lenient_decode(rest).find(secret) != std::string::npos) {
      rest = rest.substr(0, rest.find_first_of("?;"));
      rest = lenient_decode(rest).find(secret) == std::string::npos ? rest + "?<redacted>"
                                                                    : "/<redacted>";
    }
  }
  out += rest;
  return out;
}

}  // namespace

bool valid_token_shape(std::string_view token) noexcept {
  std::size_t colon = token.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 20) return false;
  for (std::size_t i = 0; i < colon; ++i) {
    if (token[i] < '0' || token[i] > '9') return false;
  }
  std::string_view secret = token.substr(colon + 1);
  if (secret.size() < 20 || secret.size() > 128) return false;
  for (char c : secret) {
    if (!is_ascii_alnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

Result<TelegramCall> parse_telegram(const HttpRequestView& req, const TenantKey& tenant_key) {
  const RequestLimits& limits = req.limits;
  if (req.target.size() > limits.max_target_bytes) {
    return Status::invalid_argument("Bad Request: request target longer than " +
                                    std::to_string(limits.max_target_bytes) + " bytes");
  }
  auto [path, query] = split_target(req.target);
  Route route = split_route(path);
  if (!route.matched) return not_found("unknown route (expected /bot<token>/<method>)");
  if (route.raw_token.empty()) return not_found("missing bot token");
  TelegramCall call;
  if (route.raw_token.find('%') == std::string_view::npos) {  // no copy of the secret
    if (!valid_token_shape(route.raw_token)) return not_found("malformed bot token");
    call.tenant = tenant_from_secret(route.raw_token, tenant_key);
  } else {
    auto token = percent_decode(route.raw_token, false);
    if (!token.ok() || !valid_token_shape(*token)) return not_found("malformed bot token");
    call.tenant = tenant_from_secret(*token, tenant_key);
  }

  if (route.file) {
    if (req.method != "GET" && req.method != "HEAD") return not_found("files are served by GET");
    auto file_path = percent_decode(route.rest, false);
    if (!file_path.ok()) return file_path.status();
    if (file_path->empty()) return not_found("missing file path");
    if (file_path->find("..") != std::string::npos || file_path->front() == '/') {
      return Status::invalid_argument("Bad Request: invalid file path");
    }
    call.kind = TelegramCall::Kind::kFile;
    call.file_path = std::move(*file_path);
    return call;
  }

  if (req.method != "GET" && req.method != "POST") {
    return not_found("the Bot API is served by GET and POST only");
  }
  if (route.rest.empty()) return not_found("missing method name");
  auto method = percent_decode(route.rest, false);
  if (!method.ok() || !valid_method_name(*method)) {
    return not_found("invalid method name (expected letters only)");
  }
  call.method = std::move(*method);
  call.method_lower = ascii_lower(call.method);

  Status s = add_urlencoded(call.params, query, limits);
  if (!s.ok()) return s;

  BodyKind kind = body_kind(req.content_type);
  if (kind == BodyKind::kMultipart) {
    if (req.content_length && *req.content_length > limits.max_upload_bytes) {
      return Status::too_large("Request Entity Too Large: upload over " +
                               std::to_string(limits.max_upload_bytes) + " bytes");
    }
    call.multipart = true;
    lowercase_usernames(call.params);
    return call;
  }
  if ((req.content_length && *req.content_length > limits.max_parsed_body_bytes) ||
      req.body.size() > limits.max_parsed_body_bytes) {
    return Status::too_large("Request Entity Too Large: body over " +
                             std::to_string(limits.max_parsed_body_bytes) + " bytes");
  }
  if (kind == BodyKind::kJson) {
    // An empty JSON body is common from simple clients: treat as no parameters.
    bool blank = req.body.find_first_not_of(" \t\r\n") == std::string_view::npos;
    if (!blank) s = add_json_object(call.params, req.body, limits);
  } else if (kind == BodyKind::kForm) {
    s = add_urlencoded(call.params, req.body, limits);
  }
  if (!s.ok()) return s;
  lowercase_usernames(call.params);
  return call;
}

std::string redact_target(std::string_view target) { return redact(target, nullptr); }
std::string redact_target(std::string_view target, const TenantKey& tenant_key) {
  return redact(target, &tenant_key);
}

}  // namespace callcache::gateway::logic
