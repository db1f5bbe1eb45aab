// Internal: the `rate_limits` and `account_locks` sections of the YAML
// configuration, read with MapReader so every error names the key path and
// the offending value, e.g.
//   "rate_limits.rules.per_chat.key: unknown attribute 'chan' (expected one of
//    method, account, chat, bot, paid)".
//
//   rate_limits:
//     presets: [telegram_bot]     # telegram_bot | telegram_user | seeds_global
//     shards: 16
//     sweep_interval: 1s
//     rules:                      # by name; a preset rule's name replaces that rule
//       per_chat:
//         limit: 1                # N calls ...
//         period: 1s              # ... per period; or `interval: 3s` (= 1 per 3 s)
//         burst: 1
//         key: [bot, chat]        # method, account, chat, bot, paid; [] = one global key
//         methods: [sendMessage]  # "@telegram_send" = every Bot API send method
//         except_methods: []
//         chat: private           # any | private (id > 0) | group (id < 0)
//         paid: any               # any | yes | no
//   account_locks:
//     mode: strict                # strict | warn
//     wait_timeout: 0s            # strict: how long a second task waits (0 = fail at once)
//
// Lives in callcache_limits_config (links yaml-cpp) so that callcache_limits
// itself stays std-only.
#pragma once

#include <string>

#include "callcache/account_locks.h"
#include "callcache/rate_limiter.h"
#include "yaml_reader.h"

namespace callcache::config {

// Reads a `rate_limits` mapping into `out` (rules, shards, sweep_interval;
// clock and scheduler are left as they are). Records the first error in `r`.
void read_rate_limits(MapReader& r, RateLimiterOptions& out);

// Reads an `account_locks` mapping into `out` (mode, wait_timeout).
void read_account_locks(MapReader& r, AccountLockOptions& out);

// Convenience wrappers over a node (null = defaults) at dotted path `path`.
Result<RateLimiterOptions> parse_rate_limits(const YAML::Node& node,
                                             const std::string& path = "rate_limits");
Result<AccountLockOptions> parse_account_locks(const YAML::Node& node,
                                               const std::string& path = "account_locks");

}  // namespace callcache::config
