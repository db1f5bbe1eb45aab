// Internal: how rate limiting compares method names — ASCII
// case-insensitively, as the Telegram Bot API does ("sendMessage",
// "sendmessage" and "SENDMESSAGE" are one method): in rules' methods and
// except_methods, and in the keys calls are counted under.
//
// Thread-safety: pure functions and stateless functors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

namespace callcache::limits {

inline char lower_ascii(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline bool same_method(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower_ascii(a[i]) != lower_ascii(b[i])) return false;
  }
  return true;
}

// Appends `name` in lowercase (the form keys hold).
inline void append_method(std::string& out, std::string_view name) {
  for (char c : name) out += lower_ascii(c);
}

struct MethodHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over the lowercase bytes
    for (char c : s) {
      h ^= static_cast<unsigned char>(lower_ascii(c));
      h *= 0x100000001b3ull;
    }
    return static_cast<std::size_t>(h);
  }
};
struct MethodEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept {
    return same_method(a, b);
  }
};
using MethodSet = std::unordered_set<std::string, MethodHash, MethodEq>;

}  // namespace callcache::limits
