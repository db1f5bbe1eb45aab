// Fuzz target: the gateway server's request framing (gateway/net/http_framing.h)
// over a stream of pipelined requests, with small limits so that they are
// reached. The input is the bytes a client sends on one connection.
//
// Properties of every request read:
//   - the head fits max_header_bytes and the body max_body_bytes (a chunked
//     body too, once decoded); `consumed` is within the input, never 0;
//   - the framing was unambiguous: at most one Content-Length, and then a
//     body of exactly that length; a Transfer-Encoding only alone and only
//     "chunked" (so no body was read by a rule another parser might not use);
//   - written back with a Content-Length, the request reads back the same;
// and every refusal is a 400, 413 or 431 with a reason.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "gateway/net/http_framing.h"

namespace callcache::gateway {
namespace {

constexpr FramingLimits kLimits{2048, 512};

std::string serialise(const HttpRequest& r) {
  std::string out = r.method + " " + r.target + " HTTP/1.1\r\n";
  for (const Header& h : r.headers) {
    if (iequals(h.name, "content-length") || iequals(h.name, "transfer-encoding")) continue;
    out += h.name + ": " + h.value + "\r\n";
  }
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n";
  out += r.body;
  return out;
}

void check_request(const FramedRequest& f, std::string_view input) {
  const HttpRequest& r = f.request;
  FUZZ_CHECK(f.consumed > 0 && f.consumed <= input.size());
  FUZZ_CHECK(r.body.size() <= kLimits.max_body_bytes);
  FUZZ_CHECK(!r.body_stream);
  int lengths = 0, encodings = 0;
  std::string_view length, encoding;
  for (const Header& h : r.headers) {
    if (iequals(h.name, "content-length")) ++lengths, length = h.value;
    if (iequals(h.name, "transfer-encoding")) ++encodings, encoding = h.value;
  }
  FUZZ_CHECK(lengths <= 1 && encodings <= 1 && lengths + encodings <= 1);
  if (lengths == 1)
    FUZZ_CHECK(std::strtoull(std::string(length).c_str(), nullptr, 10) == r.body.size());
  if (encodings == 1) FUZZ_CHECK(iequals(encoding, "chunked"));
  if (lengths + encodings == 0) FUZZ_CHECK(r.body.empty());
  // The head alone fitted the limit.
  HeadEnd end = find_head_end(input, kLimits.max_header_bytes);
  FUZZ_CHECK(end.kind == HeadEnd::Kind::kComplete && end.size <= f.consumed);

  // Re-framed with a Content-Length, the same request.
  const std::string again = serialise(r);
  FramedRequest g = read_request(again, {again.size(), kLimits.max_body_bytes});
  FUZZ_CHECK(g.kind == FramedRequest::Kind::kRequest);
  FUZZ_CHECK(g.consumed == again.size());
  FUZZ_CHECK(g.request.method == r.method && g.request.target == r.target);
  FUZZ_CHECK(g.request.body == r.body);
  std::size_t i = 0;
  for (const Header& h : r.headers) {
    if (iequals(h.name, "content-length") || iequals(h.name, "transfer-encoding")) continue;
    FUZZ_CHECK(i < g.request.headers.size());
    FUZZ_CHECK(g.request.headers[i].name == h.name && g.request.headers[i].value == h.value);
    ++i;
  }
}

}  // namespace
}  // namespace callcache::gateway

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callcache::gateway;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // A connection carries requests until one is refused or the bytes end.
  for (int n = 0; n < 16 && !input.empty(); ++n) {
    FramedRequest f = read_request(input, kLimits);
    if (f.kind == FramedRequest::Kind::kIncomplete) break;
    if (f.kind == FramedRequest::Kind::kRefused) {
      const int s = f.refusal.status;
      FUZZ_CHECK(s == 400 || s == 413 || s == 431);
      FUZZ_CHECK(!f.refusal.reason.empty());
      break;
    }
    check_request(f, input);
    input.remove_prefix(f.consumed);
  }
  return 0;
}
