#include "gateway/l2_envelope.h"

#include <charconv>

namespace callcache::gateway {
namespace {

constexpr std::string_view kMagic = "cc1\n";

}  // namespace

std::optional<std::string> encode_l2_envelope(std::int64_t stored_ms,
                                              const std::vector<std::string>& tags,
                                              std::string_view body) {
  std::string bytes;
  bytes.reserve(body.size() + 64);
  bytes += kMagic;
  bytes += std::to_string(stored_ms);
  bytes += '\n';
  for (std::size_t i = 0; i < tags.size(); ++i) {
    if (tags[i].find_first_of("\t\n") != std::string::npos) return std::nullopt;
    if (i) bytes += '\t';
    bytes += tags[i];
  }
  bytes += '\n';
  bytes += body;
  return bytes;
}

std::optional<L2Envelope> decode_l2_envelope(std::string_view s) {
  if (!s.starts_with(kMagic)) return std::nullopt;
  s.remove_prefix(kMagic.size());
  std::size_t nl = s.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  L2Envelope e;
  e.stored_ms = decode_marker_ms(s.substr(0, nl));
  s.remove_prefix(nl + 1);
  nl = s.find('\n');
  if (e.stored_ms < 0 || nl == std::string_view::npos) return std::nullopt;
  std::string_view tag_text = s.substr(0, nl);
  e.body = s.substr(nl + 1);
  while (!tag_text.empty()) {
    const std::size_t tab = tag_text.find('\t');
    e.tags.emplace_back(tag_text.substr(0, tab));
    if (tab == std::string_view::npos) break;
    tag_text.remove_prefix(tab + 1);
  }
  return e;
}

std::int64_t decode_marker_ms(std::string_view s) noexcept {
  std::int64_t v = -1;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() ? v : -1;
}

}  // namespace callcache::gateway
