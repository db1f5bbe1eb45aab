// FakeTelegram: a small Bot API look-alike over real HTTP for tests/benches.
#include "fake_telegram.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cctype>
#include <deque>
#include <map>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "gateway/net/asio.h"

namespace callcache::gateway {
namespace {

using Json = nlohmann::json;
using Params = std::map<std::string, std::string, std::less<>>;

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void parse_urlencoded(std::string_view s, Params& out) {
  while (!s.empty()) {
    std::size_t amp = s.find('&');
    std::string_view pair = s.substr(0, amp);
    std::size_t eq = pair.find('=');
    if (!pair.empty()) {
      try {
        out[url_decode(pair.substr(0, eq))] =
            eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
      } catch (...) {
      }
    }
    if (amp == std::string_view::npos) break;
    s.remove_prefix(amp + 1);
  }
}

// Method names are case-insensitive, as at Telegram: a known method is
// answered (and counted) under its documented spelling, whatever the
// client's; an unknown one keeps the client's spelling.
std::string canonical_method(std::string_view m) {
  static constexpr std::string_view kKnown[] = {"getMe",
                                                "getChat",
                                                "setChatTitle",
                                                "getChatMember",
                                                "getChatMemberCount",
                                                "getChatAdministrators",
                                                "getFile",
                                                "getUpdates",
                                                "getMyCommands",
                                                "setMyCommands",
                                                "getWebhookInfo",
                                                "sendMessage",
                                                "sendDocument",
                                                "sendPhoto",
                                                "sendChatAction",
                                                "copyMessage",
                                                "forwardMessage",
                                                "banChatMember",
                                                "deleteMessage"};
  for (std::string_view k : kKnown) {
    if (k.size() != m.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < k.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(k[i])) ==
             std::tolower(static_cast<unsigned char>(m[i]));
    }
    if (same) return std::string(k);
  }
  return std::string(m);
}

bool is_sending_method(std::string_view m) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  const std::string l = lower(m);
  return l.starts_with("send") || l == "copymessage" || l == "forwardmessage";
}

struct Answer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  int retry_after = -1;
  bool drop = false;
  // A large download of this many bytes (written by send_large).
  std::optional<std::uint64_t> large;
  bool chunked = false;
};

Answer error_answer(int status, std::string_view description, int retry_after = -1) {
  Json j = {{"ok", false}, {"error_code", status}, {"description", description}};
  if (retry_after >= 0) j["parameters"] = {{"retry_after", retry_after}};
  Answer a;
  a.status = status;
  a.body = j.dump();
  a.retry_after = retry_after;
  return a;
}

Answer ok_answer(Json result) {
  Json j = {{"ok", true}, {"result", std::move(result)}};
  Answer a;
  a.body = j.dump();
  return a;
}

Json chat_id_json(const std::string& id) {
  if (!id.empty() && id[0] != '@') {
    try {
      return std::stoll(id);
    } catch (...) {
    }
  }
  return id;
}

std::string hex64(std::uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = kHex[v & 15];
  return out;
}

// The boundary parameter of a multipart/form-data content type, or "".
std::string multipart_boundary(std::string_view content_type) {
  std::size_t p = content_type.find("boundary=");
  if (p == std::string_view::npos) return "";
  std::string_view b = content_type.substr(p + 9);
  b = b.substr(0, b.find(';'));
  if (b.size() >= 2 && b.front() == '"' && b.back() == '"') b = b.substr(1, b.size() - 2);
  return std::string(b);
}

// The plain fields (parts without a filename) that lie wholly inside `body`,
// the first bytes of a multipart body.
void parse_multipart_fields(std::string_view body, const std::string& boundary, Params& out) {
  if (boundary.empty()) return;
  const std::string delimiter = "--" + boundary;
  std::size_t pos = body.find(delimiter);
  while (pos != std::string_view::npos) {
    std::size_t head = pos + delimiter.size() + 2;  // past "--b\r\n"
    std::size_t head_end = body.find("\r\n\r\n", head);
    std::size_t next = body.find("\r\n" + delimiter, head);
    if (head_end == std::string_view::npos || next == std::string_view::npos || head_end > next) {
      return;
    }
    std::string_view headers = body.substr(head, head_end - head);
    std::size_t name = headers.find("name=\"");
    if (name != std::string_view::npos && headers.find("filename=") == std::string_view::npos) {
      std::size_t name_end = headers.find('"', name + 6);
      if (name_end != std::string_view::npos) {
        out[std::string(headers.substr(name + 6, name_end - name - 6))] =
            std::string(body.substr(head_end + 4, next - head_end - 4));
      }
    }
    pos = next + 2;
  }
}

constexpr std::size_t kChunk = 64 * 1024;

}  // namespace

std::uint64_t fnv1a64(std::string_view data, std::uint64_t h) noexcept {
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

namespace {
std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

char fake_download_byte(std::uint64_t offset) noexcept {
  return static_cast<char>(splitmix64(offset / 8) >> (8 * (offset % 8)));
}

void fill_fake_download(std::uint64_t offset, char* out, std::size_t size) noexcept {
  std::size_t i = 0;
  while (i < size) {
    std::uint64_t word = splitmix64((offset + i) / 8);
    for (unsigned b = static_cast<unsigned>((offset + i) % 8); b < 8 && i < size; ++b, ++i) {
      out[i] = static_cast<char>(word >> (8 * b));
    }
  }
}

class FakeTelegram::Impl {
 public:
  explicit Impl(FakeTelegramOptions o) : options_(std::move(o)), acceptor_(ioc_) {}

  Status start() {
    error_code ec;
    tcp::endpoint ep(net::ip::make_address(options_.address, ec), options_.port);
    if (ec) return Status::invalid_argument("fake telegram address '" + options_.address + "'");
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return Status::io_error("fake telegram bind " + options_.address + ": " + ec.message());
    port_ = acceptor_.local_endpoint(ec).port();
    latency_ = options_.latency;
    net::co_spawn(ioc_, accept_loop(), net::detached);
    for (unsigned i = 0; i < std::max(1u, options_.threads); ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    return Status();
  }

  void stop() {
    if (stopped_.exchange(true)) return;
    net::post(ioc_, [this] {
      error_code ignored;
      acceptor_.close(ignored);
    });
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    error_code ignored;
    acceptor_.close(ignored);  // the posted close may not have run before stop()
  }

  ~Impl() { stop(); }

  std::uint16_t port() const { return port_; }

  std::uint64_t calls(std::string_view method) const {
    std::lock_guard lock(mu_);
    auto it = calls_.find(method);
    return it == calls_.end() ? 0 : it->second;
  }
  std::uint64_t total_calls() const {
    std::lock_guard lock(mu_);
    std::uint64_t n = 0;
    for (const auto& [k, v] : calls_) n += v;
    return n;
  }
  std::uint64_t answered_429() const {
    std::lock_guard lock(mu_);
    return answered_429_;
  }
  std::uint64_t max_concurrent() const { return max_concurrent_.load(); }
  std::uint64_t connections_accepted() const { return accepted_.load(); }
  void reset_counts() {
    std::lock_guard lock(mu_);
    calls_.clear();
    answered_429_ = 0;
    max_concurrent_ = 0;
  }
  void set_latency(std::chrono::milliseconds l) {
    std::lock_guard lock(mu_);
    latency_ = l;
  }
  void set_method_latency(std::string method, std::chrono::milliseconds l) {
    std::lock_guard lock(mu_);
    method_latency_[std::move(method)] = l;
  }
  void fail_next(std::string method, int count, FakeFault fault) {
    std::lock_guard lock(mu_);
    for (int i = 0; i < count; ++i) faults_[method].push_back(fault);
  }
  void enforce_chat_interval(std::chrono::milliseconds interval) {
    std::lock_guard lock(mu_);
    chat_interval_ = interval;
  }
  FakeUpload last_upload() const {
    std::lock_guard lock(mu_);
    return last_upload_;
  }
  std::uint64_t upload_bytes_received() const {
    std::lock_guard lock(mu_);
    return upload_bytes_;
  }
  bool wait_upload_bytes(std::uint64_t bytes, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return progress_.wait_for(lock, timeout, [&] { return upload_bytes_ >= bytes; });
  }
  bool wait_upload_ended(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return progress_.wait_for(lock, timeout, [&] { return last_upload_.ended; });
  }
  std::uint64_t download_bytes_sent() const { return download_bytes_.load(); }
  bool wait_download_bytes(std::uint64_t bytes, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return progress_.wait_for(lock, timeout, [&] { return download_bytes_.load() >= bytes; });
  }
  void hold_downloads_after(std::uint64_t bytes) {
    released_ = false;
    hold_after_ = bytes;
  }
  void release_downloads() { released_ = true; }
  void set_download_chunk_delay(std::chrono::milliseconds delay) {
    chunk_delay_ms_ = delay.count();
  }
  void drop_next_download_after(std::uint64_t bytes) {
    std::lock_guard lock(mu_);
    drop_next_after_ = bytes;
  }

 private:
  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(use_nothrow);
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
        continue;
      }
      ++accepted_;
      net::co_spawn(acceptor_.get_executor(), session(std::move(sock)), net::detached);
    }
  }

  awaitable<void> session(tcp::socket sock) {
    beast::tcp_stream stream(std::move(sock));
    error_code ignored;
    stream.socket().set_option(tcp::no_delay(true), ignored);
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(128ull << 20);
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_nothrow);
      if (ec) co_return;
      http::request<http::string_body> req;
      if (parser.get()[http::field::content_type].starts_with("multipart/form-data")) {
        std::string method(parser.get().target());
        method = method.substr(0, method.find('?'));
        method = canonical_method(method.substr(method.rfind('/') + 1));
        bool complete = co_await receive_upload(stream, buffer, std::move(parser), method, req);
        if (!complete) co_return;
      } else {
        auto [bec, bn] = co_await http::async_read(stream, buffer, parser, use_nothrow);
        if (bec) co_return;
        req = parser.release();
      }
      std::uint64_t now_active = ++active_;
      std::uint64_t prev = max_concurrent_.load();
      while (now_active > prev && !max_concurrent_.compare_exchange_weak(prev, now_active)) {
      }
      std::chrono::milliseconds latency;
      Answer a = answer(req, latency);
      if (latency.count() > 0) {
        net::steady_timer timer(stream.get_executor(), latency);
        co_await timer.async_wait(use_nothrow);
      }
      --active_;
      if (a.drop) {
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.socket().close(ignored);
        co_return;
      }
      if (a.large) {
        if (!co_await send_large(stream, req, *a.large, a.chunked)) co_return;
        if (!req.keep_alive()) co_return;
        continue;
      }
      http::response<http::string_body> res{static_cast<http::status>(a.status), 11};
      res.set(http::field::server, "fake-telegram");
      res.set(http::field::content_type, a.content_type);
      if (a.retry_after >= 0) res.set(http::field::retry_after, std::to_string(a.retry_after));
      res.keep_alive(req.keep_alive());
      res.body() = std::move(a.body);
      res.prepare_payload();
      if (req.method() == http::verb::head) {  // the length, not the body
        http::response<http::empty_body> head_res{res.base()};
        auto [wec, wn] = co_await http::async_write(stream, head_res, use_nothrow);
        if (wec || !res.keep_alive()) co_return;
        continue;
      }
      auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
      if (wec || !res.keep_alive()) co_return;
    }
  }

  // Reads a multipart body a chunk at a time: counts it, checksums it, keeps
  // its first 64 KiB (for form fields) as `req`'s body. False when the body
  // ended early (the upload is recorded as incomplete).
  awaitable<bool> receive_upload(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                 http::request_parser<http::string_body>&& head,
                                 std::string method, http::request<http::string_body>& req) {
    http::request_parser<http::buffer_body> parser{std::move(head)};
    {
      std::lock_guard lock(mu_);
      last_upload_ = FakeUpload{method, 0, kFnv1aOffset, false, false};
    }
    std::string prefix;
    std::vector<char> chunk(kChunk);
    buffer.reserve(kChunk);  // Beast reads at most the free capacity
    bool complete = true;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, use_nothrow);
      if (ec == http::error::need_buffer) ec = {};
      const std::size_t got = chunk.size() - parser.get().body().size;
      std::string_view data(chunk.data(), got);
      if (prefix.size() < kChunk) prefix.append(data.substr(0, kChunk - prefix.size()));
      {
        std::lock_guard lock(mu_);
        last_upload_.bytes += got;
        last_upload_.checksum = fnv1a64(data, last_upload_.checksum);
        upload_bytes_ += got;
      }
      if (got > 0) progress_.notify_all();
      if (ec) {
        complete = false;
        break;
      }
    }
    {
      std::lock_guard lock(mu_);
      last_upload_.ended = true;
      last_upload_.complete = complete;
    }
    progress_.notify_all();
    req = http::request<http::string_body>(std::move(parser.get().base()));
    req.body() = std::move(prefix);
    co_return complete;
  }

  // Writes a large download of `size` bytes (see fake_telegram.h). False
  // when the connection is gone (or was dropped on purpose).
  awaitable<bool> send_large(beast::tcp_stream& stream, const http::request<http::string_body>& req,
                             std::uint64_t size, bool chunked) {
    http::response<http::buffer_body> res{http::status::ok, 11};
    res.set(http::field::server, "fake-telegram");
    res.set(http::field::content_type, "application/octet-stream");
    res.keep_alive(req.keep_alive());
    if (chunked) {
      res.chunked(true);
    } else {
      res.content_length(size);
    }
    res.body().data = nullptr;
    res.body().more = true;
    http::response_serializer<http::buffer_body> sr{res};
    auto [hec, hn] = co_await http::async_write_header(stream, sr, use_nothrow);
    if (hec) co_return false;
    if (req.method() == http::verb::head) co_return true;
    std::optional<std::uint64_t> drop_after;
    {
      std::lock_guard lock(mu_);
      drop_after.swap(drop_next_after_);
    }
    std::vector<char> chunk(kChunk);
    std::uint64_t offset = 0;
    while (offset < size) {
      const std::uint64_t hold = hold_after_.load();
      while (hold > 0 && offset >= hold && !released_.load() && !stopped_.load()) {
        net::steady_timer t(stream.get_executor(), std::chrono::milliseconds(5));
        co_await t.async_wait(use_nothrow);
      }
      std::uint64_t n = std::min<std::uint64_t>(kChunk, size - offset);
      if (hold > offset && !released_.load()) n = std::min(n, hold - offset);
      const bool drop = drop_after && offset + n >= *drop_after;
      if (drop) n = *drop_after - offset;
      fill_fake_download(offset, chunk.data(), static_cast<std::size_t>(n));
      res.body().data = chunk.data();
      res.body().size = static_cast<std::size_t>(n);
      res.body().more = true;
      auto [ec, wn] = co_await http::async_write(stream, sr, use_nothrow);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return false;
      offset += n;
      {
        std::lock_guard lock(mu_);  // with the waiters' predicate check: no lost wake-up
        download_bytes_.fetch_add(n);
      }
      progress_.notify_all();
      if (drop) {
        error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.socket().close(ignored);
        co_return false;
      }
      std::chrono::milliseconds delay{chunk_delay_ms_.load()};
      if (delay.count() > 0) {
        net::steady_timer t(stream.get_executor(), delay);
        co_await t.async_wait(use_nothrow);
      }
    }
    res.body().data = nullptr;
    res.body().size = 0;
    res.body().more = false;
    auto [ec, wn] = co_await http::async_write(stream, sr, use_nothrow);
    co_return !ec;
  }

  // Decides the answer to one request (counts it, applies faults and the
  // per-chat interval) under the lock; returns the latency to apply.
  Answer answer(const http::request<http::string_body>& req, std::chrono::milliseconds& latency) {
    std::string_view target = req.target();
    // Clients percent-encode paths (python-telegram-bot sends %3A for the
    // token's ':' in file URLs); the Bot API decodes them.
    std::string decoded_path;
    try {
      decoded_path = url_decode(target.substr(0, target.find('?')));
    } catch (...) {
      decoded_path = std::string(target.substr(0, target.find('?')));
    }
    std::string_view path = decoded_path;
    std::string_view query =
        target.find('?') == std::string_view::npos ? "" : target.substr(target.find('?') + 1);
    bool file = false;
    if (path.starts_with("/file/bot")) {
      file = true;
      path.remove_prefix(9);
    } else if (path.starts_with("/bot")) {
      path.remove_prefix(4);
    } else {
      std::lock_guard lock(mu_);
      latency = latency_;
      return error_answer(404, "Not Found");
    }
    std::size_t slash = path.find('/');
    std::string token(path.substr(0, slash));
    std::string method =
        slash == std::string_view::npos ? "" : canonical_method(path.substr(slash + 1));
    std::string counted = file ? "file" : method;

    std::lock_guard lock(mu_);
    latency = latency_;
    if (auto it = method_latency_.find(counted); it != method_latency_.end()) latency = it->second;
    ++calls_[counted];
    for (const char* key : {counted.c_str(), "*"}) {
      auto it = faults_.find(key);
      if (it != faults_.end() && !it->second.empty()) {
        FakeFault f = it->second.front();
        it->second.pop_front();
        switch (f.kind) {
          case FakeFault::Kind::kBotApiError: return error_answer(f.status, f.description);
          case FakeFault::Kind::kServerError: return error_answer(f.status, f.description);
          case FakeFault::Kind::kTooManyRequests:
            ++answered_429_;
            return error_answer(429, "Too Many Requests: retry after " +
                                         std::to_string(f.retry_after), f.retry_after);
          case FakeFault::Kind::kDropConnection: {
            Answer a;
            a.drop = true;
            return a;
          }
        }
      }
    }
    std::size_t colon = token.find(':');
    if (colon == std::string::npos || colon == 0 ||
        token.find_first_not_of("0123456789") != colon) {
      return error_answer(401, "Unauthorized");
    }
    std::int64_t bot_id = std::stoll(token.substr(0, colon));
    if (file) {
      std::string_view file_path = path.substr(slash + 1);
      if (file_path.starts_with("large/")) {
        Answer a;
        try {
          a.large = std::stoull(std::string(file_path.substr(6)));
        } catch (...) {
          return error_answer(404, "Not Found: bad large file size");
        }
        a.chunked = query.find("chunked=1") != std::string_view::npos;
        return a;
      }
      Answer a;
      a.body = "FAKEFILE:" + std::string(file_path);
      a.content_type = "application/octet-stream";
      return a;
    }
    Params params;
    parse_urlencoded(query, params);
    std::string_view ctype = req[http::field::content_type];
    if (ctype.starts_with("multipart/form-data")) {
      parse_multipart_fields(req.body(), multipart_boundary(ctype), params);
      Answer a = method_answer(bot_id, token, method, params);
      if (a.status == 200 && is_sending_method(method)) {
        Json j = Json::parse(a.body);
        j["result"]["document"] = {{"file_id", "up" + std::to_string(message_id_)},
                                   {"file_unique_id", hex64(last_upload_.checksum)},
                                   {"file_size", last_upload_.bytes}};
        a.body = j.dump();
      }
      return a;
    }
    if (ctype.starts_with("application/json")) {
      Json body = Json::parse(req.body(), nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        return error_answer(400, "Bad Request: can't parse JSON object");
      }
      for (auto& [k, v] : body.items()) params[k] = v.is_string() ? v.get<std::string>() : v.dump();
    } else if (ctype.starts_with("application/x-www-form-urlencoded")) {
      parse_urlencoded(req.body(), params);
    }
    return method_answer(bot_id, token, method, params);
  }

  // REQUIRES: mu_ held.
  Answer method_answer(std::int64_t bot_id, const std::string& token, const std::string& method,
                       const Params& params) {
    auto param = [&](const char* k) {
      auto it = params.find(k);
      return it == params.end() ? std::string() : it->second;
    };
    const std::string chat = param("chat_id");
    if (is_sending_method(method)) {
      if (chat.empty()) return error_answer(400, "Bad Request: chat_id is empty");
      if (chat_interval_.count() > 0) {
        auto now = std::chrono::steady_clock::now();
        auto [it, fresh] = last_send_.try_emplace(token + "/" + chat, now);
        if (!fresh) {
          auto since = now - it->second;
          if (since < chat_interval_) {
            ++answered_429_;
            auto left = std::chrono::duration_cast<std::chrono::seconds>(
                chat_interval_ - since + std::chrono::milliseconds(999));
            return error_answer(429, "Too Many Requests: retry after " +
                                         std::to_string(left.count()),
                                static_cast<int>(left.count()));
          }
          it->second = now;
        }
      }
      Json msg = {{"message_id", ++message_id_},
                  {"date", 1700000000 + message_id_},
                  {"chat", {{"id", chat_id_json(chat)}, {"type", "private"}, {"first_name", "U"}}},
                  {"from", {{"id", bot_id}, {"is_bot", true}, {"first_name", "Fake"}}}};
      if (method == "sendMessage") msg["text"] = param("text");
      return ok_answer(std::move(msg));
    }
    if (method == "getMe") {
      return ok_answer({{"id", bot_id},
                        {"is_bot", true},
                        {"first_name", "Fake"},
                        {"username", "fake_" + std::to_string(bot_id) + "_bot"},
                        {"can_join_groups", true},
                        {"can_read_all_group_messages", false},
                        {"supports_inline_queries", false}});
    }
    if (method == "getChat") {
      if (chat.empty()) return error_answer(400, "Bad Request: chat_id is empty");
      auto it = titles_.find(token + "/" + chat);
      std::string title = it == titles_.end() ? "Chat " + chat : it->second;
      return ok_answer({{"id", chat_id_json(chat)}, {"type", "supergroup"}, {"title", title}});
    }
    if (method == "setChatTitle") {
      if (chat.empty()) return error_answer(400, "Bad Request: chat_id is empty");
      titles_[token + "/" + chat] = param("title");
      return ok_answer(true);
    }
    if (method == "getChatMember") {
      std::string user = param("user_id");
      if (chat.empty() || user.empty()) return error_answer(400, "Bad Request: invalid user_id");
      return ok_answer({{"user", {{"id", chat_id_json(user)}, {"is_bot", false},
                                  {"first_name", "User " + user}}},
                        {"status", "member"}});
    }
    if (method == "getChatMemberCount") return ok_answer(42);
    if (method == "getChatAdministrators") {
      return ok_answer(Json::array({{{"user", {{"id", 1}, {"is_bot", false}, {"first_name", "Own"}}},
                                     {"status", "creator"},
                                     {"is_anonymous", false}}}));
    }
    if (method == "getFile") {
      std::string id = param("file_id");
      if (id.empty()) return error_answer(400, "Bad Request: file_id is empty");
      return ok_answer({{"file_id", id},
                        {"file_unique_id", "u" + id},
                        {"file_size", 16},
                        {"file_path", "documents/" + id + ".txt"}});
    }
    if (method == "getUpdates") return ok_answer(Json::array());
    if (method == "getMyCommands") {
      auto it = commands_.find(token);
      return ok_answer(it == commands_.end() ? Json::array() : Json::parse(it->second));
    }
    if (method == "setMyCommands") {
      Json c = Json::parse(param("commands"), nullptr, false);
      commands_[token] = c.is_discarded() ? "[]" : c.dump();
      return ok_answer(true);
    }
    if (method == "getWebhookInfo") {
      return ok_answer({{"url", ""}, {"has_custom_certificate", false}, {"pending_update_count", 0}});
    }
    if (method.empty() || method.find_first_not_of(
                              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") !=
                              std::string::npos) {
      return error_answer(404, "Not Found");
    }
    return ok_answer(true);
  }

  FakeTelegramOptions options_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> active_{0};
  std::atomic<std::uint64_t> max_concurrent_{0};
  std::atomic<std::uint64_t> download_bytes_{0};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> hold_after_{0};
  std::atomic<bool> released_{false};
  std::atomic<std::int64_t> chunk_delay_ms_{0};
  // Signalled (with mu_) when upload or download bytes move.
  mutable std::condition_variable progress_;

  mutable std::mutex mu_;  // guards everything below
  std::map<std::string, std::uint64_t, std::less<>> calls_;
  std::uint64_t answered_429_ = 0;
  std::chrono::milliseconds latency_{0};
  std::map<std::string, std::chrono::milliseconds, std::less<>> method_latency_;
  std::chrono::milliseconds chat_interval_{0};
  std::map<std::string, std::deque<FakeFault>, std::less<>> faults_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_send_;
  std::map<std::string, std::string> titles_;
  std::map<std::string, std::string> commands_;
  std::int64_t message_id_ = 0;
  FakeUpload last_upload_;
  std::uint64_t upload_bytes_ = 0;
  std::optional<std::uint64_t> drop_next_after_;
};

Result<std::unique_ptr<FakeTelegram>> FakeTelegram::start(FakeTelegramOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  Status s = impl->start();
  if (!s.ok()) return s;
  return std::unique_ptr<FakeTelegram>(new FakeTelegram(std::move(impl)));
}

FakeTelegram::FakeTelegram(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FakeTelegram::~FakeTelegram() = default;
std::uint16_t FakeTelegram::port() const { return impl_->port(); }
std::string FakeTelegram::base_url() const {
  return "http://127.0.0.1:" + std::to_string(impl_->port());
}
std::uint64_t FakeTelegram::calls(std::string_view m) const { return impl_->calls(m); }
std::uint64_t FakeTelegram::total_calls() const { return impl_->total_calls(); }
std::uint64_t FakeTelegram::answered_429() const { return impl_->answered_429(); }
std::uint64_t FakeTelegram::max_concurrent() const { return impl_->max_concurrent(); }
std::uint64_t FakeTelegram::connections_accepted() const {
  return impl_->connections_accepted();
}
void FakeTelegram::reset_counts() { impl_->reset_counts(); }
void FakeTelegram::set_latency(std::chrono::milliseconds l) { impl_->set_latency(l); }
void FakeTelegram::set_method_latency(std::string method, std::chrono::milliseconds l) {
  impl_->set_method_latency(std::move(method), l);
}
void FakeTelegram::fail_next(std::string m, int n, FakeFault f) {
  impl_->fail_next(std::move(m), n, std::move(f));
}
void FakeTelegram::enforce_chat_interval(std::chrono::milliseconds i) {
  impl_->enforce_chat_interval(i);
}
FakeUpload FakeTelegram::last_upload() const { return impl_->last_upload(); }
std::uint64_t FakeTelegram::upload_bytes_received() const { return impl_->upload_bytes_received(); }
bool FakeTelegram::wait_upload_bytes(std::uint64_t b, std::chrono::milliseconds t) const {
  return impl_->wait_upload_bytes(b, t);
}
bool FakeTelegram::wait_upload_ended(std::chrono::milliseconds t) const {
  return impl_->wait_upload_ended(t);
}
std::uint64_t FakeTelegram::download_bytes_sent() const { return impl_->download_bytes_sent(); }
bool FakeTelegram::wait_download_bytes(std::uint64_t b, std::chrono::milliseconds t) const {
  return impl_->wait_download_bytes(b, t);
}
void FakeTelegram::hold_downloads_after(std::uint64_t b) { impl_->hold_downloads_after(b); }
void FakeTelegram::release_downloads() { impl_->release_downloads(); }
void FakeTelegram::set_download_chunk_delay(std::chrono::milliseconds d) {
  impl_->set_download_chunk_delay(d);
}
void FakeTelegram::drop_next_download_after(std::uint64_t b) { impl_->drop_next_download_after(b); }
void FakeTelegram::stop() { impl_->stop(); }

}  // namespace callcache::gateway
