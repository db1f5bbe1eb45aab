// Internal: the gateway's own error codes, composable with Asio's
// boost::system::error_code (an enum with its own category, like Beast's
// http::error). Socket and TLS errors stay in their own categories; these name
// what the gateway decided.
//
// Thread-safety: the category is a stateless singleton.
#pragma once

#include <boost/system/error_code.hpp>

#include <string>
#include <type_traits>

namespace callcache::gateway {

enum class GatewayError {
  kOk = 0,
  kBadUpstreamUrl = 1,      // the configured upstream URL cannot be parsed
  kUpstreamConnect,         // no connection to the upstream (refused, DNS, TLS)
  kUpstreamTimeout,         // the upstream did not answer within read_timeout
  kUpstreamClosed,          // the upstream closed the connection mid-exchange
  kUpstreamProtocol,        // the upstream sent something that is not HTTP/1.1
  kUpstreamBodyTooLarge,    // the upstream answer exceeds max_response_bytes
  kTooManyConnections,      // max_connections reached at the edge
  kShuttingDown,            // the gateway is stopping
  kPacingDeadline,          // pacing would wait longer than pacing.max_wait
  kRequestBodyAborted,      // a streamed request body ended early (client gone, timeout, limit)
  kUpstreamNotJson,         // a Bot API method's answer is not a JSON object (an HTML page ...)
};

const boost::system::error_category& gateway_category() noexcept;

inline boost::system::error_code make_error_code(GatewayError e) noexcept {
  return {static_cast<int>(e), gateway_category()};
}

}  // namespace callcache::gateway

template <>
struct boost::system::is_error_code_enum<callcache::gateway::GatewayError> : std::true_type {};
