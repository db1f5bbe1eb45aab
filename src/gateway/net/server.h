// Internal: the gateway's HTTP/1.1 front — a listener that accepts
// connections and one session coroutine per connection that reads requests,
// awaits an HttpHandler, and writes answers (keep-alive, in order).
//
// The server knows no API: the answers it gives itself (framing and limits,
// too many connections, a handler that threw) are rendered by the
// application's ServerOptions::error_answer, in the shape its clients read.
//
// Limits at the edge: header bytes (431), body bytes (413), time to send a
// request once started (read_timeout), idle keep-alive time (idle_timeout),
// connections (503 beyond max_connections). Pipelined requests are answered
// one at a time, in order; bytes read ahead are bounded by the header limit
// plus the body limit (a bounded pipeline). A client closing, resetting or
// timing out is normal and is not logged as an error.
//
// Streaming: a request body over stream_threshold (or chunked) that the
// handler accepts as a stream (HttpHandler::stream_request_body) is not read
// before handle(): the handler gets HttpRequest::body_stream and whoever
// forwards it pulls the body a chunk at a time (sending "100 Continue" first
// when the client asked for it). read_timeout then applies to each chunk. An
// answer with HttpResponse::body_stream is written as its header, then its
// chunks as they arrive (write_timeout per chunk; Content-Length when known,
// else chunked). A streamed body that fails midway closes the connection: a
// body over max_body_bytes (chunked) is answered 413, malformed framing 400;
// a client gone or stalled past read_timeout is not answered; a streamed
// answer that fails after its header was sent ends the connection (the
// client sees a truncated body). A request body the
// handler did not read to the end is discarded by closing the connection
// after the answer.
//
// Shutdown: stop_accepting() closes the listening socket; close_idle() makes
// idle sessions close now and busy ones close after their current answer;
// force_close() cancels everything (after the shutdown deadline).
//
// Threads: the server accepts on the first io_context and deals connections
// round-robin over all of them. A session runs on its connection's
// io_context without a strand, so REQUIRES: each io_context is run by
// exactly one thread (one io_context per I/O thread: no locks or cross-thread
// wake-ups on the request path).
//
// Thread-safety: all members may be called from any thread; the session
// registry is guarded by a mutex. REQUIRES: the io_contexts and the handler
// outlive the server.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/status.h"
#include "gateway/net/http_message.h"

namespace spdlog {
class logger;
}

namespace callcache::gateway {

// What a session calls for each request. Implementations never throw out of
// handle() (an escaping exception becomes a 500 and the connection closes).
class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual boost::asio::awaitable<HttpResponse> handle(HttpRequest request) = 0;
  // Whether the handler takes this request's body as a stream when it is
  // large (see ServerOptions::stream_threshold). `head` has the method,
  // target and headers; its body is not read yet. The default (false)
  // buffers every body up to max_body_bytes.
  virtual bool stream_request_body(const HttpRequest& head) const {
    (void)head;
    return false;
  }
};

// Renders an answer the server gives itself, without the handler: a refused
// head or body (400, 413, 431; 400 for ambiguous framing), too many
// connections (503), a handler that threw (500). `reason` is the text for
// the client ("Request Entity Too Large: ..."); `target` is the request's
// target once its request line was read, else "" (the answer may depend on
// the route). The server sets the status and Connection: close on what it
// returns. Called on the I/O threads, concurrently: must not block or throw.
using ErrorRenderer =
    std::function<HttpResponse(int status, std::string_view reason, std::string_view target)>;

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8081;  // 0 = any free port (tests)
  std::size_t max_connections = 10000;
  std::uint32_t max_header_bytes = 64 * 1024;
  // Request bodies are refused over this size (Bot API uploads are up to 50 MB).
  std::uint64_t max_body_bytes = 52 * 1024 * 1024;
  // Request bodies declared larger than this (or chunked, when
  // max_body_bytes is larger) are streamed to handlers that accept streams;
  // smaller ones are buffered. 0 = buffer every body.
  std::uint64_t stream_threshold = 256 * 1024;
  // Time to receive one request once its first byte arrived (for a
  // streamed body: the header, then each chunk).
  std::chrono::milliseconds read_timeout{30000};
  // Time a keep-alive connection may wait for its next request.
  std::chrono::milliseconds idle_timeout{60000};
  // Time to write one answer (a streamed answer: its header, then each chunk).
  std::chrono::milliseconds write_timeout{30000};
  // "gateway" / "admin": names the server in logs.
  std::string name = "gateway";
  // Access log (one line per request, targets as the handler redacted them);
  // nullptr = off.
  std::shared_ptr<spdlog::logger> access_log;
  // The shape of the server's own answers; empty = json_error(), {"error":...}.
  ErrorRenderer error_answer;
};

class HttpServer {
 public:
  // Binds and listens (does not accept until start()). Errors: kIoError
  // naming the address (in use, permission), kInvalidArgument (bad address).
  static Result<std::unique_ptr<HttpServer>> create(boost::asio::io_context& ioc,
                                                    ServerOptions options, HttpHandler& handler);
  // The same over several io_contexts (one per I/O thread); kInvalidArgument
  // if `contexts` is empty.
  static Result<std::unique_ptr<HttpServer>> create(std::vector<boost::asio::io_context*> contexts,
                                                    ServerOptions options, HttpHandler& handler);
  ~HttpServer();

  // The bound port (useful with port 0).
  std::uint16_t port() const;
  // Starts accepting (on the io_context's threads).
  void start();
  // Closes the listening socket. Idempotent.
  void stop_accepting();
  // Idle sessions close now; busy sessions close after their current answer.
  void close_idle();
  // Closes every connection now (in-flight answers are lost).
  void force_close();
  // Connections open now, and those in the middle of a request.
  std::size_t connections() const;
  std::size_t busy() const;
  std::uint64_t accepted_total() const;
  std::uint64_t rejected_total() const;  // refused beyond max_connections

  class Impl;

 private:
  explicit HttpServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace callcache::gateway
