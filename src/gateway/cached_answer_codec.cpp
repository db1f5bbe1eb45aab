// CachedAnswer's size and L2 form (cached_answer.h), apart from the read
// path so the decoder of stored bytes builds and is tested on its own.
#include <charconv>

#include "gateway/cached_answer.h"

namespace callcache::gateway {

std::size_t CachedAnswerSize::operator()(const CachedAnswer& a) const noexcept {
  std::size_t n = sizeof(CachedAnswer) + a.content_type.size() + a.body.size();
  for (const Header& h : a.headers) n += sizeof(Header) + h.name.size() + h.value.size();
  return n;
}

std::string CachedAnswerCodec::encode(const CachedAnswer& a) const {
  std::string out;
  out.reserve(a.content_type.size() + a.body.size() + 64);
  out += std::to_string(a.status);
  out += '\n';
  out += a.content_type;
  out += '\n';
  for (const Header& h : a.headers) {
    out += h.name;
    out += ": ";
    out += h.value;
    out += '\n';
  }
  out += '\n';
  out += a.body;
  return out;
}

Result<CachedAnswer> CachedAnswerCodec::decode(std::string_view s) const {
  auto bad = [] { return Status::corruption("not a cached answer"); };
  CachedAnswer a;
  std::size_t nl = s.find('\n');
  if (nl == std::string_view::npos) return bad();
  auto r = std::from_chars(s.data(), s.data() + nl, a.status);
  if (r.ec != std::errc() || r.ptr != s.data() + nl || a.status < 100 || a.status > 599) {
    return bad();
  }
  s.remove_prefix(nl + 1);
  nl = s.find('\n');
  if (nl == std::string_view::npos) return bad();
  a.content_type = std::string(s.substr(0, nl));
  s.remove_prefix(nl + 1);
  for (;;) {
    nl = s.find('\n');
    if (nl == std::string_view::npos) return bad();
    std::string_view line = s.substr(0, nl);
    s.remove_prefix(nl + 1);
    if (line.empty()) break;
    std::size_t colon = line.find(": ");
    if (colon == std::string_view::npos) return bad();
    a.headers.push_back({std::string(line.substr(0, colon)), std::string(line.substr(colon + 2))});
  }
  a.body = std::string(s);
  return a;
}

}  // namespace callcache::gateway
