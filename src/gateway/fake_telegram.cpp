// FakeTelegram: a small Bot API look-alike over real HTTP for tests/benches.
#include "gateway/fake_telegram.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "gateway/asio.h"

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

bool is_sending_method(std::string_view m) {
  return m.starts_with("send") || m == "copyMessage" || m == "forwardMessage";
}

struct Answer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  int retry_after = -1;
  bool drop = false;
};

Answer error_answer(int status, std::string_view description, int retry_after = -1) {
  Json j = {{"ok", false}, {"error_code", status}, {"description", description}};
  if (retry_after >= 0) j["parameters"] = {{"retry_after", retry_after}};
  return {status, j.dump(), "application/json", retry_after, false};
}

Answer ok_answer(Json result) {
  Json j = {{"ok", true}, {"result", std::move(result)}};
  return {200, j.dump(), "application/json", -1, false};
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

}  // namespace

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
  void fail_next(std::string method, int count, FakeFault fault) {
    std::lock_guard lock(mu_);
    for (int i = 0; i < count; ++i) faults_[method].push_back(fault);
  }
  void enforce_chat_interval(std::chrono::milliseconds interval) {
    std::lock_guard lock(mu_);
    chat_interval_ = interval;
  }

 private:
  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(use_nothrow);
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
        continue;
      }
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
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_nothrow);
      if (ec) co_return;
      auto& req = parser.get();
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
      http::response<http::string_body> res{static_cast<http::status>(a.status), 11};
      res.set(http::field::server, "fake-telegram");
      res.set(http::field::content_type, a.content_type);
      if (a.retry_after >= 0) res.set(http::field::retry_after, std::to_string(a.retry_after));
      res.keep_alive(req.keep_alive());
      res.body() = std::move(a.body);
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
      if (wec || !res.keep_alive()) co_return;
    }
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
    std::string method = slash == std::string_view::npos ? "" : std::string(path.substr(slash + 1));
    std::string counted = file ? "file" : method;

    std::lock_guard lock(mu_);
    latency = latency_;
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
      return {200, "FAKEFILE:" + std::string(path.substr(slash + 1)), "application/octet-stream"};
    }
    Params params;
    parse_urlencoded(query, params);
    std::string_view ctype = req[http::field::content_type];
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

  mutable std::mutex mu_;  // guards everything below
  std::map<std::string, std::uint64_t, std::less<>> calls_;
  std::uint64_t answered_429_ = 0;
  std::chrono::milliseconds latency_{0};
  std::chrono::milliseconds chat_interval_{0};
  std::map<std::string, std::deque<FakeFault>, std::less<>> faults_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_send_;
  std::map<std::string, std::string> titles_;
  std::map<std::string, std::string> commands_;
  std::int64_t message_id_ = 0;
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
void FakeTelegram::reset_counts() { impl_->reset_counts(); }
void FakeTelegram::set_latency(std::chrono::milliseconds l) { impl_->set_latency(l); }
void FakeTelegram::fail_next(std::string m, int n, FakeFault f) {
  impl_->fail_next(std::move(m), n, std::move(f));
}
void FakeTelegram::enforce_chat_interval(std::chrono::milliseconds i) {
  impl_->enforce_chat_interval(i);
}
void FakeTelegram::stop() { impl_->stop(); }

}  // namespace callcache::gateway
