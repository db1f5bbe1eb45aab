// Request smuggling over real sockets: the gateway's HttpServer refuses every
// request whose framing two HTTP parsers could read differently (Content-Length
// with Transfer-Encoding, duplicated or conflicting Content-Length, obs-fold,
// Transfer-Encoding other than chunked, invalid chunk sizes) with a 400, a
// JSON reason in the shape the application gave the server (the Bot API's
// here) and a closed connection; the handler never sees the refused request
// nor the one smuggled behind it. A server given another shape answers its
// framing and limit refusals in that shape.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/net/server.h"
#include "gateway/telegram/bot_api_handler.h"

namespace callcache::gateway {
namespace smuggling_test {

namespace net = boost::asio;
using namespace std::chrono_literals;

// Answers {"target":...,"body":...}; bodies of targets under /stream are
// taken as streams (read to the end by the handler).
class RecordingHandler final : public HttpHandler {
 public:
  net::awaitable<HttpResponse> handle(HttpRequest request) override {
    std::string body = request.body;
    if (request.body_stream) {
      std::vector<char> chunk(4096);
      for (;;) {
        BodyRead r = co_await request.body_stream->read_some(chunk);
        if (r.error || r.bytes == 0) break;
        body.append(chunk.data(), r.bytes);
      }
    }
    {
      std::lock_guard lock(mu_);
      targets_.push_back(request.target);
    }
    HttpResponse r;
    r.body = nlohmann::json{{"target", request.target}, {"body", body}}.dump();
    co_return r;
  }
  bool stream_request_body(const HttpRequest& head) const override {
    return head.target.starts_with("/stream");
  }
  std::vector<std::string> targets() const {
    std::lock_guard lock(mu_);
    return targets_;
  }

 private:
  mutable std::mutex mu_;  // guards targets_
  std::vector<std::string> targets_;
};

// What a raw connection got back.
struct RawReply {
  std::string bytes;
  bool closed = false;  // the server closed the connection (not our timeout)
};

// Writes `bytes` on a fresh connection to `port`; reads until the server
// closes it (or 10 s pass: then `closed` is false).
RawReply raw_exchange(std::uint16_t port, const std::string& bytes) {
  net::io_context ioc;
  net::ip::tcp::socket s(ioc);
  s.connect({net::ip::make_address("127.0.0.1"), port});
  timeval tv{10, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  boost::system::error_code ec;
  net::write(s, net::buffer(bytes), ec);
  RawReply reply;
  char buf[4096];
  for (;;) {
    std::size_t n = s.read_some(net::buffer(buf), ec);
    reply.bytes.append(buf, n);
    if (ec) {
      reply.closed = ec == net::error::eof || ec == net::error::connection_reset;
      break;
    }
  }
  return reply;
}

class SmugglingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.port = 0;
    o.name = "smuggling-test";
    o.max_body_bytes = 1024;
    o.stream_threshold = 16;  // chunked bodies to /stream are streamed
    // Longer than raw()'s read timeout: a connection left open is noticed.
    o.idle_timeout = 60s;
    o.error_answer = [](int status, std::string_view reason, std::string_view) {
      return bot_api_error(status, reason);
    };
    server_ = HttpServer::create(ioc_, o, handler_).value();
    server_->start();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    server_->stop_accepting();
    server_->force_close();
    work_.reset();
    thread_.join();
  }

  RawReply raw(const std::string& bytes) { return raw_exchange(server_->port(), bytes); }

  // Sends `bytes` and expects exactly one answer: a 400 whose JSON reason
  // contains `reason`, with Connection: close, then the connection closed.
  void expect_refused(const std::string& bytes, const std::string& reason) {
    SCOPED_TRACE(bytes);
    RawReply reply = raw(bytes);
    EXPECT_TRUE(reply.closed) << "the connection stayed open";
    ASSERT_TRUE(reply.bytes.starts_with("HTTP/1.1 400 ")) << reply.bytes;
    EXPECT_NE(reply.bytes.find("\r\nConnection: close\r\n"), std::string::npos) << reply.bytes;
    const std::size_t body_at = reply.bytes.find("\r\n\r\n");
    ASSERT_NE(body_at, std::string::npos);
    // One answer only: nothing after the JSON body (no second response).
    auto json = nlohmann::json::parse(reply.bytes.substr(body_at + 4), nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << reply.bytes;
    EXPECT_EQ(json["ok"], false);
    EXPECT_EQ(json["error_code"], 400);
    const std::string description = json.value("description", "");
    EXPECT_TRUE(description.starts_with("Bad Request: ")) << description;
    EXPECT_NE(description.find(reason), std::string::npos) << description;
    EXPECT_EQ(reply.bytes.find("HTTP/1.1", 1), std::string::npos) << reply.bytes;
  }

  net::io_context ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{
      net::make_work_guard(ioc_)};
  RecordingHandler handler_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

const std::string kSmuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

TEST_F(SmugglingTest, PipelinedRequestsWithUnambiguousFramingAreAllAnswered) {
  // The control case: the same connection carries three well-framed requests.
  RawReply reply =
      raw("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
          "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nworld\r\n0\r\n\r\n"
          "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(reply.closed);
  EXPECT_NE(reply.bytes.find(R"({"body":"hello","target":"/a"})"), std::string::npos);
  EXPECT_NE(reply.bytes.find(R"({"body":"world","target":"/b"})"), std::string::npos);
  EXPECT_EQ(handler_.targets(), (std::vector<std::string>{"/a", "/b", "/c"}));
}

TEST_F(SmugglingTest, ContentLengthWithTransferEncodingIsRefused) {
  // CL.TE: a proxy using Content-Length forwards the whole thing; a server
  // using chunked would see "0" end the body and /smuggled as a second request.
  expect_refused(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 45\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
          kSmuggled,
      "Content-Length and Transfer-Encoding together");
  // TE.CL: the same, headers the other way round.
  expect_refused(
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Content-Length: 4\r\n\r\n2a\r\n" +
          kSmuggled + "\r\n0\r\n\r\n",
      "Content-Length and Transfer-Encoding together");
  EXPECT_TRUE(handler_.targets().empty());
}

TEST_F(SmugglingTest, DuplicatedOrConflictingContentLengthIsRefused) {
  expect_refused(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 45\r\n\r\n" + kSmuggled,
      "Content-Length is given more than once");
  expect_refused(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"
      "hello",
      "Content-Length is given more than once");
  expect_refused("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello",
                 "Content-Length is given more than once");
  expect_refused("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello",
                 "invalid Content-Length");
  EXPECT_TRUE(handler_.targets().empty());
}

TEST_F(SmugglingTest, ObsFoldIsRefused) {
  // A folded Transfer-Encoding: parsers that do not unfold miss the chunking.
  expect_refused(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Pad: 1\r\n"
      " Transfer-Encoding: chunked\r\n\r\nhello",
      "obs-fold");
  expect_refused("GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tmore\r\n\r\n", "obs-fold");
  EXPECT_TRUE(handler_.targets().empty());
}

TEST_F(SmugglingTest, TransferEncodingsOtherThanChunkedAreRefused) {
  // Parsers that ignore an unknown coding would read no body at all and
  // take the body as the next request.
  expect_refused("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" + kSmuggled,
                 "unsupported Transfer-Encoding 'gzip'");
  expect_refused(
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n" + kSmuggled,
      "unsupported Transfer-Encoding");
  expect_refused(
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Transfer-Encoding: x\r\n\r\n0\r\n\r\n",
      "Transfer-Encoding is given more than once");
  expect_refused("POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 "HTTP/1.0");
  // A space before the colon is not a header name Beast accepts.
  expect_refused("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                 "malformed HTTP request");
  EXPECT_TRUE(handler_.targets().empty());
}

TEST_F(SmugglingTest, InvalidChunkSizesAreRefusedBufferedAndStreamed) {
  for (const std::string target : {"/a", "/stream"}) {
    for (const char* chunks :
         {"zz\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n",
          "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", "3\r\nhello\r\n0\r\n\r\n"}) {
      expect_refused("POST " + target +
                         " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks +
                         kSmuggled,
                     "malformed");
    }
  }
  // A streamed body reaches the handler before its framing fails; the
  // smuggled request never does.
  for (const std::string& t : handler_.targets()) EXPECT_EQ(t, "/stream");
}

// The application decides the shape of the server's own answers: here an
// RFC 9457 problem document naming the target, for a head over the limit
// (431, no target yet), a Content-Length that is not a number (400), a
// declared body over the limit (413) and a streamed one (413, chunked).
TEST(ServerErrorAnswer, FramingAndLimitRefusalsUseTheApplicationsShape) {
  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  RecordingHandler handler;
  ServerOptions o;
  o.port = 0;
  o.name = "error-answer-test";
  o.max_header_bytes = 1024;
  o.max_body_bytes = 64;
  o.stream_threshold = 16;
  o.error_answer = [](int status, std::string_view reason, std::string_view target) {
    HttpResponse r;
    r.content_type = "application/problem+json";
    r.body =
        nlohmann::json{
            {"status", status}, {"title", std::string(reason)}, {"instance", std::string(target)}}
            .dump();
    return r;
  };
  auto server = HttpServer::create(ioc, o, handler).value();
  server->start();
  std::thread thread([&ioc] { ioc.run(); });

  auto expect_problem = [&](const std::string& bytes, int status, std::string_view reason,
                            std::string_view target) {
    SCOPED_TRACE(bytes.substr(0, 80));
    RawReply reply = raw_exchange(server->port(), bytes);
    EXPECT_TRUE(reply.closed) << "the connection stayed open";
    ASSERT_TRUE(reply.bytes.starts_with("HTTP/1.1 " + std::to_string(status) + " ")) << reply.bytes;
    EXPECT_NE(reply.bytes.find("\r\nContent-Type: application/problem+json\r\n"), std::string::npos)
        << reply.bytes;
    const std::size_t body_at = reply.bytes.find("\r\n\r\n");
    ASSERT_NE(body_at, std::string::npos);
    auto json = nlohmann::json::parse(reply.bytes.substr(body_at + 4), nullptr, false);
    ASSERT_TRUE(json.is_object()) << reply.bytes;
    EXPECT_FALSE(json.contains("ok")) << "the Bot API's shape leaked: " << reply.bytes;
    EXPECT_FALSE(json.contains("error_code")) << reply.bytes;
    EXPECT_EQ(json["status"], status);
    EXPECT_NE(json.value("title", "").find(reason), std::string::npos) << reply.bytes;
    EXPECT_EQ(json["instance"], target);
  };

  expect_problem("GET /big HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(2048, 'a') + "\r\n\r\n",
                 431, "", "");
  expect_problem("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\nhello", 400,
                 "Bad Request: ", "/upload");
  expect_problem(
      "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n" + std::string(65, 'b'), 413,
      "Request Entity Too Large", "/upload");
  expect_problem(
      "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "50\r\n" +
          std::string(80, 'c') + "\r\n0\r\n\r\n",
      413, "Request Entity Too Large: body over 64 bytes", "/stream");
  // Only the streamed request reached the handler (it read the body to the error).
  EXPECT_EQ(handler.targets(), std::vector<std::string>{"/stream"});

  server->stop_accepting();
  server->force_close();
  work.reset();
  thread.join();
}

}  // namespace smuggling_test
}  // namespace callcache::gateway
