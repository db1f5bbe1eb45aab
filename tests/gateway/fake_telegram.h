// A fake Telegram Bot API server for tests and benchmarks: real HTTP/1.1 on
// 127.0.0.1 (port 0 = any free port), keep-alive, plausible JSON answers for
// getMe, getChat, getChatMember(s), getChatMemberCount,
// getChatAdministrators, getFile, getUpdates, sendMessage, setChatTitle,
// setMyCommands/getMyCommands ... and /file/bot<token>/<path> downloads.
//
// Large transfers, both streamed by the fake itself (memory stays small):
// - multipart/form-data bodies (uploads: sendDocument ...) are read a chunk
//   at a time; the fake records their size and FNV-1a checksum (of the raw
//   body as received: last_upload(), and in the answer's
//   result.document {file_size, file_unique_id = checksum in hex}), and reads
//   form fields such as chat_id from the body's first 64 KiB;
// - GET/HEAD /file/bot<token>/large/<bytes>[.<ext>] answers <bytes> bytes of
//   fake_download content (Content-Length; with ?chunked=1 chunked encoding
//   instead), in 64 KiB chunks, optionally slowly, held at an offset until
//   released, or dropped midway.
//
// Method names are case-insensitive, as at Telegram ("getchat" is getChat,
// counted as "getChat").
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

// FNV-1a 64-bit over `data`, continuing from `h` (the checksum the fake
// reports for uploads).
inline constexpr std::uint64_t kFnv1aOffset = 0xcbf29ce484222325ull;
std::uint64_t fnv1a64(std::string_view data, std::uint64_t h = kFnv1aOffset) noexcept;

// The content of every large fake download: byte `offset`, and bytes
// [offset, offset + out.size()) into `out`.
char fake_download_byte(std::uint64_t offset) noexcept;
void fill_fake_download(std::uint64_t offset, char* out, std::size_t size) noexcept;

// A multipart upload as the fake received it.
struct FakeUpload {
  std::string method;
  std::uint64_t bytes = 0;     // body bytes received
  std::uint64_t checksum = 0;  // fnv1a64 of those bytes
  bool ended = false;          // the body ended: complete, or cut short
  bool complete = false;       // the whole body arrived
};

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
  // Connections accepted so far (shows whether clients reuse connections).
  std::uint64_t connections_accepted() const;
  void reset_counts();

  void set_latency(std::chrono::milliseconds latency);
  // Calls of `method` (as counted by calls()) take `latency` instead. An
  // answer is decided when the call arrives and sent after its latency, so a
  // slow read can answer with what was true before a write that overtook it.
  void set_method_latency(std::string method, std::chrono::milliseconds latency);
  // The next `count` calls of `method` ("*" = any method) answer `fault`.
  void fail_next(std::string method, int count, FakeFault fault);
  // Sending methods (sendMessage, sendPhoto, ...) to one chat closer than
  // `interval` apart get 429 with retry_after (0 = not enforced).
  void enforce_chat_interval(std::chrono::milliseconds interval);

  // The most recent multipart upload (complete or cut short); bytes == 0
  // before any.
  FakeUpload last_upload() const;
  // Multipart body bytes received so far, all uploads together.
  std::uint64_t upload_bytes_received() const;
  // Waits until upload_bytes_received() >= bytes; false after `timeout`.
  bool wait_upload_bytes(std::uint64_t bytes, std::chrono::milliseconds timeout) const;
  // Waits until the most recent multipart upload ended (complete or cut
  // short); false after `timeout`.
  bool wait_upload_ended(std::chrono::milliseconds timeout) const;
  // Large-download body bytes written so far, all downloads together.
  std::uint64_t download_bytes_sent() const;
  // Waits until download_bytes_sent() >= bytes; false after `timeout`.
  bool wait_download_bytes(std::uint64_t bytes, std::chrono::milliseconds timeout) const;
  // Large downloads pause once they wrote `bytes` body bytes, until
  // release_downloads() (0 = never pause).
  void hold_downloads_after(std::uint64_t bytes);
  void release_downloads();
  // Large downloads wait `delay` after each 64 KiB chunk (a slow upstream).
  void set_download_chunk_delay(std::chrono::milliseconds delay);
  // The next large download closes its connection after `bytes` body bytes.
  void drop_next_download_after(std::uint64_t bytes);

  // Stops accepting and closes connections. Idempotent.
  void stop();

  class Impl;

 private:
  explicit FakeTelegram(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace callcache::gateway
