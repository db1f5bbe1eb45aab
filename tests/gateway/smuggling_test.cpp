// Request smuggling over real sockets: the gateway's HttpServer refuses every
// request whose framing two HTTP parsers could read differently (Content-Length
// with Transfer-Encoding, duplicated or conflicting Content-Length, obs-fold,
// Transfer-Encoding other than chunked, invalid chunk sizes) with a 400, a
// Bot API-shaped JSON reason and a closed connection; the handler never sees
// the refused request nor the one smuggled behind it.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/net/server.h"

namespace callcache::gateway {
namespace {

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

  // Writes `bytes` on a fresh connection; reads until the server closes it
  // (or 10 s pass: then `closed` is false).
  RawReply raw(const std::string& bytes) {
    net::io_context ioc;
    net::ip::tcp::socket s(ioc);
    s.connect({net::ip::make_address("127.0.0.1"), server_->port()});
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

}  // namespace
}  // namespace callcache::gateway
