// Internal (replay): what a replay runs — accounts, objects, namespaces,
// methods, the workload, the limits the simulated upstream enforces, and the
// pacing each client design applies.
//
// A Scenario comes from the built-in `likebot` (builtin_likebot()), from a
// YAML file (load_scenario_file) or from a YAML file plus a recorded log of
// calls (load_call_log). Every parse error names the key path ("methods.
// get_entity.latency: ...") or the log's line number.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache::replay {

// What a limit rule's bucket is keyed by.
enum class Per : std::uint8_t {
  kAccount,       // one bucket per account (MTProto per-account flood limits; a bot)
  kGroup,         // one per channel/chat, across accounts
  kAccountGroup,  // one per (account, chat) — Bot API "1 message per second per chat"
  kObject,        // one per object (post) across accounts
  kGlobal,        // one for everything (the seeds' single global limiter)
};
const char* per_name(Per p);

// One GCRA rule: at most `burst` calls at once, refilled one per `interval`.
// `method` is a method name, "default" (each method not named by another rule
// with the same `per` gets its own bucket) or "any" (one bucket shared by all
// methods).
struct LimitRule {
  Per per = Per::kAccount;
  std::string method;
  Duration interval{};
  std::uint64_t burst = 1;
};

struct NamespaceDef {
  std::string name;
  Duration ttl{};
  bool shared = false;  // public data: one entry serves every account
};

// What a method's object argument is: the channel (group) or the post (item).
enum class Target : std::uint8_t { kGroup, kItem };

struct MethodDef {
  std::string name;
  std::string ns;  // cache namespace; empty = not cacheable (an action)
  Target target = Target::kItem;
  Duration latency_median{};
  double latency_sigma = 0.3;
};

enum class AccountKind : std::uint8_t {
  kUser,  // MTProto user account: FLOOD_WAIT_X
  kBot,   // Bot API: HTTP 429 with retry_after
};

// One call of a recorded log.
struct LogCall {
  Duration t{};  // since the log's start
  std::string account;
  std::string method;
  std::string object;  // "group/item" or "group"
  std::size_t line = 0;
};

struct Workload {
  // "all_pairs": every account × every item, in `order`; otherwise `tasks`
  // tasks, each an account drawn uniformly and an item drawn by Zipf(zipf).
  bool all_pairs = true;
  std::uint64_t tasks = 0;
  double zipf = 0.0;
  // all_pairs order: "rotated" (account a starts at channel a mod groups),
  // "same" (every account walks the items in the same order).
  std::string order = "rotated";
  std::vector<std::string> steps;  // methods called per task, in order
  std::uint64_t workers = 10;
};

struct Scenario {
  std::string name;
  std::uint64_t seed = 42;
  AccountKind account_kind = AccountKind::kUser;
  std::vector<std::string> accounts;
  std::uint64_t groups = 0;
  std::uint64_t items_per_group = 0;
  std::string group_prefix = "channel";
  std::string item_prefix = "post";
  std::map<std::string, NamespaceDef> namespaces;
  std::map<std::string, MethodDef> methods;
  Workload workload;
  std::vector<LimitRule> upstream_limits;  // what the simulated upstream enforces
  std::vector<LimitRule> pacing;           // callcache's pacing (modes 3, 4)
  std::vector<LimitRule> seeds_limiter;    // the seeds' global limiter (modes 1, 2)
  std::vector<LogCall> log;                // non-empty: replay this instead of `workload`

  std::string group_name(std::uint64_t g) const;
  std::string item_name(std::uint64_t g, std::uint64_t i) const;  // "channel3/post7"
};

// Presets. telegram_user: the per-account per-method intervals the seeds
// measured (get_entity 3 s, get_messages 0.3 s, send_reaction 0.5 s, default
// 0.2 s), a per-account cap of 30 calls/s (burst 30), and a per-channel cap on
// reactions (10/s, burst 5). telegram_bot: Bot API — 30 calls/s per bot
// (burst 30), 1 message/s per chat, 20 messages/min per group chat.
// seeds: the seeds' single global per-method limiter (the same intervals as
// telegram_user, but across all accounts).
std::vector<LimitRule> telegram_user_limits();
std::vector<LimitRule> telegram_bot_limits();
std::vector<LimitRule> seeds_global_limits();

// The seeds' LikeBot task (docs/replay.md): 10 accounts, 5 channels × 10 posts,
// steps get_entity, get_input_entity, get_messages, view, send_reaction.
Scenario builtin_likebot();

// Parses a scenario from YAML text / a file. `origin` prefixes errors.
Result<Scenario> parse_scenario(const std::string& yaml_text, const std::string& origin);
Result<Scenario> load_scenario_file(const std::string& path);

// Parses a JSON-lines call log into scenario.log (see docs/replay.md):
//   {"t": 0.25, "account": "alice", "method": "get_messages", "object": "durov/12"}
// Methods must be declared by the scenario; lines must be in time order.
// Errors name the line: "traffic.jsonl:3: 'method': unknown method 'foo'".
Status parse_call_log(const std::string& text, const std::string& origin, Scenario& scenario);
Status load_call_log(const std::string& path, Scenario& scenario);

// The largest workload a scenario may describe (a replay holds every task
// in memory): accounts, objects (groups x items_per_group) and tasks
// (workload.tasks, or accounts x objects for all_pairs).
inline constexpr std::uint64_t kMaxAccounts = 100'000;
inline constexpr std::uint64_t kMaxObjects = 10'000'000;
inline constexpr std::uint64_t kMaxTasks = 100'000'000;

// Checks cross-references (steps name methods, methods name namespaces ...)
// and the limits above.
Status validate_scenario(const Scenario& s);

}  // namespace callcache::replay
