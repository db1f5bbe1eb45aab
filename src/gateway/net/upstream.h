// Internal: the gateway's side effects on upstreams. UpstreamExecutor is the
// interface the request handler awaits (tests substitute their own);
// UpstreamClient is the real one: HTTP and HTTPS (OpenSSL, peers verified by
// default) with pooled keep-alive connections per origin and timeouts.
//
// Streaming: a request whose body is a BodyStream is sent as its header, then
// each chunk as it is read from the stream (upstream read_timeout per chunk,
// Content-Length when the stream declares one, else chunked); it always uses
// a fresh connection (the body can be read only once, so a stale pooled
// connection could not be retried), and a body that fails midway drops the
// connection, so the upstream never sees a truncated body as complete.
// send_streaming() may answer with HttpResponse::body_stream: the answer's
// body still on its connection, read a chunk at a time; the connection goes
// back to the pool when the body was read to its end and is closed when the
// stream is dropped before that.
//
// Thread-safety: UpstreamClient::send may be called concurrently from any
// coroutine on any thread of the io_context; each connection is used by one
// exchange at a time, and the idle pool is guarded by a mutex.
// Ownership: the client owns its idle connections; an exchange owns the
// connection it uses until it returns it to the pool or drops it; a streamed
// answer owns its connection (it may outlive the client: it then closes the
// connection instead of pooling it).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "callcache/status.h"
#include "gateway/net/http_message.h"

namespace callcache::gateway {

// Where requests go: scheme, host, port and a path prefix.
struct Origin {
  bool tls = true;
  std::string host;
  std::string port;       // "443"
  std::string base_path;  // "" or "/prefix" (no trailing slash)

  // Parses "https://api.telegram.org", "http://127.0.0.1:8081/prefix".
  // Errors name the URL and what is wrong with it.
  static Result<Origin> parse(std::string_view url);
  // "https://host:port" — the pool key and what logs show.
  std::string key() const;
};

struct UpstreamOptions {
  std::chrono::milliseconds connect_timeout{5000};
  // Per exchange (write + whole answer). getUpdates long polls up to 50 s.
  std::chrono::milliseconds read_timeout{75000};
  // Idle keep-alive connections kept per origin; more are closed.
  std::size_t max_idle_per_origin = 64;
  // A pooled connection idle for longer is not reused.
  std::chrono::milliseconds idle_timeout{30000};
  // Buffered answers over this are an error (kUpstreamBodyTooLarge);
  // streamed answers (send_streaming) have no size limit.
  std::uint64_t max_response_bytes = 64ull << 20;
  // send_streaming() streams answers declared larger than this, or of
  // unknown length; smaller ones are buffered. 0 = buffer every answer.
  std::uint64_t stream_threshold = 256 * 1024;
  bool verify_peer = true;
  std::string ca_file;  // "" = the system's default trust store
};

// What one upstream exchange produced: an answer, or an error (in the
// gateway, socket, TLS or Beast category) and no answer.
struct UpstreamResult {
  boost::system::error_code error;
  HttpResponse response;
  // Wall time of the exchange.
  std::chrono::nanoseconds latency{0};
};

class UpstreamExecutor {
 public:
  virtual ~UpstreamExecutor() = default;
  // Sends `request` (its target is appended to origin.base_path) and awaits
  // the answer, buffered. Never throws; never waits longer than connect +
  // read timeout (a streamed request body: + read timeout per chunk).
  virtual boost::asio::awaitable<UpstreamResult> send(const Origin& origin,
                                                      HttpRequest request) = 0;
  // As send(), but the answer's body may be left streaming
  // (HttpResponse::body_stream) when it is large or of unknown length. The
  // default buffers it (calls send()).
  virtual boost::asio::awaitable<UpstreamResult> send_streaming(const Origin& origin,
                                                                HttpRequest request) {
    return send(origin, std::move(request));
  }
};

class UpstreamClient final : public UpstreamExecutor {
 public:
  // Creates a client whose connections run on `executor`.
  // Errors: kInvalidArgument if the TLS trust store cannot be loaded.
  static Result<std::unique_ptr<UpstreamClient>> create(boost::asio::any_io_executor executor,
                                                        UpstreamOptions options);
  ~UpstreamClient() override;

  boost::asio::awaitable<UpstreamResult> send(const Origin& origin, HttpRequest request) override;
  boost::asio::awaitable<UpstreamResult> send_streaming(const Origin& origin,
                                                        HttpRequest request) override;

  // Closes every idle connection (shutdown). In-flight exchanges finish.
  void close_idle();
  // Idle connections held now (all origins).
  std::size_t idle_connections() const;

  class Impl;

 private:
  explicit UpstreamClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace callcache::gateway
