#include "gateway/net/http_framing.h"

#include <gtest/gtest.h>

#include <string>

namespace callcache::gateway {
namespace http_framing_test {

using Kind = FramedRequest::Kind;

FramedRequest read(const std::string& bytes, FramingLimits limits = {}) {
  return read_request(bytes, limits);
}

// The refusal's reason, or "" when `bytes` frame a request.
std::string refused(const std::string& bytes) {
  FramedRequest r = read(bytes);
  EXPECT_NE(r.kind, Kind::kIncomplete) << bytes;
  if (r.kind != Kind::kRefused) return "";
  EXPECT_EQ(r.refusal.status, 400) << bytes;
  return r.refusal.reason;
}

TEST(HttpFraming, FindsTheHeadEndAcrossCalls) {
  const std::string head = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::size_t cut = 0; cut < head.size(); ++cut) {
    // Whatever was scanned before, the terminator is found once complete.
    HeadEnd partial = find_head_end(std::string_view(head).substr(0, cut), 1024);
    EXPECT_EQ(partial.kind, HeadEnd::Kind::kIncomplete) << cut;
    HeadEnd full = find_head_end(head + "BODY", 1024, cut);
    ASSERT_EQ(full.kind, HeadEnd::Kind::kComplete) << cut;
    EXPECT_EQ(full.size, head.size());
  }
  EXPECT_EQ(find_head_end(head, head.size()).kind, HeadEnd::Kind::kComplete);
  EXPECT_EQ(find_head_end(head, head.size() - 1).kind, HeadEnd::Kind::kTooLarge);
  EXPECT_EQ(find_head_end(std::string(100, 'a'), 100).kind, HeadEnd::Kind::kTooLarge);
  EXPECT_EQ(find_head_end(std::string(99, 'a'), 100).kind, HeadEnd::Kind::kIncomplete);
}

TEST(HttpFraming, ReadsPipelinedRequestsOneAtATime) {
  const std::string first = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  const std::string second =
      "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n";
  FramedRequest a = read(first + second);
  ASSERT_EQ(a.kind, Kind::kRequest);
  EXPECT_EQ(a.request.target, "/a");
  EXPECT_EQ(a.request.body, "hello");
  EXPECT_EQ(a.consumed, first.size());
  FramedRequest b = read(second);
  ASSERT_EQ(b.kind, Kind::kRequest);
  EXPECT_EQ(b.request.body, "abcde");
  EXPECT_EQ(b.consumed, second.size());
  EXPECT_EQ(read(first.substr(0, first.size() - 1)).kind, Kind::kIncomplete);
}

TEST(HttpFraming, RefusesContentLengthWithTransferEncoding) {
  EXPECT_NE(refused("POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "0\r\n\r\n")
                .find("Content-Length and Transfer-Encoding"),
            std::string::npos);
  EXPECT_NE(refused("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n"
                    "0\r\n\r\n"),
            "");
}

TEST(HttpFraming, RefusesDuplicatedOrInvalidContentLength) {
  EXPECT_NE(refused("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc")
                .find("more than once"),
            std::string::npos);
  EXPECT_NE(refused("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"), "");
  EXPECT_NE(refused("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc"), "");
  EXPECT_NE(refused("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc").find("invalid"),
            std::string::npos);
  EXPECT_NE(refused("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), "");
  EXPECT_NE(refused("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"), "");
  EXPECT_NE(refused("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"), "");
  EXPECT_EQ(refused("POST / HTTP/1.1\r\nContent-Length:  3 \r\n\r\nabc"), "");
}

TEST(HttpFraming, RefusesTransferEncodingsOtherThanChunked) {
  EXPECT_NE(refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").find("gzip"),
            std::string::npos);
  EXPECT_NE(refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n"), "");
  EXPECT_NE(refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), "");
  EXPECT_NE(refused("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n"), "");
  EXPECT_NE(refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            "");
  EXPECT_NE(
      refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").find("HTTP/1.0"),
      std::string::npos);
  EXPECT_EQ(refused("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"), "");
}

TEST(HttpFraming, RefusesObsFold) {
  EXPECT_NE(refused("GET / HTTP/1.1\r\nX-A: 1\r\n continued\r\n\r\n").find("obs-fold"),
            std::string::npos);
  EXPECT_NE(refused("GET / HTTP/1.1\r\nX-A: 1\r\n\tcontinued\r\n\r\n"), "");
  EXPECT_NE(refused("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"), "");
  EXPECT_NE(refused("GET / HTTP/1.1\r\n Host: x\r\n\r\n"), "");
}

TEST(HttpFraming, RefusesInvalidChunkSizes) {
  const std::string head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const char* body : {"zz\r\nabc\r\n0\r\n\r\n", "0x3\r\nabc\r\n0\r\n\r\n",
                           "-3\r\nabc\r\n0\r\n\r\n", "3\r\nabcdef\r\n0\r\n\r\n",
                           "fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", " 3\r\nabc\r\n0\r\n\r\n"}) {
    std::string reason = refused(head + body);
    EXPECT_NE(reason.find("malformed HTTP request"), std::string::npos) << body << ": " << reason;
  }
}

TEST(HttpFraming, BodiesOverTheLimitAreRefusedWith413) {
  FramingLimits limits{1024, 4};
  FramedRequest r = read("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", limits);
  ASSERT_EQ(r.kind, Kind::kRefused);
  EXPECT_EQ(r.refusal.status, 413);
  r = read("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
           limits);
  ASSERT_EQ(r.kind, Kind::kRefused);
  EXPECT_EQ(r.refusal.status, 413);
  r = read("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd", limits);
  ASSERT_EQ(r.kind, Kind::kRequest);
  EXPECT_EQ(r.request.body, "abcd");
}

TEST(HttpFraming, HeadsOverTheLimitAreRefusedWith431) {
  FramingLimits limits{64, 1024};
  FramedRequest r = read("GET / HTTP/1.1\r\nX-Long: " + std::string(100, 'a') + "\r\n\r\n", limits);
  ASSERT_EQ(r.kind, Kind::kRefused);
  EXPECT_EQ(r.refusal.status, 431);
  // Incomplete but already too long: refused without waiting for the rest.
  r = read("GET / HTTP/1.1\r\nX-Long: " + std::string(100, 'a'), limits);
  ASSERT_EQ(r.kind, Kind::kRefused);
  EXPECT_EQ(r.refusal.status, 431);
}

}  // namespace http_framing_test
}  // namespace callcache::gateway
