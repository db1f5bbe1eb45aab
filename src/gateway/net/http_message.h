// Internal: the plain HTTP request/response values that the gateway's pure
// handlers take and return. No Beast here (only Asio's awaitable type, for
// streamed bodies): the session (server.cpp) translates from and to Beast
// messages, so handler code compiles fast and can be tested without sockets.
//
// Bodies are either buffered (`body`) or streamed (`body_stream`): large
// uploads and downloads pass through in chunks without being held whole.
//
// Thread-safety: plain values. A BodyStream is read by one coroutine at a
// time, on the executor of the session that owns the request.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callcache::gateway {

struct Header {
  std::string name;
  std::string value;
};

// Case-insensitive ASCII comparison (HTTP header names).
bool iequals(std::string_view a, std::string_view b) noexcept;

// Whether a proxy drops this client request header instead of passing it
// upstream: hop-by-hop and framing headers, and the ones the upstream client
// sets itself (Host, Accept-Encoding, Expect).
bool dropped_request_header(std::string_view name) noexcept;

// What one BodyStream::read_some produced.
struct BodyRead {
  boost::system::error_code error;
  std::size_t bytes = 0;  // 0 without error = the body is complete
};

// A body read as it arrives, a chunk at a time, from the connection it
// belongs to (a client's upload, an upstream's download). Memory per
// transfer is the reader's chunk buffer; the sender is held back by TCP
// flow control while nobody reads (back-pressure).
//
// Each read has its own timeout (the owner's read timeout), so a slow but
// moving transfer works and a stalled one ends.
//
// Ownership: shared by the values that carry it; the connection behind it
// is owned by the stream (upstream) or by the session that outlives every
// read (client). A stream the session has finished with fails every read
// with operation_aborted.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // Reads the next bytes of the body into `out` (at most out.size(); waits
  // for at least one byte). {error, 0}: the body cannot be completed (peer
  // gone, timed out, over a limit) and the stream is unusable.
  // REQUIRES: !out.empty(); no other read_some is in progress.
  virtual boost::asio::awaitable<BodyRead> read_some(std::span<char> out) = 0;
  // The declared length (Content-Length), or nullopt when unknown (chunked,
  // or until the connection closes).
  virtual std::optional<std::uint64_t> length() const noexcept = 0;
  // True once read_some returned {ok, 0}: the whole body was read.
  virtual bool done() const noexcept = 0;
};

// The chunk size used to move streamed bodies.
inline constexpr std::size_t kStreamChunkBytes = 64 * 1024;

// Process-wide counters of streamed transfers (rendered by /metrics; read by
// tests). Relaxed atomics.
struct StreamCounters {
  std::atomic<std::uint64_t> uploads{0};  // request bodies streamed upstream
  std::atomic<std::uint64_t> upload_bytes{0};
  std::atomic<std::uint64_t> downloads{0};  // answer bodies streamed to clients
  std::atomic<std::uint64_t> download_bytes{0};
  std::atomic<std::uint64_t> aborted{0};  // streams that ended early (either side)
  // Chunk buffers allocated now (bytes).
  std::atomic<std::int64_t> buffer_bytes{0};
  // The largest body a session held whole (a request it buffered, or an
  // answer it wrote from memory); bodies of a chunk or less are not tracked.
  std::atomic<std::uint64_t> largest_buffered_body{0};

  void note_buffered(std::uint64_t size) noexcept;
};
StreamCounters& stream_counters() noexcept;

// A chunk buffer counted in stream_counters().buffer_bytes while it lives.
class StreamChunk {
 public:
  explicit StreamChunk(std::size_t size = kStreamChunkBytes);
  ~StreamChunk();
  StreamChunk(const StreamChunk&) = delete;
  StreamChunk& operator=(const StreamChunk&) = delete;
  std::span<char> span() noexcept { return {data_.get(), size_}; }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form: "/bot<token>/getChat?chat_id=1"
  std::vector<Header> headers;
  // The body, unless `body_stream` is set (then `body` is empty and the body
  // is read from the stream by whoever forwards it; see HttpHandler).
  std::string body;
  std::shared_ptr<BodyStream> body_stream;
  bool keep_alive = true;
  // The peer, for logs ("127.0.0.1:51234"); may be empty.
  std::string peer;

  // The first header named `name` (case-insensitive), or "".
  std::string_view header(std::string_view name) const noexcept;
};

struct HttpResponse {
  int status = 200;
  // Extra headers; Content-Length, Connection and Server are set by the session.
  std::vector<Header> headers;
  std::string content_type = "application/json";
  // The body: `body`, unless `shared_body` is set (a cached answer handed out
  // without a copy; it pins the bytes for as long as the response lives).
  std::string body;
  std::shared_ptr<const std::string> shared_body;
  // A body still arriving from the upstream: the session writes the header,
  // then copies chunks to the client (`body` and `shared_body` are unused).
  std::shared_ptr<BodyStream> body_stream;
  // An answer to HEAD has no body; this is the Content-Length the body would
  // have had (unset: the size of `body`).
  std::optional<std::uint64_t> head_length;
  // Set by handlers for the access log and the X-Callcache header ("hit",
  // "miss", "coalesced", "stale", "bypass", "pass", "error", ...).
  std::string outcome;
  // The request target as the access log may show it (token redacted); the
  // session logs "-" when empty, never the raw target.
  std::string log_target;

  std::string_view body_view() const noexcept {
    return shared_body ? std::string_view(*shared_body) : std::string_view(body);
  }
  std::string_view header(std::string_view name) const noexcept;
};

// A plain JSON error, {"error":<message>}: the generic API front's shape, and
// the server's own answers when the application sets no other
// (ServerOptions::error_answer).
HttpResponse json_error(int status, std::string_view message);

}  // namespace callcache::gateway
