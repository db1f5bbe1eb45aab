// Internal: the HTTP request as the gateway's planning logic sees it —
// independent of Beast, borrowed (string_views) rather than owned — plus the
// small HTTP helpers every planner shares (percent-decoding, query strings,
// Bot API-shaped error bodies).
//
// The session (src/gateway/) builds an HttpRequestView over its own request
// object; nothing here allocates for the view itself, and nothing here does
// I/O.
//
// Errors: parsers return callcache::Status/Result. The Status code maps to the
// HTTP status the client should get (http_status_of: 400, 403, 404, 413) and
// the Status message is the Bot API "description" ("Bad Request: ..."), so
// error_json(status) is a complete Bot API-shaped answer.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "callcache/status.h"

namespace callcache::gateway::logic {

// One request header. Names are compared case-insensitively, so the caller
// may pass them in any case (lowercase is cheapest).
struct HeaderView {
  std::string_view name;
  std::string_view value;
};

// Hard limits applied while classifying a request. Violations are errors with
// an HTTP status (see each field).
struct RequestLimits {
  // Bytes of the request target (path + query). Over → 400.
  std::size_t max_target_bytes = 16 * 1024;
  // Bytes of a body that is parsed for parameters (JSON or url-encoded). A
  // larger body, or a larger declared Content-Length, → 413. Multipart bodies
  // are never parsed and are checked against max_upload_bytes instead.
  std::size_t max_parsed_body_bytes = 1024 * 1024;
  // Declared Content-Length of a multipart upload (the Bot API accepts 50 MB
  // uploads). Over → 413.
  std::uint64_t max_upload_bytes = 50ull * 1024 * 1024;
  // Number of parameters after merging query and body. Over → 400.
  std::size_t max_params = 256;
  // Nesting depth of a JSON body or JSON-valued parameter. Over → 400
  // (protects the recursive canonicaliser's stack).
  std::size_t max_json_depth = 32;
};

// A request as seen by the planners. Every view points into storage owned by
// the caller, which must outlive the call it is passed to (results never keep
// views: they copy what they need).
struct HttpRequestView {
  std::string_view method;  // "GET", "POST", ... (case-sensitive, as on the wire)
  std::string_view target;  // origin-form: "/bot<token>/getChat?chat_id=1"
  std::span<const HeaderView> headers;
  // The Content-Type header value (e.g. "application/json; charset=utf-8"),
  // empty if absent. Passed separately so callers need not search headers.
  std::string_view content_type;
  // The declared Content-Length, if the request had one.
  std::optional<std::uint64_t> content_length;
  // The body, if buffered. For multipart uploads the caller may leave it
  // empty and stream the body later: classification never needs it.
  std::string_view body;
  RequestLimits limits;

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const noexcept;
};

// What a Content-Type says about how the body is to be read.
enum class BodyKind : std::uint8_t {
  kNone,       // no body / no content type
  kJson,       // application/json
  kForm,       // application/x-www-form-urlencoded
  kMultipart,  // multipart/form-data: never parsed, passed through
  kOther,      // anything else: ignored for parameters
};
BodyKind body_kind(std::string_view content_type) noexcept;

// Locale-independent ASCII character classes (the <cctype> ones consult the
// locale and are not inlined: they showed up in profiles of the hot path).
constexpr bool is_ascii_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_ascii_alnum(char c) noexcept {
  return is_ascii_alpha(c) || (c >= '0' && c <= '9');
}
constexpr char ascii_tolower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// ASCII case-insensitive equality.
bool ascii_iequals(std::string_view a, std::string_view b) noexcept;
// ASCII lowercase copy.
std::string ascii_lower(std::string_view s);

// Decodes %XX escapes (and '+' as space when `plus_is_space`). Errors
// (kInvalidArgument) name the bad escape: a '%' not followed by two hex digits.
Result<std::string> percent_decode(std::string_view s, bool plus_is_space);

// Encodes every byte outside [A-Za-z0-9_.~-] as %XX (used to build keys whose
// separators stay unambiguous).
std::string percent_encode(std::string_view s);
// Appends percent_encode(s) to `out` without a temporary.
void append_percent_encoded(std::string& out, std::string_view s);

// Splits "a=1&b=2" into decoded (name, value) pairs in order. Empty pieces
// ("a=1&&b=2", a trailing '&') are skipped; a piece without '=' has an empty
// value. Errors name the bad piece.
Result<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query);

// Splits a target into path and query (without the '?'); no decoding.
std::pair<std::string_view, std::string_view> split_target(std::string_view target) noexcept;

// The HTTP status a planner error maps to: kInvalidArgument → 400,
// kNotFound → 404, kTooLarge → 413, kBusy → 403 (refused by configuration),
// anything else → 500.
int http_status_of(const Status& status) noexcept;

// The Bot API error shape for `status`:
//   {"ok":false,"error_code":<http_status_of>,"description":"<message>"}
// REQUIRES: !status.ok().
std::string error_json(const Status& status);
std::string error_json(int http_status, std::string_view description);

// Untrusted text shortened to 40 characters, non-printable bytes as '?', for
// quoting in an error message.
std::string quote_for_error(std::string_view s);

}  // namespace callcache::gateway::logic
