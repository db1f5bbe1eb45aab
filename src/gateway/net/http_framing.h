// Internal: how the gateway's HTTP/1.1 server frames a request — where its
// head ends, which heads it refuses before parsing, and what a refusal says —
// as pure functions over bytes, so the rules can be tested and fuzzed without
// sockets. server.cpp applies them to each connection; read_request() applies
// them to bytes in memory exactly as a session does when it buffers a body.
//
// Request smuggling: two HTTP parsers (a proxy in front of the gateway and the
// gateway) must never disagree on where a request ends. So a head is refused
// (400, in the application's error shape, connection closed) when its framing
// is ambiguous:
//   - a header line continued on the next line (obs-fold: the next line
//     starts with a space or a tab);
//   - Content-Length together with Transfer-Encoding;
//   - more than one Content-Length (repeated, or a comma list), or one that is
//     not a plain decimal number;
//   - a Transfer-Encoding other than exactly "chunked", given more than once,
//     or in an HTTP/1.0 request.
// What passes these checks is parsed by Beast with the server's header and
// body limits; a chunked body with an invalid chunk size, or any other
// malformed framing, is a 400 too, a body over the limit a 413, a head over
// the limit a 431.
//
// Thread-safety: pure functions.
#pragma once

#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/net/http_message.h"

namespace callcache::gateway {

// Why a request is refused: the HTTP status and the reason the answer gives
// ("Bad Request: ..."; ServerOptions::error_answer renders it).
struct FramingRefusal {
  int status = 400;
  std::string reason;
};

struct FramingLimits {
  // Bytes of the request head, request line to blank line inclusive.
  std::size_t max_header_bytes = 64 * 1024;
  // Bytes of the body (a chunked body: its decoded bytes).
  std::uint64_t max_body_bytes = 52 * 1024 * 1024;
};

// Where the head at the start of `bytes` ends, or why it cannot.
struct HeadEnd {
  enum class Kind : std::uint8_t {
    kComplete,    // `size` bytes, through the blank line's CRLF
    kIncomplete,  // more bytes are needed
    kTooLarge,    // no blank line within max_header_bytes
  };
  Kind kind = Kind::kIncomplete;
  std::size_t size = 0;
};

// Finds the end of the head ("\r\n\r\n") in `bytes`. `scanned` is how many
// leading bytes an earlier call already searched without finding it (the
// search resumes there, so a head arriving a byte at a time costs linear
// time, not quadratic). REQUIRES: scanned <= bytes.size().
HeadEnd find_head_end(std::string_view bytes, std::size_t max_header_bytes,
                      std::size_t scanned = 0) noexcept;

// Checks a complete head (as delimited by find_head_end) for ambiguous
// framing, see above. nullopt: nothing ambiguous (the head may still be
// malformed in other ways, which the parser refuses).
std::optional<FramingRefusal> check_request_head(std::string_view head);

// The refusal for a parse error of Beast's http::error category (or of the
// read that fed the parser): 431 over the header limit, 413 over the body
// limit, else 400 naming the error.
FramingRefusal refusal_for(const boost::system::error_code& ec, std::uint64_t max_body_bytes);

// What read_request found at the start of its bytes.
struct FramedRequest {
  enum class Kind : std::uint8_t {
    kRequest,     // `request` (its body buffered), `consumed` bytes long
    kRefused,     // `refusal`: the session answers it and closes
    kIncomplete,  // the bytes end before the request does
  };
  Kind kind = Kind::kIncomplete;
  HttpRequest request;
  std::size_t consumed = 0;
  FramingRefusal refusal;
};

// Reads the first request of `bytes` as a session does: head end, head
// checks, Beast's parser with `limits`, the whole body. Bytes after
// `consumed` belong to the next (pipelined) request.
FramedRequest read_request(std::string_view bytes, const FramingLimits& limits);

}  // namespace callcache::gateway
