#include "gateway/net/http_message.h"

#include "callcache/text_writer.h"

namespace callcache::gateway {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool dropped_request_header(std::string_view name) noexcept {
  return iequals(name, "accept-encoding") || iequals(name, "expect") ||
         iequals(name, "connection") || iequals(name, "keep-alive") || iequals(name, "host") ||
         iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "te") || iequals(name, "upgrade") || iequals(name, "proxy-connection");
}

namespace {
std::string_view find_header(const std::vector<Header>& headers, std::string_view name) noexcept {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return {};
}
}  // namespace

std::string_view HttpRequest::header(std::string_view name) const noexcept {
  return find_header(headers, name);
}

std::string_view HttpResponse::header(std::string_view name) const noexcept {
  return find_header(headers, name);
}

void StreamCounters::note_buffered(std::uint64_t size) noexcept {
  std::uint64_t seen = largest_buffered_body.load(std::memory_order_relaxed);
  while (size > seen &&
         !largest_buffered_body.compare_exchange_weak(seen, size, std::memory_order_relaxed)) {
  }
}

StreamCounters& stream_counters() noexcept {
  static StreamCounters counters;
  return counters;
}

StreamChunk::StreamChunk(std::size_t size)
    : data_(std::make_unique_for_overwrite<char[]>(size)), size_(size) {
  stream_counters().buffer_bytes.fetch_add(static_cast<std::int64_t>(size),
                                           std::memory_order_relaxed);
}

StreamChunk::~StreamChunk() {
  stream_counters().buffer_bytes.fetch_sub(static_cast<std::int64_t>(size_),
                                           std::memory_order_relaxed);
}

HttpResponse json_error(int status, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body = "{\"error\":";
  text::append_json_string(r.body, message);
  r.body += '}';
  return r;
}

}  // namespace callcache::gateway
