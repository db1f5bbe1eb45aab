// Test helper: a blocking HTTP/1.1 client for end-to-end tests, built on the
// gateway's own pooled UpstreamClient (keep-alive, concurrent requests on
// separate connections), plus raw-socket access for malformed input.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/net/http_message.h"
#include "gateway/net/upstream.h"

namespace callcache::gateway::testing {

class TestClient {
 public:
  explicit TestClient(std::uint16_t port);
  ~TestClient();

  // Sends one request; a transport failure is reported as status 0 with the
  // error message in the body.
  HttpResponse send(HttpRequest request);
  HttpResponse get(const std::string& target);
  HttpResponse post_json(const std::string& target, const std::string& json);
  HttpResponse post_form(const std::string& target, const std::string& form);
  // Sends all requests at once (one connection each) and returns the answers
  // in order.
  std::vector<HttpResponse> send_all(std::vector<HttpRequest> requests);

  // Writes `bytes` on a fresh connection and returns everything read until
  // the server closes (or `timeout`).
  std::string raw(const std::string& bytes,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace callcache::gateway::testing
