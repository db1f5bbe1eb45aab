#include "stored_record.h"

#include <algorithm>
#include <charconv>

namespace callcache::tiers {
namespace {

constexpr std::int64_t kMaxStoredMs =
    std::chrono::duration_cast<std::chrono::milliseconds>(kMaxStoredTtl).count();

}  // namespace

Duration ttl_from_ms(std::int64_t ms) noexcept {
  return std::chrono::milliseconds(std::clamp<std::int64_t>(ms, 0, kMaxStoredMs));
}

std::string format_lock_value(std::string_view token, std::int64_t since_ms,
                              std::string_view task) {
  std::string out;
  out.reserve(token.size() + task.size() + 24);
  out += token;
  out += ' ';
  out += std::to_string(since_ms);
  out += ' ';
  out += task;
  return out;
}

LockValue parse_lock_value(std::string_view v) {
  LockValue p;
  const std::size_t a = v.find(' ');
  p.token = std::string(v.substr(0, a));
  if (a == std::string_view::npos) return p;
  const std::size_t b = v.find(' ', a + 1);
  if (b == std::string_view::npos) return p;
  const std::string_view since = v.substr(a + 1, b - a - 1);
  std::int64_t ms = 0;
  auto [ptr, ec] = std::from_chars(since.data(), since.data() + since.size(), ms);
  if (ec == std::errc() && ptr == since.data() + since.size()) p.since_ms = ms;
  p.task = std::string(v.substr(b + 1));
  return p;
}

std::chrono::milliseconds lock_age(std::int64_t since_ms, std::int64_t now_ms) noexcept {
  if (since_ms >= now_ms) return std::chrono::milliseconds(0);
  // now - since > 0; computed so that it cannot overflow.
  const std::uint64_t age =
      static_cast<std::uint64_t>(now_ms) - static_cast<std::uint64_t>(since_ms);
  return std::chrono::milliseconds(static_cast<std::int64_t>(
      std::min<std::uint64_t>(age, static_cast<std::uint64_t>(kMaxStoredMs))));
}

}  // namespace callcache::tiers
