// A fake Telegram Bot API server for tests and benchmarks: real HTTP/1.1 on
// 127.0.0.1 (port 0 = any free port), keep-alive, plausible JSON answers for
// getMe, getChat, getChatMember(s), getChatMemberCount,
// getChatAdministrators, getFile, getUpdates, sendMessage, setChatTitle,
// setMyCommands/getMyCommands ... and /file/bot<token>/<path> downloads.
//
// It counts calls per method, can add latency, and can be told to fail the
// next calls of a method (Bot API error, 5xx, 429 with retry_after, or a
// dropped connection). It can also enforce a per-chat minimum interval for
// sending methods the way Telegram does, answering 429 when a client sends
// too fast (and counting those 429s).
//
// Thread-safety: every public member may be called from any thread while the
// server runs; state is guarded by one mutex. The server runs its own I/O
// threads; the destructor stops them and closes every connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "callcache/status.h"

namespace callcache::gateway {

struct FakeTelegramOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = pick a free port
  unsigned threads = 1;
  std::chrono::milliseconds latency{0};
};

// What a scripted failure answers.
struct FakeFault {
  enum class Kind { kBotApiError, kServerError, kTooManyRequests, kDropConnection };
  Kind kind = Kind::kBotApiError;
  int status = 400;                      // kBotApiError / kServerError
  std::string description = "Bad Request: chat not found";
  int retry_after = 1;                   // kTooManyRequests
};

class FakeTelegram {
 public:
  // Binds and starts serving. Errors: kIoError naming the address if the
  // bind fails.
  static Result<std::unique_ptr<FakeTelegram>> start(FakeTelegramOptions options = {});
  ~FakeTelegram();
  FakeTelegram(const FakeTelegram&) = delete;
  FakeTelegram& operator=(const FakeTelegram&) = delete;

  std::uint16_t port() const;
  // "http://127.0.0.1:<port>"
  std::string base_url() const;

  // Calls answered (or failed) per Bot API method, and in total (downloads
  // count as method "file").
  std::uint64_t calls(std::string_view method) const;
  std::uint64_t total_calls() const;
  // 429s answered (scripted and rate-enforced).
  std::uint64_t answered_429() const;
  // Highest number of requests being handled at once so far.
  std::uint64_t max_concurrent() const;
  void reset_counts();

  void set_latency(std::chrono::milliseconds latency);
  // The next `count` calls of `method` ("*" = any method) answer `fault`.
  void fail_next(std::string method, int count, FakeFault fault);
  // Sending methods (sendMessage, sendPhoto, ...) to one chat closer than
  // `interval` apart get 429 with retry_after (0 = not enforced).
  void enforce_chat_interval(std::chrono::milliseconds interval);

  // Stops accepting and closes connections. Idempotent.
  void stop();

  class Impl;

 private:
  explicit FakeTelegram(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace callcache::gateway
