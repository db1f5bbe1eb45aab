// End-to-end tests of streamed bodies through `callcache serve`: 50 MB
// multipart uploads and large file downloads pass through in chunks, over
// real sockets, between a plain-socket client and the FakeTelegram upstream.
//
// Streaming is proven, not assumed: the upstream must see the first upload
// bytes while the client still holds back the rest of the body, and the
// client must get the first download bytes while the upstream still holds
// back the rest of the file. A gateway that buffered either body whole would
// wait for bytes that are never sent and fail those waits.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "fake_telegram.h"
#include "gateway/app/gateway.h"
#include "gateway/net/http_message.h"
#include "test_gateway_config.h"

namespace callcache::gateway {
namespace stream_e2e_test {

using namespace std::chrono_literals;
using testing::loopback_config;

const std::string kToken = "111111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr auto kWait = 60s;  // generous: the machine may be loaded (and sanitized)

std::string hex64(std::uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = kHex[v & 15];
  return out;
}

// A blocking HTTP/1.1 client on a plain socket: the test decides exactly
// which bytes go out when, and reads answers a piece at a time.
class RawConnection {
 public:
  struct Head {
    int status = 0;
    std::map<std::string, std::string> headers;  // lowercase names
    std::string header(const std::string& name) const {
      auto it = headers.find(name);
      return it == headers.end() ? "" : it->second;
    }
  };

  explicit RawConnection(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    timeval tv{};
    tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(kWait).count();
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Closes with a reset (SO_LINGER 0): the client vanishes mid-request.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd_);
    fd_ = -1;
  }

  // Reads a status line and headers (interim 1xx answers too). False on
  // EOF or timeout.
  bool read_head(Head& head) {
    std::size_t end;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return false;
    }
    std::string text = pending_.substr(0, end);
    pending_.erase(0, end + 4);
    head = Head{};
    std::size_t line_end = text.find("\r\n");
    std::string status_line = text.substr(0, line_end);
    if (status_line.size() < 12) return false;
    head.status = std::stoi(status_line.substr(9, 3));
    std::size_t pos = line_end == std::string::npos ? text.size() : line_end + 2;
    while (pos < text.size()) {
      std::size_t next = text.find("\r\n", pos);
      if (next == std::string::npos) next = text.size();
      std::string line = text.substr(pos, next - pos);
      std::size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        std::size_t v = line.find_first_not_of(' ', colon + 1);
        head.headers[name] = v == std::string::npos ? "" : line.substr(v);
      }
      pos = next + 2;
    }
    return true;
  }

  // Reads the body of `head` (Content-Length or chunked), handing it to
  // `on_bytes` piece by piece. Returns the body bytes read; `complete` tells
  // whether the body ended as framed (false: the connection closed early).
  std::uint64_t read_body(const Head& head, const std::function<void(std::string_view)>& on_bytes,
                          bool& complete) {
    complete = false;
    std::uint64_t total = 0;
    auto pass = [&](std::uint64_t n) {
      while (n > 0) {
        if (pending_.empty() && !fill()) return false;
        std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(pending_.size(), n));
        on_bytes(std::string_view(pending_).substr(0, k));
        pending_.erase(0, k);
        n -= k;
        total += k;
      }
      return true;
    };
    if (head.header("transfer-encoding") == "chunked") {
      std::string line;
      for (;;) {
        if (!read_line(line)) return total;
        std::uint64_t size = std::stoull(line.substr(0, line.find(';')), nullptr, 16);
        if (size == 0) {
          do {
            if (!read_line(line)) return total;
          } while (!line.empty());  // trailers end with an empty line
          complete = true;
          return total;
        }
        if (!pass(size) || !read_line(line) || !line.empty()) return total;
      }
    }
    const std::string length = head.header("content-length");
    if (!pass(length.empty() ? 0 : std::stoull(length))) return total;
    complete = true;
    return total;
  }

  // Reads until the peer closes (or times out); true on a clean EOF.
  bool read_until_eof(std::string& out) {
    out += pending_;
    pending_.clear();
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0) return false;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  bool fill() {
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  bool read_line(std::string& line) {
    std::size_t eol;
    while ((eol = pending_.find("\r\n")) == std::string::npos) {
      if (!fill()) return false;
    }
    line = pending_.substr(0, eol);
    pending_.erase(0, eol + 2);
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

// A multipart sendDocument body around `file_bytes` bytes of the fake
// download content, produced and checksummed piece by piece.
class MultipartUpload {
 public:
  MultipartUpload(std::uint64_t file_bytes, const std::string& chat_id)
      : file_bytes_(file_bytes),
        prefix_("--" + boundary() + "\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n" +
                chat_id + "\r\n--" + boundary() +
                "\r\nContent-Disposition: form-data; name=\"document\"; filename=\"big.bin\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"),
        suffix_("\r\n--" + boundary() + "--\r\n") {}

  static std::string boundary() { return "callcacheStreamTestBoundary7MA4YWxk"; }
  std::uint64_t size() const { return prefix_.size() + file_bytes_ + suffix_.size(); }

  // The body bytes [offset, offset + n), appended to `out`.
  void piece(std::uint64_t offset, std::uint64_t n, std::string& out) const {
    const std::uint64_t end = offset + n;
    for (std::uint64_t at = offset; at < end;) {
      if (at < prefix_.size()) {
        std::uint64_t k = std::min<std::uint64_t>(end, prefix_.size()) - at;
        out.append(prefix_, static_cast<std::size_t>(at), static_cast<std::size_t>(k));
        at += k;
      } else if (at < prefix_.size() + file_bytes_) {
        std::uint64_t file_at = at - prefix_.size();
        std::uint64_t k = std::min<std::uint64_t>(end - at, file_bytes_ - file_at);
        std::size_t old = out.size();
        out.resize(old + static_cast<std::size_t>(k));
        fill_fake_download(file_at, out.data() + old, static_cast<std::size_t>(k));
        at += k;
      } else {
        std::uint64_t suffix_at = at - prefix_.size() - file_bytes_;
        std::uint64_t k = end - at;
        out.append(suffix_, static_cast<std::size_t>(suffix_at), static_cast<std::size_t>(k));
        at += k;
      }
    }
  }

 private:
  std::uint64_t file_bytes_;
  std::string prefix_;
  std::string suffix_;
};

std::string upload_head(const std::string& target, std::uint64_t content_length,
                        const std::string& extra = "") {
  return "POST " + target +
         " HTTP/1.1\r\nHost: gateway\r\nContent-Type: multipart/form-data; boundary=" +
         MultipartUpload::boundary() + "\r\nContent-Length: " + std::to_string(content_length) +
         "\r\n" + extra + "\r\n";
}

// Sends body bytes [from, to) of `upload` in 1 MiB slices, checksumming them.
bool send_body(RawConnection& c, const MultipartUpload& upload, std::uint64_t from,
               std::uint64_t to, std::uint64_t& checksum) {
  std::string slice;
  for (std::uint64_t at = from; at < to;) {
    std::uint64_t n = std::min<std::uint64_t>(kMiB, to - at);
    slice.clear();
    upload.piece(at, n, slice);
    checksum = fnv1a64(slice, checksum);
    if (!c.send(slice)) return false;
    at += n;
  }
  return true;
}

// Checks a download body against the fake's content as it arrives.
struct DownloadCheck {
  std::uint64_t offset = 0;
  std::uint64_t mismatches = 0;
  std::string expected;
  void operator()(std::string_view piece) {
    expected.resize(piece.size());
    fill_fake_download(offset, expected.data(), piece.size());
    if (piece != std::string_view(expected)) ++mismatches;
    offset += piece.size();
  }
};

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::err);
    auto fake = FakeTelegram::start();
    ASSERT_TRUE(fake.ok()) << fake.status().to_string();
    fake_ = std::move(*fake);
  }
  void TearDown() override {
    if (gateway_) {
      fake_->release_downloads();
      gateway_->stop();
      EXPECT_EQ(gateway_->wait(), 0);
      gateway_.reset();
    }
    fake_.reset();
  }

  GatewayConfig config() {
    GatewayConfig c = loopback_config(fake_->base_url());
    c.admin_enabled = false;
    c.upstream_timeout = 30s;
    return c;
  }

  void start(GatewayConfig c) {
    auto g = Gateway::create(std::move(c));
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    gateway_ = std::move(*g);
    gateway_->start();
  }

  // A small request on a fresh connection: the gateway still serves.
  void expect_still_serving() {
    RawConnection c(gateway_->port());
    ASSERT_TRUE(c.send("GET /bot" + kToken + "/getMe HTTP/1.1\r\nHost: g\r\n\r\n"));
    RawConnection::Head head;
    ASSERT_TRUE(c.read_head(head));
    EXPECT_EQ(head.status, 200);
  }

  std::string file_target(std::uint64_t size, const std::string& query = "") {
    return "/file/bot" + kToken + "/large/" + std::to_string(size) + ".bin" + query;
  }

  std::unique_ptr<FakeTelegram> fake_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(StreamTest, FiftyMegabyteUploadStreamsThroughIntact) {
  auto cfg = config();
  cfg.admin_enabled = true;
  cfg.admin_listen = {"127.0.0.1", 0};
  start(cfg);
  const auto uploads_before = stream_counters().uploads.load();
  const MultipartUpload upload(50 * kMiB, "4242");
  RawConnection c(gateway_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(upload_head("/bot" + kToken + "/sendDocument?chat_id=4242", upload.size())));
  std::uint64_t checksum = kFnv1aOffset;
  ASSERT_TRUE(send_body(c, upload, 0, 2 * kMiB, checksum));
  // The rest of the body is held back until the upstream has seen the first
  // bytes: a gateway that buffers the body would never forward any.
  ASSERT_TRUE(fake_->wait_upload_bytes(256 * 1024, kWait))
      << "the upstream got no body bytes while the client held back the rest";
  EXPECT_LT(fake_->upload_bytes_received(), upload.size());
  ASSERT_TRUE(send_body(c, upload, 2 * kMiB, upload.size(), checksum));

  RawConnection::Head head;
  ASSERT_TRUE(c.read_head(head));
  bool complete = false;
  std::string answer;
  c.read_body(
      head, [&](std::string_view p) { answer += p; }, complete);
  EXPECT_TRUE(complete);
  EXPECT_EQ(head.status, 200) << answer;
  EXPECT_NE(answer.find("\"file_size\":" + std::to_string(upload.size())), std::string::npos)
      << answer;
  EXPECT_NE(answer.find("\"file_unique_id\":\"" + hex64(checksum) + "\""), std::string::npos)
      << answer;
  FakeUpload got = fake_->last_upload();
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.method, "sendDocument");
  EXPECT_EQ(got.bytes, upload.size());
  EXPECT_EQ(got.checksum, checksum);
  EXPECT_EQ(fake_->calls("sendDocument"), 1u);
  EXPECT_EQ(stream_counters().uploads.load(), uploads_before + 1);
  // Nothing near the body's size was ever held whole, and the chunk buffers
  // are gone with the exchange.
  EXPECT_LT(stream_counters().largest_buffered_body.load(), kMiB);
  EXPECT_EQ(stream_counters().buffer_bytes.load(), 0);

  // The connection is kept alive and serves the next request.
  ASSERT_TRUE(c.send("GET /bot" + kToken + "/getMe HTTP/1.1\r\nHost: g\r\n\r\n"));
  ASSERT_TRUE(c.read_head(head));
  EXPECT_EQ(head.status, 200);

  // /metrics counts it.
  RawConnection admin(gateway_->admin_port());
  ASSERT_TRUE(admin.send("GET /metrics HTTP/1.1\r\nHost: g\r\n\r\n"));
  ASSERT_TRUE(admin.read_head(head));
  std::string metrics;
  admin.read_body(
      head, [&](std::string_view p) { metrics += p; }, complete);
  EXPECT_NE(metrics.find("callcache_gateway_streamed_uploads_total " +
                         std::to_string(stream_counters().uploads.load())),
            std::string::npos);
  EXPECT_NE(metrics.find("callcache_gateway_streamed_upload_bytes_total"), std::string::npos);
}

TEST_F(StreamTest, HeadOfASmallFileGetsItsLengthAndNoBody) {
  start(config());
  RawConnection c(gateway_->port());
  const std::string target = "/file/bot" + kToken + "/documents/abc.txt";
  ASSERT_TRUE(c.send("HEAD " + target + " HTTP/1.1\r\nHost: g\r\n\r\n"));
  RawConnection::Head head;
  ASSERT_TRUE(c.read_head(head));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"),
            std::to_string(std::string("FAKEFILE:documents/abc.txt").size()));
  // The next answer on the connection starts right after the header.
  ASSERT_TRUE(c.send("GET " + target + " HTTP/1.1\r\nHost: g\r\n\r\n"));
  ASSERT_TRUE(c.read_head(head));
  EXPECT_EQ(head.status, 200);
  std::string body;
  bool complete = false;
  c.read_body(
      head, [&](std::string_view p) { body += p; }, complete);
  EXPECT_EQ(body, "FAKEFILE:documents/abc.txt");
}

TEST_F(StreamTest, ChunkedUploadStreamsThroughIntact) {
  start(config());
  const MultipartUpload upload(3 * kMiB, "4343");
  RawConnection c(gateway_->port());
  std::string head_text = "POST /bot" + kToken +
                          "/sendDocument HTTP/1.1\r\nHost: g\r\nContent-Type: multipart/form-data; "
                          "boundary=" +
                          MultipartUpload::boundary() + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_TRUE(c.send(head_text));
  std::uint64_t checksum = kFnv1aOffset;
  std::string slice;
  for (std::uint64_t at = 0; at < upload.size();) {
    std::uint64_t n = std::min<std::uint64_t>(100000, upload.size() - at);
    slice.clear();
    upload.piece(at, n, slice);
    checksum = fnv1a64(slice, checksum);
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%llx\r\n", static_cast<unsigned long long>(n));
    ASSERT_TRUE(c.send(size_line + slice + "\r\n"));
    at += n;
  }
  ASSERT_TRUE(c.send("0\r\n\r\n"));
  RawConnection::Head head;
  ASSERT_TRUE(c.read_head(head));
  EXPECT_EQ(head.status, 200);
  FakeUpload got = fake_->last_upload();
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.bytes, upload.size());
  EXPECT_EQ(got.checksum, checksum);
}

TEST_F(StreamTest, LargeDownloadStreamsThroughIntact) {
  start(config());
  const std::uint64_t size = 50 * kMiB;
  const auto downloads_before = stream_counters().downloads.load();
  fake_->hold_downloads_after(4 * kMiB);
  RawConnection c(gateway_->port());
  ASSERT_TRUE(c.send("GET " + file_target(size) + " HTTP/1.1\r\nHost: g\r\n\r\n"));
  RawConnection::Head head;
  ASSERT_TRUE(c.read_head(head));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), std::to_string(size));
  EXPECT_EQ(head.header("content-type"), "application/octet-stream");
  DownloadCheck check;
  std::uint64_t first = 0;
  bool complete = false;
  // The upstream holds the rest of the file back: the first bytes can only
  // arrive if the gateway passes them on as they come.
  RawConnection::Head partial = head;
  partial.headers["content-length"] = std::to_string(kMiB);
  first = c.read_body(partial, std::ref(check), complete);
  ASSERT_TRUE(complete) << "no download bytes while the upstream held back the rest";
  EXPECT_EQ(first, kMiB);
  EXPECT_LT(fake_->download_bytes_sent(), size);
  fake_->release_downloads();
  partial.headers["content-length"] = std::to_string(size - kMiB);
  std::uint64_t rest = c.read_body(partial, std::ref(check), complete);
  EXPECT_TRUE(complete);
  EXPECT_EQ(first + rest, size);
  EXPECT_EQ(check.mismatches, 0u);
  EXPECT_EQ(stream_counters().downloads.load(), downloads_before + 1);
  EXPECT_LT(stream_counters().largest_buffered_body.load(), kMiB);

  // Kept alive: a HEAD on the same connection gets the length and no body.
  // The upstream connection went back to the pool once the body was read
  // to its end: the HEAD reuses it.
  const std::uint64_t upstream_connections = fake_->connections_accepted();
  ASSERT_TRUE(c.send("HEAD " + file_target(size) + " HTTP/1.1\r\nHost: g\r\n\r\n"));
  ASSERT_TRUE(c.read_head(head));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), std::to_string(size));
  EXPECT_EQ(fake_->connections_accepted(), upstream_connections);
  // ... and the next answer follows directly (no body bytes in between).
  ASSERT_TRUE(c.send("GET /bot" + kToken + "/getMe HTTP/1.1\r\nHost: g\r\n\r\n"));
  ASSERT_TRUE(c.read_head(head));
  EXPECT_EQ(head.status, 200);
  // The session finished the download before it read these requests.
  EXPECT_EQ(stream_counters().buffer_bytes.load(), 0);
}

TEST_F(StreamTest, DownloadOfUnknownLengthIsChunkedToTheClient) {
  start(config());
  const std::uint64_t size = 5 * kMiB + 123;
  RawConnection c(gateway_->port());
  ASSERT_TRUE(c.send("GET " + file_target(size, "?chunked=1") + " HTTP/1.1\r\nHost: g\r\n\r\n"));
  RawConnection::Head head;
  ASSERT_TRUE(c.read_head(head));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("transfer-encoding"), "chunked");
  DownloadCheck check;
  bool complete = false;
  EXPECT_EQ(c.read_body(head, std::ref(check), complete), size);
  EXPECT_TRUE(complete);
  EXPECT_EQ(check.mismatches, 0u);
}

TEST_F(StreamTest, ClientAbortMidUploadAbortsTheUpstreamExchange) {
  start(config());
  const MultipartUpload upload(20 * kMiB, "4444");
  {
    RawConnection c(gateway_->port());
    ASSERT_TRUE(c.send(upload_head("/bot" + kToken + "/sendDocument?chat_id=4444", upload.size())));
    std::uint64_t checksum = kFnv1aOffset;
    ASSERT_TRUE(send_body(c, upload, 0, 2 * kMiB, checksum));
    ASSERT_TRUE(fake_->wait_upload_bytes(256 * 1024, kWait));
    c.reset();
  }
  // The upstream sees its connection end before the declared body did: the
  // exchange is aborted, not completed with a truncated body.
  ASSERT_TRUE(fake_->wait_upload_ended(kWait));
  FakeUpload got = fake_->last_upload();
  EXPECT_FALSE(got.complete);
  EXPECT_LT(got.bytes, upload.size());
  EXPECT_EQ(fake_->calls("sendDocument"), 0u);  // never answered: the request never ended
  expect_still_serving();

  // A whole upload afterwards goes through.
  const MultipartUpload small(kMiB, "4445");
  RawConnection c(gateway_->port());
  ASSERT_TRUE(c.send(upload_head("/bot" + kToken + "/sendDocument?chat_id=4445", small.size())));
  std::uint64_t checksum = kFnv1aOffset;
  ASSERT_TRUE(send_body(c, small, 0, small.size(), checksum));
  RawConnection::Head head;
  ASSERT_TRUE(c.read_head(head));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(fake_->last_upload().checksum, checksum);
}

TEST_F(StreamTest, UpstreamDropMidDownloadEndsTheClientConnection) {
  start(config());
  const std::uint64_t size = 10 * kMiB;
  fake_->drop_next_download_after(3 * kMiB);
  RawConnection c(gateway_->port());
  ASSERT_TRUE(c.send("GET " + file_target(size) + " HTTP/1.1\r\nHost: g\r\n\r\n"));
  RawConnection::Head head;
  ASSERT_TRUE(c.read_head(head));
  EXPECT_EQ(head.status, 200);
  DownloadCheck check;
  bool complete = true;
  std::uint64_t got = c.read_body(head, std::ref(check), complete);
  // The header went out before the upstream failed: the client sees the
  // connection close short of the declared length (not a hang, not a lie).
  EXPECT_FALSE(complete);
  EXPECT_EQ(got, 3 * kMiB);
  EXPECT_EQ(check.mismatches, 0u);
  std::string rest;
  EXPECT_TRUE(c.read_until_eof(rest));  // closed, not timed out
  EXPECT_TRUE(rest.empty());
  expect_still_serving();
  // The next download is whole.
  RawConnection again(gateway_->port());
  ASSERT_TRUE(again.send("GET " + file_target(size) + " HTTP/1.1\r\nHost: g\r\n\r\n"));
  ASSERT_TRUE(again.read_head(head));
  DownloadCheck check2;
  EXPECT_EQ(again.read_body(head, std::ref(check2), complete), size);
  EXPECT_TRUE(complete);
  EXPECT_EQ(check2.mismatches, 0u);
}

TEST_F(StreamTest, UpstreamDownGives502JsonToStreamedTransfers) {
  auto cfg = config();
  cfg.connect_timeout = 2s;
  fake_->stop();  // nothing listens on its port any more
  start(cfg);
  for (const std::string& request :
       {upload_head("/bot" + kToken + "/sendDocument?chat_id=5050", 8 * kMiB),
        "GET " + file_target(8 * kMiB) + " HTTP/1.1\r\nHost: g\r\n\r\n"}) {
    RawConnection c(gateway_->port());
    ASSERT_TRUE(c.send(request));
    RawConnection::Head head;
    ASSERT_TRUE(c.read_head(head));
    std::string body;
    bool complete = false;
    c.read_body(
        head, [&](std::string_view p) { body += p; }, complete);
    EXPECT_EQ(head.status, 502) << body;
    EXPECT_NE(body.find("\"ok\":false"), std::string::npos) << body;
    EXPECT_NE(body.find("\"error_code\":502"), std::string::npos) << body;
  }
}

TEST_F(StreamTest, OversizedUploadsGet413Json) {
  auto cfg = config();
  cfg.max_body_bytes = 4 * kMiB;
  start(cfg);
  {  // Declared over the limit: refused from the header alone.
    RawConnection c(gateway_->port());
    ASSERT_TRUE(c.send(upload_head("/bot" + kToken + "/sendDocument?chat_id=1", 60 * kMiB)));
    std::string out;
    c.read_until_eof(out);
    EXPECT_NE(out.find("HTTP/1.1 413"), std::string::npos) << out.substr(0, 300);
    EXPECT_NE(out.find("\"ok\":false"), std::string::npos) << out.substr(0, 300);
    EXPECT_NE(out.find("\"error_code\":413"), std::string::npos) << out.substr(0, 300);
  }
  {  // Chunked, so only found out midway: 413 and the upstream exchange aborted.
    RawConnection c(gateway_->port());
    ASSERT_TRUE(c.send("POST /bot" + kToken +
                       "/sendDocument?chat_id=2 HTTP/1.1\r\nHost: g\r\nContent-Type: "
                       "multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"));
    const std::string chunk = "40000\r\n" + std::string(0x40000, 'x') + "\r\n";
    for (int i = 0; i < 24; ++i) {  // 6 MiB
      if (!c.send(chunk)) break;    // the gateway may stop reading once it answered
    }
    std::string out;
    c.read_until_eof(out);
    EXPECT_NE(out.find("HTTP/1.1 413"), std::string::npos) << out.substr(0, 300);
    EXPECT_NE(out.find("\"error_code\":413"), std::string::npos) << out.substr(0, 300);
    ASSERT_TRUE(fake_->wait_upload_ended(kWait));
    EXPECT_FALSE(fake_->last_upload().complete);
    EXPECT_LE(fake_->last_upload().bytes, 4 * kMiB);
  }
  EXPECT_EQ(fake_->calls("sendDocument"), 0u);
  expect_still_serving();
}

TEST_F(StreamTest, ExpectContinueIsAnsweredOnlyWhenTheBodyIsWanted) {
  start(config());
  const MultipartUpload upload(kMiB, "4646");
  {
    RawConnection c(gateway_->port());
    ASSERT_TRUE(c.send(upload_head("/bot" + kToken + "/sendDocument?chat_id=4646", upload.size(),
                                   "Expect: 100-continue\r\n")));
    RawConnection::Head head;
    ASSERT_TRUE(c.read_head(head));
    EXPECT_EQ(head.status, 100);
    EXPECT_EQ(fake_->upload_bytes_received(), 0u);
    std::uint64_t checksum = kFnv1aOffset;
    ASSERT_TRUE(send_body(c, upload, 0, upload.size(), checksum));
    ASSERT_TRUE(c.read_head(head));
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(fake_->last_upload().checksum, checksum);
  }
  {  // Refused before the body is wanted: no 100, the final answer at once.
    RawConnection c(gateway_->port());
    ASSERT_TRUE(c.send(
        upload_head("/botNOT-A-TOKEN/sendDocument", upload.size(), "Expect: 100-continue\r\n")));
    RawConnection::Head head;
    ASSERT_TRUE(c.read_head(head));
    EXPECT_EQ(head.status, 404);
    EXPECT_EQ(head.header("connection"), "close");
  }
  expect_still_serving();
}

TEST_F(StreamTest, Upstream429ToAStreamedUploadIsRelayedNotRetried) {
  start(config());  // retry_429 = 2 by default: buffered sends would be retried
  FakeFault f;
  f.kind = FakeFault::Kind::kTooManyRequests;
  f.retry_after = 1;
  fake_->fail_next("sendDocument", 1, f);
  const MultipartUpload upload(kMiB, "4949");
  RawConnection c(gateway_->port());
  ASSERT_TRUE(c.send(upload_head("/bot" + kToken + "/sendDocument?chat_id=4949", upload.size())));
  std::uint64_t checksum = kFnv1aOffset;
  ASSERT_TRUE(send_body(c, upload, 0, upload.size(), checksum));
  RawConnection::Head head;
  ASSERT_TRUE(c.read_head(head));
  std::string body;
  bool complete = false;
  c.read_body(
      head, [&](std::string_view p) { body += p; }, complete);
  // The body was read once, as it came: there is nothing to send again.
  EXPECT_EQ(head.status, 429) << body;
  EXPECT_NE(body.find("\"retry_after\":1"), std::string::npos) << body;
  EXPECT_EQ(fake_->calls("sendDocument"), 1u);
  EXPECT_EQ(fake_->last_upload().checksum, checksum);
}

TEST_F(StreamTest, DownloadTimeoutsApplyPerChunkNotPerTransfer) {
  auto cfg = config();
  cfg.upstream_timeout = 2s;
  start(cfg);
  {  // A slow upstream: 16 chunks 200 ms apart, over 3 s in all.
    fake_->set_download_chunk_delay(200ms);
    RawConnection c(gateway_->port());
    ASSERT_TRUE(c.send("GET " + file_target(kMiB) + " HTTP/1.1\r\nHost: g\r\n\r\n"));
    RawConnection::Head head;
    ASSERT_TRUE(c.read_head(head));
    DownloadCheck check;
    bool complete = false;
    EXPECT_EQ(c.read_body(head, std::ref(check), complete), kMiB);
    EXPECT_TRUE(complete);
    EXPECT_EQ(check.mismatches, 0u);
    fake_->set_download_chunk_delay(0ms);
  }
  {  // A stalled upstream: the client connection ends short of the length.
    fake_->hold_downloads_after(kMiB);
    RawConnection c(gateway_->port());
    ASSERT_TRUE(c.send("GET " + file_target(4 * kMiB) + " HTTP/1.1\r\nHost: g\r\n\r\n"));
    RawConnection::Head head;
    ASSERT_TRUE(c.read_head(head));
    DownloadCheck check;
    bool complete = true;
    EXPECT_EQ(c.read_body(head, std::ref(check), complete), kMiB);
    EXPECT_FALSE(complete);
    std::string rest;
    EXPECT_TRUE(c.read_until_eof(rest));  // closed by the gateway, not our timeout
    fake_->release_downloads();
  }
  expect_still_serving();
}

TEST_F(StreamTest, UploadTimeoutsApplyPerChunkNotPerTransfer) {
  auto cfg = config();
  cfg.read_timeout = 2s;
  start(cfg);
  {  // Slow but moving: 15 pieces 200 ms apart, 3 s in all, over 2 s.
    const MultipartUpload upload(15 * 64 * 1024, "4747");
    RawConnection c(gateway_->port());
    ASSERT_TRUE(c.send(upload_head("/bot" + kToken + "/sendDocument?chat_id=4747", upload.size())));
    std::uint64_t checksum = kFnv1aOffset;
    const std::uint64_t step = (upload.size() + 14) / 15;
    for (std::uint64_t at = 0; at < upload.size(); at += step) {
      ASSERT_TRUE(send_body(c, upload, at, std::min(upload.size(), at + step), checksum));
      std::this_thread::sleep_for(200ms);
    }
    RawConnection::Head head;
    ASSERT_TRUE(c.read_head(head));
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(fake_->last_upload().checksum, checksum);
  }
  {  // Stalled: the connection ends (well before our own read timeout) and
     // the upstream exchange is aborted.
    const MultipartUpload upload(4 * kMiB, "4848");
    RawConnection c(gateway_->port());
    ASSERT_TRUE(c.send(upload_head("/bot" + kToken + "/sendDocument?chat_id=4848", upload.size())));
    std::uint64_t checksum = kFnv1aOffset;
    ASSERT_TRUE(send_body(c, upload, 0, kMiB, checksum));
    std::string out;
    EXPECT_TRUE(c.read_until_eof(out));  // closed by the gateway, not our timeout
    EXPECT_EQ(out.find("HTTP/1.1 200"), std::string::npos) << out.substr(0, 300);
    ASSERT_TRUE(fake_->wait_upload_ended(kWait));
    EXPECT_FALSE(fake_->last_upload().complete);
    EXPECT_EQ(fake_->calls("sendDocument"), 1u);  // only the slow one was answered
  }
  expect_still_serving();
}

}  // namespace stream_e2e_test
}  // namespace callcache::gateway
