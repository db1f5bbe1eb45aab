// HttpServer: listener + per-connection session coroutines (Beast).
#include "gateway/net/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "gateway/net/asio.h"
#include "gateway/net/error.h"
#include "gateway/net/http_framing.h"

namespace callcache::gateway {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Errors that mean "the client went away or was idle": normal, not logged.
bool is_client_gone(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::error::operation_aborted || ec == beast::error::timeout ||
         ec == net::error::not_connected || ec == net::error::bad_descriptor;
}

// A session's state shared with the server's registry, so shutdown can reach
// idle connections. Touched only on the session's strand, except `busy`.
struct SessionState {
  explicit SessionState(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  std::atomic<bool> busy{false};
  bool closing = false;  // on the strand: close after the current answer
  std::string head;      // the last buffered answer's header block (reused)
};

// A client's request body, pulled by the handler's consumer (the upstream
// exchange) a chunk at a time. Lives in the session's request; reads the
// session's stream and read-ahead buffer, which outlive it until detach():
// the session detaches it before it reads the next request, so a copy kept
// elsewhere can never touch the connection again.
class ClientBody final : public BodyStream {
 public:
  struct Timeouts {
    std::chrono::milliseconds read;
    std::chrono::milliseconds write;
  };

  ClientBody(beast::tcp_stream& stream, beast::flat_buffer& buffer,
             http::request_parser<http::string_body>&& head, Timeouts timeouts, bool send_continue)
      : stream_(&stream),
        buffer_(&buffer),
        parser_(std::move(head)),
        timeouts_(timeouts),
        send_continue_(send_continue) {
    if (auto n = parser_.content_length()) length_ = *n;
    // Beast reads at most the buffer's free capacity (at least 512 bytes):
    // room for a whole chunk, or the body would move 512 bytes per read.
    buffer_->reserve(kStreamChunkBytes);
    stream_counters().uploads.fetch_add(1, std::memory_order_relaxed);
  }

  awaitable<BodyRead> read_some(std::span<char> out) override {
    if (done_) co_return BodyRead{};
    if (!stream_) co_return BodyRead{net::error::operation_aborted, 0};
    if (error_) co_return BodyRead{error_, 0};
    if (send_continue_) {
      // The client waits for this before sending the body: sent only once
      // someone wants the body, so a refused request costs no upload.
      send_continue_ = false;
      http::response<http::empty_body> cont{http::status::continue_, 11};
      stream_->expires_after(timeouts_.write);
      auto [ec, n] = co_await http::async_write(*stream_, cont, use_nothrow);
      if (ec) co_return fail(ec);
    }
    for (;;) {
      auto& body = parser_.get().body();
      body.data = out.data();
      body.size = out.size();
      stream_->expires_after(timeouts_.read);
      auto [ec, n] = co_await http::async_read_some(*stream_, *buffer_, parser_, use_nothrow);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return fail(ec);
      const std::size_t got = out.size() - parser_.get().body().size;
      done_ = parser_.is_done();
      if (got > 0 || done_) {
        stream_counters().upload_bytes.fetch_add(got, std::memory_order_relaxed);
        co_return BodyRead{{}, got};
      }
      // Only framing (a chunk header) was parsed: read on.
    }
  }

  std::optional<std::uint64_t> length() const noexcept override { return length_; }
  bool done() const noexcept override { return done_; }
  // Why the body could not be completed (empty while it can).
  const error_code& error() const noexcept { return error_; }
  void detach() noexcept {
    if (buffer_) buffer_->shrink_to_fit();  // idle keep-alive connections stay small
    stream_ = nullptr;
    buffer_ = nullptr;
  }

 private:
  BodyRead fail(const error_code& ec) {
    error_ = ec;
    stream_counters().aborted.fetch_add(1, std::memory_order_relaxed);
    return BodyRead{ec, 0};
  }

  beast::tcp_stream* stream_;
  beast::flat_buffer* buffer_;
  http::request_parser<http::buffer_body> parser_;
  Timeouts timeouts_;
  bool send_continue_;
  bool done_ = false;
  std::optional<std::uint64_t> length_;
  error_code error_;
};

// What writing one answer did.
struct Written {
  error_code client;    // writing to the client failed
  error_code upstream;  // a streamed answer's source failed after the header went out
  std::uint64_t body_bytes = 0;
};

template <class Body>
void set_head(http::response<Body>& res, const HttpResponse& answer) {
  res.set(http::field::server, "callcache");
  res.set(http::field::content_type, answer.content_type);
  if (!answer.outcome.empty()) res.set("X-Callcache", answer.outcome);
  for (const auto& h : answer.headers) res.insert(h.name, h.value);
}

// Framing and hop-by-hop headers the session writes itself.
bool session_owned_header(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection") || iequals(name, "keep-alive") || iequals(name, "server");
}

bool has_line_break(std::string_view text) {
  return text.find_first_of("\r\n") != std::string_view::npos;
}

// The status line and header block of a buffered answer, as Beast would
// write them for the same message: Server, Content-Type, X-Callcache, the
// handler's headers (those with a line break are dropped: they would split
// the header block), Content-Length, and Connection as HTTP/1.0 or 1.1 needs.
void format_head(std::string& out, const HttpResponse& answer, unsigned version, bool keep_alive,
                 std::size_t content_length) {
  out.clear();
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  const unsigned status =
      answer.status >= 100 && answer.status <= 999 ? static_cast<unsigned>(answer.status) : 500u;
  char code[4] = {static_cast<char>('0' + status / 100), static_cast<char>('0' + status / 10 % 10),
                  static_cast<char>('0' + status % 10), ' '};
  out.append(code, 4);
  out += http::obsolete_reason(static_cast<http::status>(status));
  out += "\r\nServer: callcache\r\nContent-Type: ";
  out += has_line_break(answer.content_type) ? std::string_view("application/octet-stream")
                                             : std::string_view(answer.content_type);
  if (!answer.outcome.empty()) {
    out += "\r\nX-Callcache: ";
    out += answer.outcome;
  }
  for (const auto& h : answer.headers) {
    if (h.name.empty() || session_owned_header(h.name) || has_line_break(h.name) ||
        has_line_break(h.value)) {
      continue;
    }
    out += "\r\n";
    out += h.name;
    out += ": ";
    out += h.value;
  }
  out += "\r\nContent-Length: ";
  out += std::to_string(content_length);
  if (version == 10 && keep_alive) out += "\r\nConnection: keep-alive";
  if (version != 10 && !keep_alive) out += "\r\nConnection: close";
  out += "\r\n\r\n";
}

// The target in a head's request line ("POST /x HTTP/1.1"), or "".
std::string_view request_line_target(std::string_view head) {
  const std::size_t from = head.find(' ');
  if (from == std::string_view::npos) return {};
  const std::size_t to = head.find_first_of(" \r\n", from + 1);
  if (to == std::string_view::npos || head[to] != ' ') return {};
  return head.substr(from + 1, to - from - 1);
}

// An answer the server gives itself (ServerOptions::error_answer rendered
// it), as Beast writes it: Connection: close.
http::response<http::string_body> edge_error(HttpResponse r, unsigned version) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "callcache");
  res.set(http::field::content_type, r.content_type);
  for (const Header& h : r.headers) res.set(h.name, h.value);
  res.keep_alive(false);
  res.body() = std::move(r.body);
  res.prepare_payload();
  return res;
}

}  // namespace

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(std::vector<net::io_context*> contexts, ServerOptions options, HttpHandler& handler)
      : contexts_(std::move(contexts)),
        options_(std::move(options)),
        handler_(handler),
        acceptor_(net::make_strand(*contexts_.front())) {}

  Status bind() {
    error_code ec;
    auto address = net::ip::make_address(options_.address, ec);
    if (ec) {
      return Status::invalid_argument(options_.name + ".listen: '" + options_.address +
                                      "' is not an IP address");
    }
    tcp::endpoint ep(address, options_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::io_error(options_.name + ": cannot listen on " + options_.address + ":" +
                              std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint(ec).port();
    return Status();
  }

  void start() {
    net::co_spawn(acceptor_.get_executor(), accept_loop(shared_from_this()), net::detached);
  }

  void stop_accepting() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      error_code ignored;
      self->acceptor_.close(ignored);
    });
  }

  void close_idle() {
    for (auto& s : sessions()) {
      net::post(s->stream.get_executor(), [s] {
        s->closing = true;
        if (!s->busy.load()) s->stream.socket().cancel();  // wakes the idle read
      });
    }
  }

  void force_close() {
    stop_accepting();
    for (auto& s : sessions()) {
      net::post(s->stream.get_executor(), [s] {
        s->closing = true;
        error_code ignored;
        s->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        s->stream.socket().close(ignored);
      });
    }
  }

  std::uint16_t port() const { return port_; }
  std::size_t connections() const {
    std::lock_guard lock(mu_);
    return sessions_.size();
  }
  std::size_t busy() const {
    std::size_t n = 0;
    for (auto& s : sessions()) n += s->busy.load() ? 1 : 0;
    return n;
  }
  std::uint64_t accepted_total() const { return accepted_.load(); }
  std::uint64_t rejected_total() const { return rejected_.load(); }

 private:
  std::vector<std::shared_ptr<SessionState>> sessions() const {
    std::vector<std::shared_ptr<SessionState>> out;
    std::lock_guard lock(mu_);
    out.reserve(sessions_.size());
    for (auto& [id, s] : sessions_) out.push_back(s);
    return out;
  }

  static awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    for (;;) {
      // Connections are dealt round-robin over the contexts; each context is
      // run by one thread, so a session needs no strand.
      net::io_context& ctx = *self->contexts_[self->next_context_++ % self->contexts_.size()];
      auto [ec, socket] = co_await self->acceptor_.async_accept(ctx, use_nothrow);
      if (ec) {
        if (ec == net::error::operation_aborted || !self->acceptor_.is_open()) co_return;
        // Out of descriptors and the like: log, back off briefly, keep going.
        spdlog::warn("{}: accept failed: {}", self->options_.name, ec.message());
        net::steady_timer t(self->acceptor_.get_executor(), std::chrono::milliseconds(50));
        co_await t.async_wait(use_nothrow);
        continue;
      }
      auto state = std::make_shared<SessionState>(std::move(socket));
      std::uint64_t id;
      bool refused = false;
      {
        std::lock_guard lock(self->mu_);
        if (self->sessions_.size() >= self->options_.max_connections) {
          refused = true;
        } else {
          id = ++self->next_id_;
          self->sessions_.emplace(id, state);
        }
      }
      auto ex = state->stream.get_executor();
      if (refused) {
        ++self->rejected_;
        net::co_spawn(ex,
                      refuse(std::move(state),
                             self->error_answer(503, "Service Unavailable: too many connections")),
                      net::detached);
        continue;
      }
      ++self->accepted_;
      net::co_spawn(ex, session(self, std::move(state), id), net::detached);
    }
  }

  static awaitable<void> refuse(std::shared_ptr<SessionState> s, HttpResponse answer) {
    auto res = edge_error(std::move(answer), 11);
    s->stream.expires_after(std::chrono::seconds(2));
    auto [ec, n] = co_await http::async_write(s->stream, res, use_nothrow);
    (void)ec;  // refused either way
    error_code ignored;
    s->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  static awaitable<void> session(std::shared_ptr<Impl> self, std::shared_ptr<SessionState> s,
                                 std::uint64_t id) {
    co_await self->serve(*s);
    error_code ignored;
    s->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    s->stream.socket().close(ignored);
    std::lock_guard lock(self->mu_);
    self->sessions_.erase(id);
  }

  awaitable<void> serve(SessionState& s) {
    error_code ignored;
    s.stream.socket().set_option(tcp::no_delay(true), ignored);
    auto remote = s.stream.socket().remote_endpoint(ignored);
    std::string peer = remote.address().to_string() + ":" + std::to_string(remote.port());
    beast::flat_buffer buffer;
    while (!s.closing) {
      // Idle until the next request's first bytes arrive; from then on the
      // whole head must arrive within read_timeout, however slowly it
      // trickles in (read_head), so a client sending a byte now and then
      // cannot hold a connection past read_timeout.
      s.stream.expires_after(buffer.size() == 0 ? options_.idle_timeout : options_.read_timeout);
      // The whole head first, so its framing is checked before Beast parses
      // it (gateway/net/http_framing.h: request smuggling is refused).
      auto [rec, head_size] = co_await read_head(s, buffer);
      if (rec) {
        co_await reject_bad_request(s, rec, buffer.size() > 0);
        co_return;
      }
      const std::string_view head_bytes(static_cast<const char*>(buffer.data().data()), head_size);
      if (auto refusal = check_request_head(head_bytes)) {
        co_await refuse_request(s, *refusal, "ambiguous framing", request_line_target(head_bytes));
        co_return;
      }
      http::request_parser<http::string_body> parser;
      parser.header_limit(options_.max_header_bytes);
      parser.body_limit(options_.max_body_bytes);
      auto [hec, hn] = co_await http::async_read_header(s.stream, buffer, parser, use_nothrow);
      if (hec) {
        // The target is set once the request line parsed (a limit may be
        // hit in the fields after it), else empty.
        co_await reject_bad_request(s, hec, parser.got_some() || buffer.size() > 0,
                                    std::string_view(parser.get().target()));
        co_return;
      }
      s.busy = true;
      auto started = SteadyClock::now();
      auto& msg = parser.get();
      HttpRequest req;
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      req.keep_alive = msg.keep_alive();
      req.peer = peer;
      req.headers.reserve(8);
      for (const auto& f : msg) {
        req.headers.push_back({std::string(f.name_string()), std::string(f.value())});
      }
      const unsigned version = msg.version();
      const bool keep_alive = req.keep_alive;
      const bool head = msg.method() == http::verb::head;
      const std::string method = req.method;
      const std::string req_target = req.target;  // for an answer the server gives itself
      const bool expects_continue = msg[http::field::expect] == "100-continue";

      std::shared_ptr<ClientBody> streamed;
      if (!parser.is_done() && streams(parser, req)) {
        streamed = std::make_shared<ClientBody>(
            s.stream, buffer, std::move(parser),
            ClientBody::Timeouts{options_.read_timeout, options_.write_timeout}, expects_continue);
        req.body_stream = streamed;
      } else {
        if (expects_continue) {
          http::response<http::empty_body> cont{http::status::continue_, 11};
          s.stream.expires_after(options_.write_timeout);
          auto [cec, cn] = co_await http::async_write(s.stream, cont, use_nothrow);
          if (cec) co_return;
        }
        s.stream.expires_after(options_.read_timeout);
        auto [bec, bn] = co_await http::async_read(s.stream, buffer, parser, use_nothrow);
        if (bec) {
          co_await reject_bad_request(s, bec, true, req.target);
          co_return;
        }
        req.body = std::move(msg.body());
        if (req.body.size() > kStreamChunkBytes) stream_counters().note_buffered(req.body.size());
      }

      HttpResponse answer;
      try {
        answer = co_await handler_.handle(std::move(req));
      } catch (const std::exception& e) {
        spdlog::error("{}: handler failed: {}", options_.name, e.what());
        answer = error_answer(500, "Internal Server Error", req_target);
        answer.outcome = "error";
      }
      // A streamed request body the handler did not read to its end is
      // discarded by closing the connection after the answer.
      bool body_unread = false;
      if (streamed) {
        streamed->detach();
        body_unread = !streamed->done();
        const error_code& bec = streamed->error();
        if (bec) {
          // Gone, or stalled past read_timeout (the timeout closed the
          // socket): nobody to answer.
          if (is_client_gone(bec) || bec == http::error::partial_message) co_return;
          answer = body_error_answer(bec, req_target);
        }
      }
      const bool keep = keep_alive && !s.closing && !body_unread;
      Written w = co_await write_answer(s, answer, version, head, keep);
      s.busy = false;
      if (options_.access_log) {
        auto us =
            std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started);
        options_.access_log->info("{} {} {} {} {} {}B{} {}us", peer, method,
                                  answer.log_target.empty() ? "-" : answer.log_target,
                                  answer.status, answer.outcome.empty() ? "-" : answer.outcome,
                                  w.body_bytes, w.upstream ? " (truncated)" : "", us.count());
      }
      if (w.client) {
        if (!is_client_gone(w.client)) {
          spdlog::warn("{}: write to {} failed: {}", options_.name, peer, w.client.message());
        }
        co_return;
      }
      if (w.upstream) {
        spdlog::warn("{}: the streamed answer to {} ended early: {}", options_.name, peer,
                     w.upstream.message());
        co_return;
      }
      if (body_unread) {
        co_await drain_input(s);
        co_return;
      }
      if (!keep) co_return;
    }
  }

  // Whether the body of the request whose header `parser` read is streamed:
  // large or of unknown length, and the handler takes streams.
  bool streams(const http::request_parser<http::string_body>& parser,
               const HttpRequest& head) const {
    const std::uint64_t threshold = options_.stream_threshold;
    if (threshold == 0) return false;
    auto length = parser.content_length();
    const bool large =
        length ? *length > threshold : parser.chunked() && options_.max_body_bytes > threshold;
    return large && handler_.stream_request_body(head);
  }

  // An answer the server gives itself, in the application's shape
  // (ServerOptions::error_answer; json_error when unset). `target` is the
  // request's, "" before its head was read.
  HttpResponse error_answer(int status, std::string_view reason,
                            std::string_view target = {}) const {
    HttpResponse r = options_.error_answer ? options_.error_answer(status, reason, target)
                                           : json_error(status, reason);
    r.status = status;
    return r;
  }

  // The answer to a request whose streamed body could not be read to its end.
  HttpResponse body_error_answer(const error_code& ec, std::string_view target) const {
    HttpResponse r;
    if (ec == http::error::body_limit) {
      r = error_answer(413,
                       "Request Entity Too Large: body over " +
                           std::to_string(options_.max_body_bytes) + " bytes",
                       target);
    } else {
      r = error_answer(400, "Bad Request: malformed request body (" + ec.message() + ")", target);
    }
    r.outcome = "rejected";
    return r;
  }

  // Writes `answer`: buffered, header only (HEAD), or streamed.
  awaitable<Written> write_answer(SessionState& s, const HttpResponse& answer, unsigned version,
                                  bool head, bool keep_alive) {
    Written w;
    const auto status = static_cast<http::status>(answer.status);
    if (head) {
      http::response<http::empty_body> res{status, version};
      set_head(res, answer);
      res.keep_alive(keep_alive);
      std::uint64_t length = answer.body_view().size();
      if (answer.head_length) {
        length = *answer.head_length;
      } else if (answer.body_stream && answer.body_stream->length()) {
        length = *answer.body_stream->length();
      }
      res.content_length(length);
      s.stream.expires_after(options_.write_timeout);
      auto [ec, n] = co_await http::async_write(s.stream, res, use_nothrow);
      w.client = ec;
      co_return w;
    }
    if (answer.body_stream) co_return co_await write_streamed(s, answer, version, keep_alive);
    // The common case (every cache hit): the head is formatted into the
    // session's reused buffer and goes out with the body in one gather
    // write, without building a Beast message and its field list.
    std::string_view body = answer.body_view();
    format_head(s.head, answer, version, keep_alive, body.size());
    if (body.size() > kStreamChunkBytes) stream_counters().note_buffered(body.size());
    s.stream.expires_after(options_.write_timeout);
    const std::array<net::const_buffer, 2> buffers{net::buffer(s.head), net::buffer(body)};
    auto [ec, n] = co_await net::async_write(s.stream, buffers, use_nothrow);
    w.client = ec;
    w.body_bytes = body.size();
    co_return w;
  }

  // The header, then each chunk of the body as it arrives from its source.
  awaitable<Written> write_streamed(SessionState& s, const HttpResponse& answer, unsigned version,
                                    bool keep_alive) {
    Written w;
    BodyStream& source = *answer.body_stream;
    http::response<http::buffer_body> res{static_cast<http::status>(answer.status), version};
    set_head(res, answer);
    if (auto length = source.length()) {
      res.content_length(*length);
    } else if (version >= 11) {
      res.chunked(true);
    } else {
      keep_alive = false;  // HTTP/1.0 and no length: the close ends the body
    }
    res.keep_alive(keep_alive);
    res.body().data = nullptr;
    res.body().more = true;
    http::response_serializer<http::buffer_body> sr{res};
    s.stream.expires_after(options_.write_timeout);
    auto [hec, hn] = co_await http::async_write_header(s.stream, sr, use_nothrow);
    if (hec) {
      w.client = hec;
      co_return w;
    }
    auto& counters = stream_counters();
    counters.downloads.fetch_add(1, std::memory_order_relaxed);
    StreamChunk chunk;
    for (;;) {
      BodyRead r = co_await source.read_some(chunk.span());
      if (r.error) {
        counters.aborted.fetch_add(1, std::memory_order_relaxed);
        w.upstream = r.error;
        co_return w;
      }
      res.body().data = r.bytes ? chunk.span().data() : nullptr;
      res.body().size = r.bytes;
      res.body().more = r.bytes > 0;
      s.stream.expires_after(options_.write_timeout);
      auto [ec, n] = co_await http::async_write(s.stream, sr, use_nothrow);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        counters.aborted.fetch_add(1, std::memory_order_relaxed);
        w.client = ec;
        co_return w;
      }
      w.body_bytes += r.bytes;
      counters.download_bytes.fetch_add(r.bytes, std::memory_order_relaxed);
      if (r.bytes == 0) co_return w;
    }
  }

  // Reads into `buffer` until it holds a whole request head (it may hold
  // it already: pipelined requests). Returns the head's size, or the read's
  // error: header_limit past max_header_bytes, partial_message when the
  // client closes mid-head.
  awaitable<std::tuple<error_code, std::size_t>> read_head(SessionState& s,
                                                           beast::flat_buffer& buffer) {
    std::size_t scanned = 0;
    for (;;) {
      const std::string_view bytes(static_cast<const char*>(buffer.data().data()), buffer.size());
      const HeadEnd end = find_head_end(bytes, options_.max_header_bytes, scanned);
      if (end.kind == HeadEnd::Kind::kComplete) co_return std::tuple(error_code{}, end.size);
      if (end.kind == HeadEnd::Kind::kTooLarge) {
        co_return std::tuple(error_code(http::error::header_limit), std::size_t{0});
      }
      scanned = bytes.size();
      auto [ec, n] = co_await s.stream.async_read_some(
          buffer.prepare(beast::read_size(buffer, 65536)), use_nothrow);
      if (ec == net::error::eof && buffer.size() > 0) ec = http::error::partial_message;
      if (ec) co_return std::tuple(ec, std::size_t{0});
      if (bytes.empty() && n > 0) s.stream.expires_after(options_.read_timeout);  // the head began
      buffer.commit(n);
    }
  }

  // Answers a request the parser refused (4xx JSON) unless the client simply
  // went away; then the connection closes.
  awaitable<void> reject_bad_request(SessionState& s, const error_code& ec, bool got_bytes,
                                     std::string_view target = {}) {
    if (is_client_gone(ec) || !got_bytes) co_return;
    co_await refuse_request(s, refusal_for(ec, options_.max_body_bytes), ec.message(), target);
  }

  // Answers `refusal` (ServerOptions::error_answer, Connection: close), then
  // closes the connection once the client has stopped sending.
  awaitable<void> refuse_request(SessionState& s, const FramingRefusal& refusal,
                                 std::string_view why, std::string_view target = {}) {
    auto res = edge_error(error_answer(refusal.status, refusal.reason, target), 11);
    s.stream.expires_after(options_.write_timeout);
    auto [wec, wn] = co_await http::async_write(s.stream, res, use_nothrow);
    if (options_.access_log) {
      options_.access_log->info("- - - {} rejected {}{}", refusal.status, why,
                                wec ? " (answer not delivered)" : "");
    }
    if (!wec) co_await drain_input(s);
  }

  // Lingering close: the client may still be sending what we refused (a body
  // over the limit). Closing with unread input makes the kernel reset the
  // connection, and the reset can destroy our answer before the client reads
  // it. So stop sending and discard input until the client closes, for at
  // most a moment and a bounded number of bytes.
  static awaitable<void> drain_input(SessionState& s) {
    error_code ignored;
    s.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    s.stream.expires_after(std::chrono::seconds(2));
    std::array<char, 16384> scratch;
    std::size_t total = 0;
    while (total < (std::size_t{64} << 20)) {
      auto [ec, n] = co_await s.stream.async_read_some(net::buffer(scratch), use_nothrow);
      if (ec) break;
      total += n;
    }
  }

  std::vector<net::io_context*> contexts_;
  std::size_t next_context_ = 0;  // on the acceptor's strand
  ServerOptions options_;
  HttpHandler& handler_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> rejected_{0};
  mutable std::mutex mu_;  // guards sessions_ and next_id_
  std::unordered_map<std::uint64_t, std::shared_ptr<SessionState>> sessions_;
  std::uint64_t next_id_ = 0;
};

Result<std::unique_ptr<HttpServer>> HttpServer::create(net::io_context& ioc, ServerOptions options,
                                                       HttpHandler& handler) {
  return create(std::vector<net::io_context*>{&ioc}, std::move(options), handler);
}

Result<std::unique_ptr<HttpServer>> HttpServer::create(std::vector<net::io_context*> contexts,
                                                       ServerOptions options,
                                                       HttpHandler& handler) {
  if (contexts.empty() || std::find(contexts.begin(), contexts.end(), nullptr) != contexts.end()) {
    return Status::invalid_argument(options.name + ": no I/O context to run on");
  }
  auto impl = std::make_shared<Impl>(std::move(contexts), std::move(options), handler);
  Status s = impl->bind();
  if (!s.ok()) return s;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { impl_->stop_accepting(); }
std::uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::start() { impl_->start(); }
void HttpServer::stop_accepting() { impl_->stop_accepting(); }
void HttpServer::close_idle() { impl_->close_idle(); }
void HttpServer::force_close() { impl_->force_close(); }
std::size_t HttpServer::connections() const { return impl_->connections(); }
std::size_t HttpServer::busy() const { return impl_->busy(); }
std::uint64_t HttpServer::accepted_total() const { return impl_->accepted_total(); }
std::uint64_t HttpServer::rejected_total() const { return impl_->rejected_total(); }

}  // namespace callcache::gateway
