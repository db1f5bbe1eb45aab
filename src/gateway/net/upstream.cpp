// UpstreamClient: pooled HTTP/1.1 keep-alive exchanges over TCP or TLS.
#include "gateway/net/upstream.h"

#include <openssl/ssl.h>

#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "gateway/net/asio.h"
#include "gateway/net/error.h"

namespace callcache::gateway {

Result<Origin> Origin::parse(std::string_view url) {
  Origin o;
  std::string_view rest;
  if (url.starts_with("https://")) {
    o.tls = true;
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    o.tls = false;
    rest = url.substr(7);
  } else {
    return Status::invalid_argument("upstream URL '" + std::string(url) +
                                    "': expected http:// or https://");
  }
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (authority.empty()) {
    return Status::invalid_argument("upstream URL '" + std::string(url) + "': no host");
  }
  std::size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    o.host = std::string(authority.substr(0, colon));
    o.port = std::string(authority.substr(colon + 1));
    if (o.port.empty() || o.port.find_first_not_of("0123456789") != std::string::npos ||
        o.port.size() > 5 || std::stoi(o.port) == 0 || std::stoi(o.port) > 65535) {
      return Status::invalid_argument("upstream URL '" + std::string(url) + "': bad port '" +
                                      o.port + "'");
    }
  } else {
    o.host = std::string(authority);
    o.port = o.tls ? "443" : "80";
  }
  if (o.host.empty()) {
    return Status::invalid_argument("upstream URL '" + std::string(url) + "': no host");
  }
  o.base_path = std::string(path);
  return o;
}

std::string Origin::key() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + port;
}

namespace {

using Clock = std::chrono::steady_clock;

struct Connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  Clock::time_point idle_since{};

  beast::tcp_stream& lowest() { return secure ? secure->next_layer() : *plain; }
};

// Idle keep-alive connections per origin key. Shared (by weak_ptr) with
// streamed answers, which give their connection back when their body ends.
class Pool {
 public:
  Pool(std::size_t max_idle_per_origin, Clock::duration idle_timeout)
      : max_idle_per_origin_(max_idle_per_origin), idle_timeout_(idle_timeout) {}

  std::unique_ptr<Connection> take(const std::string& key) {
    std::vector<std::unique_ptr<Connection>> expired;
    std::unique_ptr<Connection> found;
    {
      std::lock_guard lock(mu_);
      auto it = idle_.find(key);
      if (it == idle_.end()) return nullptr;
      auto now = Clock::now();
      auto& v = it->second;
      while (!v.empty()) {
        auto c = std::move(v.back());
        v.pop_back();
        if (now - c->idle_since < idle_timeout_) {
          found = std::move(c);
          break;
        }
        expired.push_back(std::move(c));
      }
    }
    return found;  // `expired` closes its sockets outside the lock
  }

  void give_back(const std::string& key, std::unique_ptr<Connection> conn) {
    conn->idle_since = Clock::now();
    std::lock_guard lock(mu_);
    auto& v = idle_[key];
    if (v.size() < max_idle_per_origin_) v.push_back(std::move(conn));
  }

  void close_all() {
    std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> drop;
    {
      std::lock_guard lock(mu_);
      drop.swap(idle_);
    }
    for (auto& [k, v] : drop) {
      for (auto& c : v) {
        error_code ignored;
        c->lowest().socket().close(ignored);
      }
    }
  }

  std::size_t size() const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& [k, v] : idle_) n += v.size();
    return n;
  }

 private:
  const std::size_t max_idle_per_origin_;
  const Clock::duration idle_timeout_;
  mutable std::mutex mu_;  // guards idle_
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
};

bool is_hop_by_hop(std::string_view name) {
  return iequals(name, "connection") || iequals(name, "keep-alive") ||
         iequals(name, "transfer-encoding") || iequals(name, "content-length") ||
         iequals(name, "host") || iequals(name, "upgrade") || iequals(name, "te") ||
         iequals(name, "trailer") || iequals(name, "proxy-connection");
}

// Errors after which a request on a reused keep-alive connection is retried
// once on a fresh one: the upstream closed the idle connection before it saw
// our request.
bool is_stale_connection_error(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

error_code classify(const error_code& ec) {
  if (ec.category() == gateway_category()) return ec;
  if (ec == beast::error::timeout) return GatewayError::kUpstreamTimeout;
  if (ec == http::error::body_limit || ec == http::error::buffer_overflow) {
    return GatewayError::kUpstreamBodyTooLarge;
  }
  if (is_stale_connection_error(ec) || ec == http::error::partial_message) {
    return GatewayError::kUpstreamClosed;
  }
  if (ec.category() == http::make_error_code(http::error::partial_message).category()) {
    return GatewayError::kUpstreamProtocol;
  }
  return GatewayError::kUpstreamConnect;
}

// Status and end-to-end headers of an upstream answer.
template <class Body>
void copy_head(const http::response<Body>& msg, HttpResponse& out) {
  out.status = static_cast<int>(msg.result_int());
  out.headers.clear();
  out.content_type.clear();
  for (const auto& f : msg) {
    if (is_hop_by_hop(f.name_string())) continue;
    if (f.name() == http::field::content_type) {
      out.content_type = std::string(f.value());
      continue;
    }
    out.headers.push_back({std::string(f.name_string()), std::string(f.value())});
  }
}

// An upstream answer's body still on its connection (see upstream.h).
class UpstreamBody final : public BodyStream {
 public:
  UpstreamBody(std::unique_ptr<Connection> conn, http::response_parser<http::string_body>&& head,
               std::weak_ptr<Pool> pool, std::string key, bool keep_alive,
               std::chrono::milliseconds read_timeout)
      : conn_(std::move(conn)),
        parser_(std::move(head)),
        pool_(std::move(pool)),
        key_(std::move(key)),
        keep_alive_(keep_alive),
        read_timeout_(read_timeout) {
    if (auto n = parser_.content_length()) length_ = *n;
    // Beast reads at most the buffer's free capacity (at least 512 bytes):
    // room for a whole chunk, or the body would move 512 bytes per read.
    conn_->buffer.reserve(kStreamChunkBytes);
  }

  awaitable<BodyRead> read_some(std::span<char> out) override {
    if (done_) co_return BodyRead{};
    if (!conn_) co_return BodyRead{error_, 0};
    for (;;) {
      auto& body = parser_.get().body();
      body.data = out.data();
      body.size = out.size();
      conn_->lowest().expires_after(read_timeout_);
      error_code ec;
      if (conn_->secure) {  // (not ?: around co_await: GCC 12 miscompiles it)
        std::tie(ec, std::ignore) =
            co_await http::async_read_some(*conn_->secure, conn_->buffer, parser_, use_nothrow);
      } else {
        std::tie(ec, std::ignore) =
            co_await http::async_read_some(*conn_->plain, conn_->buffer, parser_, use_nothrow);
      }
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        error_ = classify(ec);
        conn_.reset();  // mid-body: never reusable
        co_return BodyRead{error_, 0};
      }
      const std::size_t got = out.size() - parser_.get().body().size;
      if (parser_.is_done()) {
        done_ = true;
        conn_->lowest().expires_never();
        conn_->buffer.shrink_to_fit();
        auto pool = pool_.lock();
        if (keep_alive_ && pool) pool->give_back(key_, std::move(conn_));
        conn_.reset();
      }
      if (got > 0 || done_) co_return BodyRead{{}, got};
    }
  }

  std::optional<std::uint64_t> length() const noexcept override { return length_; }
  bool done() const noexcept override { return done_; }

 private:
  std::unique_ptr<Connection> conn_;  // null once done or failed
  http::response_parser<http::buffer_body> parser_;
  std::weak_ptr<Pool> pool_;
  std::string key_;
  bool keep_alive_;
  std::chrono::milliseconds read_timeout_;
  std::optional<std::uint64_t> length_;
  bool done_ = false;
  error_code error_;
};

}  // namespace

class UpstreamClient::Impl {
 public:
  Impl(net::any_io_executor ex, UpstreamOptions options)
      : ex_(std::move(ex)),
        options_(std::move(options)),
        tls_(ssl::context::tls_client),
        pool_(std::make_shared<Pool>(options_.max_idle_per_origin, options_.idle_timeout)) {}

  Status init() {
    error_code ec;
    tls_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                     ec);
    if (options_.verify_peer) {
      tls_.set_verify_mode(ssl::verify_peer, ec);
      if (options_.ca_file.empty()) {
        tls_.set_default_verify_paths(ec);
      } else {
        tls_.load_verify_file(options_.ca_file, ec);
      }
      if (ec) {
        return Status::invalid_argument("upstream.ca_file '" + options_.ca_file +
                                        "': " + ec.message());
      }
    } else {
      tls_.set_verify_mode(ssl::verify_none, ec);
    }
    return Status();
  }

  awaitable<UpstreamResult> send(Origin origin, HttpRequest request, bool stream_answer) {
    auto started = Clock::now();
    UpstreamResult result;
    http::request<http::string_body> req;
    req.version(11);
    req.method_string(request.method);
    req.target(origin.base_path + request.target);
    for (auto& h : request.headers) {
      if (!is_hop_by_hop(h.name)) req.insert(h.name, h.value);
    }
    bool default_port = origin.port == (origin.tls ? "443" : "80");
    req.set(http::field::host, default_port ? origin.host : origin.host + ":" + origin.port);
    req.keep_alive(true);
    Exchange x;
    x.key = origin.key();
    x.head_request = request.method == "HEAD";
    x.stream_answer = stream_answer;
    x.out = &result.response;
    x.body = request.body_stream.get();
    if (!x.body) {
      req.body() = std::move(request.body);
      if (!req.body().empty() || request.method == "POST" || request.method == "PUT") {
        req.prepare_payload();
      }
    }

    for (int attempt = 0; attempt < 2; ++attempt) {
      // A streamed body can be read only once: it never risks a stale
      // pooled connection.
      std::unique_ptr<Connection> conn = x.body ? nullptr : pool_->take(x.key);
      const bool reused = conn != nullptr;
      if (!conn) {
        error_code ec;
        std::tie(ec, conn) = co_await connect(origin);
        if (ec) {
          result.error = ec;
          break;
        }
      }
      x.keep_alive = false;
      x.got_bytes = false;
      error_code ec;
      if (conn->secure) {  // (not ?: around co_await: GCC 12 miscompiles it)
        ec = co_await exchange(*conn->secure, conn, req, x);
      } else {
        ec = co_await exchange(*conn->plain, conn, req, x);
      }
      if (!ec) {
        result.error = {};
        if (x.keep_alive && conn) pool_->give_back(x.key, std::move(conn));
        break;
      }
      result.error = classify(ec);
      if (!(reused && !x.got_bytes && is_stale_connection_error(ec))) break;
    }
    result.latency = Clock::now() - started;
    co_return result;
  }

  void close_idle() { pool_->close_all(); }
  std::size_t idle_connections() const { return pool_->size(); }

 private:
  // One request/answer on one connection.
  struct Exchange {
    std::string key;                // the pool key
    bool head_request = false;      // the answer has no body
    bool stream_answer = false;     // a large answer may stay streaming
    BodyStream* body = nullptr;     // the request body, when streamed
    HttpResponse* out = nullptr;
    // Results: the connection may be pooled; the answer had started.
    bool keep_alive = false;
    bool got_bytes = false;
  };

  awaitable<std::pair<error_code, std::unique_ptr<Connection>>> connect(const Origin& origin) {
    using Out = std::pair<error_code, std::unique_ptr<Connection>>;
    tcp::resolver resolver(ex_);
    auto [rec, endpoints] = co_await resolver.async_resolve(origin.host, origin.port, use_nothrow);
    if (rec) co_return Out{GatewayError::kUpstreamConnect, nullptr};
    auto conn = std::make_unique<Connection>();
    if (origin.tls) {
      conn->secure.emplace(ex_, tls_);
      if (!SSL_set_tlsext_host_name(conn->secure->native_handle(), origin.host.c_str())) {
        co_return Out{GatewayError::kUpstreamConnect, nullptr};
      }
      if (options_.verify_peer) {
        conn->secure->set_verify_callback(ssl::host_name_verification(origin.host));
      }
    } else {
      conn->plain.emplace(ex_);
    }
    beast::tcp_stream& lowest = conn->lowest();
    lowest.expires_after(options_.connect_timeout);
    auto [cec, ep] = co_await lowest.async_connect(endpoints, use_nothrow);
    if (cec) {
      co_return Out{cec == beast::error::timeout ? error_code(GatewayError::kUpstreamTimeout)
                                                 : error_code(GatewayError::kUpstreamConnect),
                    nullptr};
    }
    error_code ignored;
    lowest.socket().set_option(tcp::no_delay(true), ignored);
    if (conn->secure) {
      auto [hec] = co_await conn->secure->async_handshake(ssl::stream_base::client, use_nothrow);
      if (hec) co_return Out{GatewayError::kUpstreamConnect, nullptr};
    }
    co_return Out{error_code{}, std::move(conn)};
  }

  // Sends the request and reads the answer into *x.out. A streamed answer
  // takes `conn` with it (conn is null afterwards).
  template <class Stream>
  awaitable<error_code> exchange(Stream& stream, std::unique_ptr<Connection>& conn,
                                 http::request<http::string_body>& req, Exchange& x) {
    conn->lowest().expires_after(options_.read_timeout);
    if (x.body) {
      error_code wec = co_await write_streamed(stream, *conn, req.base(), *x.body);
      if (wec) co_return wec;
      conn->lowest().expires_after(options_.read_timeout);
    } else {
      auto [wec, wn] = co_await http::async_write(stream, req, use_nothrow);
      if (wec) co_return wec;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.max_response_bytes);
    parser.header_limit(64 * 1024);
    if (x.head_request) parser.skip(true);
    if (x.stream_answer && options_.stream_threshold > 0) {
      // Streamed answers have no size limit: Beast checks a declared
      // Content-Length against the body limit while it parses the header,
      // so the limit is lifted for the header and put back (and checked)
      // only if the answer turns out to be buffered.
      parser.body_limit(boost::none);
      auto [hec, hn] = co_await http::async_read_header(stream, conn->buffer, parser, use_nothrow);
      x.got_bytes = parser.got_some();
      if (hec) co_return hec;
      auto length = parser.content_length();
      parser.body_limit(options_.max_response_bytes);
      if (length && *length > options_.max_response_bytes && *length <= options_.stream_threshold) {
        co_return http::error::body_limit;  // a threshold above the limit: still refused
      }
      if (!parser.is_done() && (!length || *length > options_.stream_threshold)) {
        parser.body_limit(boost::none);
        copy_head(parser.get(), *x.out);
        const bool keep_alive = parser.get().keep_alive();
        x.out->body_stream = std::make_shared<UpstreamBody>(std::move(conn), std::move(parser),
                                                            pool_, x.key, keep_alive,
                                                            options_.read_timeout);
        co_return error_code{};
      }
    }
    auto [rec, rn] = co_await http::async_read(stream, conn->buffer, parser, use_nothrow);
    x.got_bytes = parser.got_some();
    if (rec) co_return rec;
    conn->lowest().expires_never();
    auto& msg = parser.get();
    x.keep_alive = msg.keep_alive();
    copy_head(msg, *x.out);
    if (x.head_request) {
      if (auto n = parser.content_length()) x.out->head_length = *n;
    }
    x.out->body = std::move(msg.body());
    co_return error_code{};
  }

  // Writes `head`, then the body a chunk at a time as `body` yields it
  // (read_timeout per chunk). A body that fails midway is
  // kRequestBodyAborted; the caller drops the connection.
  template <class Stream>
  awaitable<error_code> write_streamed(Stream& stream, Connection& conn,
                                       const http::request_header<>& head, BodyStream& body) {
    http::request<http::buffer_body> req{head};
    if (auto length = body.length()) {
      req.content_length(*length);
    } else {
      req.chunked(true);
    }
    req.body().data = nullptr;
    req.body().more = true;
    http::request_serializer<http::buffer_body> sr{req};
    auto [hec, hn] = co_await http::async_write_header(stream, sr, use_nothrow);
    if (hec) co_return hec;
    StreamChunk chunk;
    for (;;) {
      BodyRead r = co_await body.read_some(chunk.span());
      if (r.error) co_return GatewayError::kRequestBodyAborted;
      req.body().data = r.bytes ? chunk.span().data() : nullptr;
      req.body().size = r.bytes;
      req.body().more = r.bytes > 0;
      conn.lowest().expires_after(options_.read_timeout);
      auto [wec, wn] = co_await http::async_write(stream, sr, use_nothrow);
      if (wec == http::error::need_buffer) wec = {};
      if (wec) co_return wec;
      if (r.bytes == 0) co_return error_code{};
    }
  }

  net::any_io_executor ex_;
  UpstreamOptions options_;
  ssl::context tls_;
  std::shared_ptr<Pool> pool_;
};

Result<std::unique_ptr<UpstreamClient>> UpstreamClient::create(net::any_io_executor executor,
                                                               UpstreamOptions options) {
  auto impl = std::make_unique<Impl>(std::move(executor), std::move(options));
  Status s = impl->init();
  if (!s.ok()) return s;
  return std::unique_ptr<UpstreamClient>(new UpstreamClient(std::move(impl)));
}

UpstreamClient::UpstreamClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UpstreamClient::~UpstreamClient() = default;

awaitable<UpstreamResult> UpstreamClient::send(const Origin& origin, HttpRequest request) {
  return impl_->send(origin, std::move(request), false);
}

awaitable<UpstreamResult> UpstreamClient::send_streaming(const Origin& origin,
                                                         HttpRequest request) {
  return impl_->send(origin, std::move(request), true);
}

void UpstreamClient::close_idle() { impl_->close_idle(); }
std::size_t UpstreamClient::idle_connections() const { return impl_->idle_connections(); }

}  // namespace callcache::gateway
