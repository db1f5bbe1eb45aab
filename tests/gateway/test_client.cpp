#include "test_client.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <sys/socket.h>
#include <sys/time.h>

#include <future>
#include <thread>

namespace callcache::gateway::testing {

namespace net = boost::asio;

struct TestClient::State {
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(ioc);
  std::vector<std::thread> threads;
  std::unique_ptr<UpstreamClient> client;
  Origin origin;
  std::uint16_t port = 0;
};

TestClient::TestClient(std::uint16_t port) : state_(std::make_unique<State>()) {
  state_->port = port;
  state_->origin = *Origin::parse("http://127.0.0.1:" + std::to_string(port));
  UpstreamOptions o;
  o.read_timeout = std::chrono::milliseconds(30000);
  o.max_idle_per_origin = 256;
  state_->client = UpstreamClient::create(state_->ioc.get_executor(), o).value();
  for (int i = 0; i < 2; ++i) state_->threads.emplace_back([s = state_.get()] { s->ioc.run(); });
}

TestClient::~TestClient() {
  state_->client->close_idle();
  state_->work.reset();
  state_->ioc.stop();
  for (auto& t : state_->threads) t.join();
}

namespace {
HttpResponse to_response(UpstreamResult r) {
  if (r.error) {
    HttpResponse e;
    e.status = 0;
    e.body = r.error.message();
    return e;
  }
  return std::move(r.response);
}
}  // namespace

HttpResponse TestClient::send(HttpRequest request) {
  auto f = net::co_spawn(state_->ioc, state_->client->send(state_->origin, std::move(request)),
                         net::use_future);
  return to_response(f.get());
}

HttpResponse TestClient::get(const std::string& target) {
  HttpRequest r;
  r.method = "GET";
  r.target = target;
  return send(std::move(r));
}

HttpResponse TestClient::post_json(const std::string& target, const std::string& json) {
  HttpRequest r;
  r.method = "POST";
  r.target = target;
  r.headers.push_back({"Content-Type", "application/json"});
  r.body = json;
  return send(std::move(r));
}

HttpResponse TestClient::post_form(const std::string& target, const std::string& form) {
  HttpRequest r;
  r.method = "POST";
  r.target = target;
  r.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
  r.body = form;
  return send(std::move(r));
}

std::vector<HttpResponse> TestClient::send_all(std::vector<HttpRequest> requests) {
  std::vector<std::future<UpstreamResult>> futures;
  futures.reserve(requests.size());
  for (auto& r : requests) {
    futures.push_back(net::co_spawn(state_->ioc, state_->client->send(state_->origin, std::move(r)),
                                    net::use_future));
  }
  std::vector<HttpResponse> out;
  for (auto& f : futures) out.push_back(to_response(f.get()));
  return out;
}

std::string TestClient::raw(const std::string& bytes, std::chrono::milliseconds timeout) {
  net::io_context ioc;
  net::ip::tcp::socket s(ioc);
  boost::system::error_code ec;
  s.connect({net::ip::make_address("127.0.0.1"), state_->port}, ec);
  if (ec) return "connect failed: " + ec.message();
  timeval tv{};
  tv.tv_sec = static_cast<long>(timeout.count() / 1000);
  tv.tv_usec = static_cast<long>((timeout.count() % 1000) * 1000);
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  net::write(s, net::buffer(bytes), ec);
  std::string out;
  char buf[4096];
  for (;;) {
    std::size_t n = s.read_some(net::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

}  // namespace callcache::gateway::testing
