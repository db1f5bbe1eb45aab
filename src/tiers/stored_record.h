// Internal: decoding what the tiers read back from SQLite files and Redis
// servers. Other processes (and other versions of callcache) write there
// too, and a file can be damaged, so any stored bytes and numbers decode to
// something safe — a clamped time, an empty field — never to a crash or to
// undefined behaviour (signed overflow in a time computation).
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "callcache/clock.h"

namespace callcache::tiers {

// The longest remaining lifetime a stored entry is read back with (a
// Duration counts nanoseconds: about 292 years fit; this is 100).
inline constexpr Duration kMaxStoredTtl = std::chrono::hours(24 * 365 * 100);

// A stored remaining lifetime in milliseconds as a Duration, clamped to
// [0, kMaxStoredTtl].
Duration ttl_from_ms(std::int64_t ms) noexcept;

// The value of a Redis account-lock key: "<token> <since ms> <task>".
struct LockValue {
  std::string token;
  std::int64_t since_ms = 0;  // 0 when unreadable
  std::string task;
};

std::string format_lock_value(std::string_view token, std::int64_t since_ms, std::string_view task);

// Never fails: missing parts are empty, an unreadable time is 0.
LockValue parse_lock_value(std::string_view value);

// How long a lock taken at `since_ms` has been held at `now_ms`, clamped to
// [0, kMaxStoredTtl] (a time in the future is 0).
std::chrono::milliseconds lock_age(std::int64_t since_ms, std::int64_t now_ms) noexcept;

}  // namespace callcache::tiers
