// Test helper: a fake JSON API (an SNS-like template service) built on the
// gateway's own HttpServer, for the generic-API end-to-end tests.
#pragma once

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/logic/request.h"
#include "gateway/net/server.h"

namespace callcache::gateway::testing {

namespace net = boost::asio;

// ---------------------------------------------------------------------------
// A fake JSON API under /v1 (its base path), counting calls per
// "METHOD /path" (without /v1 and the query):
//   GET  /v1/templates/{id}   {"id":..,"version":..,"lang":..,"call":N}
//                             (id 404 → 404, 500 → 500, 301 → a redirect),
//                             with an ETag and a Set-Cookie the gateway must
//                             not cache
//   GET  /v1/templates        {"list_version":..,"query":..,"call":N}
//   POST|PUT|DELETE /v1/templates[/{id}]  bumps versions, {"updated":true}
//   anything else             {"path":..,"tenant":<x-api-key>,"call":N}
// An answer is decided when the call arrives and sent after the latency, so a
// slow read can answer with what was true before a write that overtook it.
class FakeJsonApi final : public HttpHandler {
 public:
  net::awaitable<HttpResponse> handle(HttpRequest request) override {
    std::chrono::milliseconds latency;
    {
      std::lock_guard lock(mu_);
      auto it = method_latency_.find(request.method);
      latency = it == method_latency_.end() ? latency_ : it->second;
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
    }
    HttpResponse r = answer(request);
    if (latency > std::chrono::milliseconds(0)) {
      net::steady_timer t(co_await net::this_coro::executor, latency);
      co_await t.async_wait(net::use_awaitable);
    }
    std::lock_guard lock(mu_);
    --in_flight_;
    co_return r;
  }

  std::uint64_t calls(const std::string& what) const {
    std::lock_guard lock(mu_);
    auto it = calls_.find(what);
    return it == calls_.end() ? 0 : it->second;
  }
  std::uint64_t total() const {
    std::lock_guard lock(mu_);
    return total_;
  }
  std::string last_target() const {
    std::lock_guard lock(mu_);
    return last_target_;
  }
  std::string last_header(const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = last_headers_.find(name);
    return it == last_headers_.end() ? "" : it->second;
  }
  void set_latency(std::chrono::milliseconds l) {
    std::lock_guard lock(mu_);
    latency_ = l;
  }
  // Calls with HTTP method `method` ("GET") take `l` instead.
  void set_method_latency(const std::string& method, std::chrono::milliseconds l) {
    std::lock_guard lock(mu_);
    method_latency_[method] = l;
  }

 private:
  HttpResponse answer(const HttpRequest& request) {
    std::lock_guard lock(mu_);
    ++total_;
    last_target_ = request.target;
    last_headers_.clear();
    for (const auto& h : request.headers) last_headers_[logic::ascii_lower(h.name)] = h.value;
    auto [path, query] = logic::split_target(request.target);
    HttpResponse r;
    r.content_type = "application/json; charset=utf-8";
    if (!path.starts_with("/v1/")) {
      r.status = 404;
      r.body = R"({"error":"not under /v1"})";
      return r;
    }
    std::string p(path.substr(3));
    ++calls_[request.method + " " + p];
    std::string call = std::to_string(total_);
    std::string tenant(request.header("x-api-key"));
    const bool write = request.method != "GET" && request.method != "HEAD";
    if (p.starts_with("/templates/")) {
      std::string id = p.substr(11);
      if (write) {
        ++versions_[id];
        ++list_version_;
        r.body = R"({"updated":true})";
      } else if (id == "404") {
        r.status = 404;
        r.body = R"({"error":"not found"})";
      } else if (id == "301") {
        r.status = 301;
        r.body = R"({"moved":true})";
        r.headers.push_back({"Location", "/v1/templates/1"});
        r.headers.push_back({"Set-Cookie", "session=" + call});
      } else if (id == "500") {
        r.status = 500;
        r.body = R"({"error":"boom"})";
      } else {
        std::string lang;
        if (auto q = logic::parse_query(query); q.ok()) {
          for (auto& [n, v] : *q) {
            if (n == "lang") lang = v;
          }
        }
        int v = versions_[id];
        r.body = R"({"id":")" + id + R"(","version":)" + std::to_string(v) + R"(,"lang":")" + lang +
                 R"(","call":)" + call + "}";
        r.headers.push_back({"ETag", "\"t" + id + "v" + std::to_string(v) + "\""});
        r.headers.push_back({"Set-Cookie", "session=" + call});
        r.headers.push_back({"X-Upstream-Debug", "fake"});
      }
    } else if (p == "/templates") {
      if (write) {
        ++list_version_;
        r.body = R"({"updated":true})";
      } else {
        r.body = R"({"list_version":)" + std::to_string(list_version_) + R"(,"query":")" +
                 std::string(query) + R"(","call":)" + call + "}";
      }
    } else {
      r.body = R"({"path":")" + p + R"(","tenant":")" + tenant + R"(","call":)" + call + "}";
      r.headers.push_back({"X-Upstream-Debug", "fake"});
    }
    return r;
  }

  mutable std::mutex mu_;  // guards everything below
  std::map<std::string, std::uint64_t> calls_;
  std::map<std::string, int> versions_;
  std::map<std::string, std::string> last_headers_;
  int list_version_ = 0;
  std::uint64_t total_ = 0;
  std::string last_target_;
  std::chrono::milliseconds latency_{0};
  std::map<std::string, std::chrono::milliseconds> method_latency_;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
};

// The fake on its own io_context and threads.
class FakeJsonApiServer {
 public:
  FakeJsonApiServer() {
    ServerOptions o;
    o.port = 0;
    o.name = "fake-json-api";
    server_ = HttpServer::create(ioc_, o, api_).value();
    port_ = server_->port();
    server_->start();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~FakeJsonApiServer() { stop(); }
  // Closes the listening socket and every connection, then lets the threads
  // run out of work (stopping the io_context first could leave the posted
  // close undone: the port would still accept connections).
  void stop() {
    if (!server_) return;
    server_->stop_accepting();
    server_->force_close();
    work_.reset();
    for (auto& t : threads_) t.join();
    threads_.clear();
    server_.reset();
  }
  // Stays valid after stop() (nothing listens on it then).
  std::uint16_t port() const { return port_; }
  FakeJsonApi& api() { return api_; }

 private:
  net::io_context ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{
      net::make_work_guard(ioc_)};
  FakeJsonApi api_;
  std::unique_ptr<HttpServer> server_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
};

}  // namespace callcache::gateway::testing
