#include "gateway/net/error.h"

namespace callcache::gateway {
namespace {

class GatewayCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "callcache.gateway"; }
  std::string message(int ev) const override {
    switch (static_cast<GatewayError>(ev)) {
      case GatewayError::kOk: return "ok";
      case GatewayError::kBadUpstreamUrl: return "upstream URL is malformed";
      case GatewayError::kUpstreamConnect: return "cannot connect to the upstream";
      case GatewayError::kUpstreamTimeout: return "the upstream did not answer in time";
      case GatewayError::kUpstreamClosed: return "the upstream closed the connection";
      case GatewayError::kUpstreamProtocol: return "the upstream answer is not valid HTTP";
      case GatewayError::kUpstreamBodyTooLarge: return "the upstream answer is too large";
      case GatewayError::kTooManyConnections: return "too many connections";
      case GatewayError::kShuttingDown: return "the gateway is shutting down";
      case GatewayError::kPacingDeadline: return "pacing would wait longer than allowed";
      case GatewayError::kRequestBodyAborted: return "the client's request body ended early";
      case GatewayError::kUpstreamNotJson:
        return "the upstream answer is not Bot API JSON";
    }
    return "unknown gateway error";
  }
};

}  // namespace

const boost::system::error_category& gateway_category() noexcept {
  static const GatewayCategory category;
  return category;
}

}  // namespace callcache::gateway
