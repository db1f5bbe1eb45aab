// Internal: recognising a Telegram Bot API request — which bot (as a tenant
// id, never the token), which method, which canonical parameters.
//
// Routes understood (the paths a Bot API client's base URL points at):
//   /bot<token>/<method>          GET or POST; parameters from the query
//                                 string and from an application/json or
//                                 application/x-www-form-urlencoded body
//   /file/bot<token>/<file_path>  GET (or HEAD): file download, streamed through
//
// Token shape: <bot id: 1-20 digits>:<secret: 20-128 of [A-Za-z0-9_-]>, e.g.
// "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11". A request with no token, or a
// token of another shape, is a 404 (the Bot API's own answer to a path it does
// not serve). Method names are letters only (1-64) and, as in the Bot API,
// case-insensitive.
//
// The token is hashed into TenantId as soon as it is read and is not kept in
// TelegramCall, so nothing derived from a TelegramCall (keys, tags, logs,
// metric labels) can contain it. Use redact_target() for access logs.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "callcache/status.h"
#include "callcache/tenant.h"
#include "canonical.h"
#include "request.h"

namespace callcache::gateway::logic {

struct TelegramCall {
  enum class Kind : std::uint8_t {
    kMethod,  // /bot<token>/<method>
    kFile,    // /file/bot<token>/<file_path>
  };
  Kind kind = Kind::kMethod;
  // The bot: tenant_from_secret(token, tenant_key).
  TenantId tenant;
  // The method as the client spelled it ("getChat"); empty for kFile.
  std::string method;
  // The method in lowercase ("getchat"): what presets are looked up by.
  std::string method_lower;
  // Merged, canonical parameters (query + body). For a multipart body only
  // the query string's parameters (the body is not read).
  Params params;
  // The body is multipart/form-data (an upload): never cached, never parsed.
  bool multipart = false;
  // kFile: the file path after "/file/bot<token>/", percent-decoded.
  std::string file_path;
};

// Parses a Bot API request. Errors carry the HTTP status via
// http_status_of() and the Bot API description in the message:
//   404 no/malformed token, bad method name, unknown route, HTTP method other
//       than GET/POST (GET/HEAD for files);
//   400 bad percent-encoding, malformed JSON, JSON body not an object, bad or
//       duplicate parameter names, too many parameters, target too long;
//   413 body (or declared Content-Length) over the request's limits.
// Never throws; any byte sequence is a valid input.
Result<TelegramCall> parse_telegram(const HttpRequestView& request,
                                    const TenantKey& tenant_key = kDefaultTenantKey);

// True if `token` has the Bot API token shape described above.
bool valid_token_shape(std::string_view token) noexcept;

// The target with the token replaced, for access logs:
//   "/bot123:ABC.../getChat?chat_id=1" → "/bot<redacted>/getChat?chat_id=1"
// and, with a tenant key, by the tenant id: "/bot<t:0123456789abcdef>/getChat...".
// Also covers /file/bot<token>/... and percent-encoded tokens. Targets that
// are not Bot API routes are returned unchanged.
std::string redact_target(std::string_view target);
std::string redact_target(std::string_view target, const TenantKey& tenant_key);

}  // namespace callcache::gateway::logic
