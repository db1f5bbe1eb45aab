// callcache/rate_limiter.h — paces calls to a rate-limited upstream.
//
// A RateLimiter holds a list of rules of the form "N calls per period for key
// K" (GCRA: a generic cell-rate algorithm, i.e. a token bucket kept as one
// time stamp per key). The key K of a rule is built from the attributes a
// call names (method, account, chat, bot, paid flag) — e.g. "1 per second per
// (bot, chat)" — and a rule may apply to some calls only (a set of methods,
// private or group chats, paid or unpaid calls). A call must pass EVERY rule
// that matches it, and reserves all of them atomically: when one rule says
// "wait", no capacity of the others is consumed unless the call commits to
// that wait.
//
// `penalize()` honours an upstream back-off (HTTP 429 `retry_after`, MTProto
// `FLOOD_WAIT_X`) for exactly the key it concerns (a chat, a method of one
// account, a whole bot): other keys keep flowing.
//
// Memory: a key's state is dropped as soon as it is idle (its next free slot
// is in the past), so keys seen once cost nothing after they go idle.
//
// This header is the interface plus the rule model as plain data;
// make_local_rate_limiter() builds the in-process implementation. A Redis
// implementation (shared by many processes) implements the same interface
// with the same rules.
//
// Thread-safety: every RateLimiter member function may be called from any
// thread concurrently. Rules are fixed at construction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache {

// ---- The rule model (plain data, shared by every implementation) -----------

// What a call is: the attributes rules match on and build keys from.
// The views must stay valid during the call that receives them only.
struct CallAttributes {
  // e.g. "sendMessage", "get_entity"; empty = unknown. Compared ASCII
  // case-insensitively everywhere (rules' methods, keys), as the Bot API does.
  std::string_view method;
  std::string_view account;          // the user account (a tenant id, never a secret)
  std::string_view bot;              // the bot (a tenant id, never a token)
  std::optional<std::int64_t> chat;  // Telegram chat id; < 0 for groups and channels
  bool paid = false;                 // a paid broadcast (Bot API allow_paid_broadcast)
};

// Which attributes make up a rule's key: a bit set of key_scope constants.
// kGlobal (no bit) = one key for all calls the rule matches.
using KeyScope = std::uint8_t;
namespace key_scope {
inline constexpr KeyScope kGlobal = 0;
inline constexpr KeyScope kMethod = 1 << 0;
inline constexpr KeyScope kAccount = 1 << 1;
inline constexpr KeyScope kChat = 1 << 2;
inline constexpr KeyScope kBot = 1 << 3;
inline constexpr KeyScope kPaid = 1 << 4;
inline constexpr KeyScope kAll = 0x1f;
}  // namespace key_scope

// Which chats a rule applies to.
enum class ChatMatch : std::uint8_t {
  kAny,      // any call, with or without a chat
  kPrivate,  // calls with a chat id > 0 (a user's private chat)
  kGroup,    // calls with a chat id < 0 (groups, supergroups, channels)
};

// Which calls a rule applies to, by paid flag.
enum class PaidMatch : std::uint8_t { kAny, kPaid, kUnpaid };

struct Rule {
  std::string name;            // unique, non-empty: names the rule in stats and errors
  std::uint64_t limit = 1;     // N calls ...
  Duration period = std::chrono::seconds(1);  // ... per period (REQUIRES: > 0)
  // Calls admitted back to back before pacing starts (>= 1). With burst 1, any
  // window of length `period` admits at most `limit` calls; with burst b, at
  // most limit + b - 1.
  std::uint64_t burst = 1;
  KeyScope key = key_scope::kGlobal;  // what the rule limits
  // Matching. A rule matches a call when all of these hold (method names in
  // any case):
  std::vector<std::string> methods;         // empty = every method, else one of these
  std::vector<std::string> except_methods;  // the method is none of these
  ChatMatch chat = ChatMatch::kAny;
  PaidMatch paid = PaidMatch::kAny;
  // ... and the call names every attribute in `key` (a rule keyed by chat does
  // not apply to a call without a chat; by method/account/bot: non-empty).
};

// True if `rule` applies to `call` (see Rule).
bool rule_matches(const Rule& rule, const CallAttributes& call);

// The time between two calls of one key: ceil(period / limit), rounded up so
// that `limit` calls never fit in less than `period`.
Duration emission_interval(const Rule& rule);

// Appends to `out` an unambiguous key for `call` under the parts in `scope`
// (length-prefixed strings, so no attribute value can forge another key).
// `prefix` (e.g. a rule name) is written first.
// REQUIRES: the call names every attribute in `scope`.
void append_scope_key(std::string& out, std::string_view prefix, KeyScope scope,
                      const CallAttributes& call);

// Checks a rule list: names non-empty and unique, limit >= 1, period > 0,
// burst >= 1, known scope bits, no method both in methods and except_methods.
// The error names the rule and the field.
Status validate_rules(const std::vector<Rule>& rules);

// Methods of the Telegram Bot API that send a message to a chat (sendMessage,
// sendPhoto, copyMessage, forwardMessage ...): what the Bot API preset paces.
const std::vector<std::string>& telegram_send_methods();

// The Telegram Bot API limits: 30 messages/s per bot (unpaid), 1000/s per bot
// for paid broadcasts, 1 message/s per private chat, 20 messages/min per group
// (chat id < 0). Burst 1: no window of one period ever holds more.
std::vector<Rule> telegram_bot_preset();

// The seeds' per-method minimum intervals for a Telegram user account
// (MTProto), one key per (account, method): get_entity 3 s, get_messages
// 0.3 s, send_reaction 0.5 s, send_message 0.5 s, any other method 0.2 s.
std::vector<Rule> telegram_user_preset();

// The seeds' own design, for comparison only: the same intervals but ONE key
// per method across every account (all workers queue behind each other).
std::vector<Rule> seeds_global_preset();

// ---- Statistics -------------------------------------------------------------

// Counters of one rule since the limiter was built. "Own wait" is the wait
// this rule alone demanded of a call (the call waits for the largest).
struct RuleStats {
  std::string name;
  std::uint64_t calls = 0;               // admitted calls the rule matched
  std::uint64_t waits = 0;               // admitted calls the rule delayed (own wait > 0)
  Duration total_wait{0};                // sum of own waits of admitted calls
  Duration max_wait{0};                  // largest own wait of an admitted call
  std::uint64_t deadline_refusals = 0;   // calls refused: own wait > the caller's budget
                                         // (try_acquire counts with a budget of 0)
  std::uint64_t penalties = 0;           // penalize() calls on this rule's key scope
  std::uint64_t keys = 0;                // keys tracked now (not idle)
};

struct RateLimiterStats {
  // One row per rule, in rule order, then a row named "penalty" that counts
  // every penalize() call and the waits and refusals penalties caused.
  std::vector<RuleStats> rules;
  std::uint64_t tracked_keys = 0;       // keys held in memory (rules + penalties)
  std::uint64_t active_penalties = 0;   // penalties not yet over

  // {"tracked_keys":N,"active_penalties":N,"rules":{"<name>":{"calls":N,...}}};
  // durations in seconds (floating point).
  std::string to_json() const;
  // Prometheus text format, e.g. callcache_ratelimit_calls_total{rule="per_chat"} 3
  std::string to_prometheus() const;
};

// ---- The interface -----------------------------------------------------------

// The outcome of try_acquire().
struct TryAcquireResult {
  bool admitted = false;  // true: the call may proceed now; its slot is reserved
  Duration wait{0};       // when not admitted: the wait that would be needed
  // When not admitted: which row of stats().rules demanded that wait — an
  // index into rules(), or rules().size() for the "penalty" row.
  std::size_t binding_rule = 0;
};

class RateLimiter {
 public:
  using Callback = std::function<void(Status)>;
  static constexpr Duration kNoDeadline = Duration::max();

  virtual ~RateLimiter() = default;

  // Reserves a slot for `call` and blocks the calling thread until it starts.
  // Returns OK when the call may proceed; kDeadlineExceeded (nothing reserved)
  // when the wait needed exceeds `max_wait`. A call no rule matches proceeds
  // at once. Sleeps on the limiter's clock (a ManualClock must be advanced by
  // another thread).
  virtual Status acquire(const CallAttributes& call, Duration max_wait = kNoDeadline) = 0;

  // Never waits: admits and reserves the call if every rule lets it start now;
  // otherwise reserves nothing and returns the wait it would need.
  virtual TryAcquireResult try_acquire(const CallAttributes& call) = 0;

  // Reserves a slot and returns the wait until it starts without waiting;
  // the caller must not call upstream before that wait is over (an event loop
  // arms its own timer). kDeadlineExceeded (nothing reserved) if the wait
  // exceeds `max_wait`.
  virtual Result<Duration> reserve(const CallAttributes& call, Duration max_wait = kNoDeadline) = 0;

  // Completion-callback form, no thread parked: reserves a slot and runs
  // `done(OK)` on the limiter's Scheduler when it starts, or
  // `done(kDeadlineExceeded)` (nothing reserved) at once on the Scheduler.
  // `done` never runs inside this call. Returns an error, without calling
  // `done`, when the limiter has no Scheduler (kInvalidArgument) or the
  // Scheduler is shut down (kShutdown).
  virtual Status acquire_async(const CallAttributes& call, Duration max_wait, Callback done) = 0;

  // Blocks the key of `call` under `scope` (e.g. key_scope::kBot |
  // key_scope::kChat for one chat of one bot; kAccount | kMethod for one
  // method of one account; kBot for the whole bot) until now + retry_after:
  // every call that agrees with `call` on those attributes waits for it, on
  // top of its rules. Extends, never shortens, a penalty already in force.
  // REQUIRES: `call` names every attribute in `scope`; retry_after >= 0
  // (kInvalidArgument otherwise).
  virtual Status penalize(const CallAttributes& call, KeyScope scope, Duration retry_after) = 0;

  // A snapshot of the counters.
  virtual RateLimiterStats stats() const = 0;

  // Drops the state of idle keys now (also done lazily and, with a
  // Scheduler, periodically). Returns the keys dropped.
  virtual std::size_t sweep_idle() = 0;

  // The rules this limiter enforces.
  virtual const std::vector<Rule>& rules() const = 0;
};

struct RateLimiterOptions {
  std::vector<Rule> rules;
  // Time source; nullptr = default_clock(). Must outlive the limiter.
  const Clock* clock = nullptr;
  // Runs acquire_async() callbacks and the periodic idle sweep; nullptr = no
  // async form, lazy sweeping only. Must outlive the limiter and use `clock`.
  Scheduler* scheduler = nullptr;
  // Independent lock stripes for keys (>= 1). A call locks the stripes of its
  // keys in ascending order, so concurrent calls on distinct keys rarely meet.
  std::size_t shards = 16;
  // How often idle keys are dropped (each stripe lazily on access, and by a
  // Scheduler task when there is a Scheduler). Must be > 0.
  Duration sweep_interval = std::chrono::seconds(1);
};

// The in-process implementation. kInvalidArgument naming the option or rule
// when the options are bad.
Result<std::unique_ptr<RateLimiter>> make_local_rate_limiter(RateLimiterOptions options);

}  // namespace callcache
