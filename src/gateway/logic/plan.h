// Internal: what the gateway does with one Bot API call — the pure decision,
// no I/O. The gateway's handler is, in outline:
//
//   auto call = logic::parse_telegram(view, tenant_key);
//   if (!call.ok()) → reply http_status_of(call.status()), error_json(call.status())
//   auto p = logic::plan(*call, preset, clock.now(), post_write_state);
//   std::visit(overloaded{
//     [&](const CachedRead& r) {
//       if (r.bypass) → forward; do not store                (post-write window)
//       else          → engine lookup (r.ns, r.tenant, r.key); on a miss
//                       forward (coalesced per key), then
//                       classify_answer(r, status, body) decides:
//                         kStore → put with PutOptions{ttl = d.ttl, tags = r.tags}
//                         kStoreNegative → the same with d.ttl (a short one)
//                         kDoNotStore → just relay it },
//     [&](const PacedSend& s) { limiter.acquire(s.pacing...); forward;
//                               apply(s.invalidations) },
//     [&](const Write& w) { forward; apply(w.invalidations) },
//     [&](const Passthrough& t) { if (t.pacing) acquire; forward (stream) },
//     [&](const Reject& r) { reply r.status, r.json } }, p);
//
// "apply(invalidations)" = engine.invalidate(ns, tenant, key) for each of
// .keys, engine.invalidate_tag(tag) for each of .tags — after the upstream
// answered (whatever it answered: a write that timed out may have happened),
// and then post_write_state.mark(.bypass_scopes, now + .bypass_window) again
// so the window runs from the write's completion. plan() already marked it
// once, so reads racing the in-flight write bypass too.
//
// Upstream 429s: retry_after(status, body, header) → how long to penalise
// the call's pacing key (PacedSend::pacing / Passthrough::pacing).
//
// Keys, tags and bypass scopes contain the tenant id (hex) and parameter
// values, never the bot token. Tags look like "tg:<tenant hex>:<method>" and
// "tg:<tenant hex>:<method>:<param>=<value>&...": a bot's writes can only
// ever invalidate its own answers.
//
// Thread-safety: plan() and the answer helpers are pure except for the
// PostWriteState they are given, which is thread-safe. Plans hold a pointer
// into the Preset (CachedRead::method): the Preset must outlive them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "callcache/clock.h"
#include "callcache/tenant.h"
#include "post_write.h"
#include "preset.h"
#include "telegram_call.h"

namespace callcache::gateway::logic {

// Rate-limiter attributes of a paced call.
struct Pacing {
  TenantId bot;
  // kBot: count against the bot's budget only. kChat: also the chat's.
  PaceScope scope = PaceScope::kBot;
  // The target chat, canonical ("-100123", "@channel"); empty when the call
  // names none (then only the bot's budget applies, whatever `scope`).
  std::string chat_id;
  // Groups, supergroups and channels (id < 0, or a public @username) have
  // the slower per-group limit (20/min); private chats 1/s.
  bool is_group = false;
  // allow_paid_broadcast=true: the bot pays for higher limits.
  bool paid = false;
};

// One exact cache entry to drop: Engine::invalidate(ns, tenant, key).
struct KeyInvalidation {
  std::string ns;
  TenantId tenant;
  std::string key;
  friend bool operator==(const KeyInvalidation&, const KeyInvalidation&) = default;
};

// What a write changes.
struct Invalidations {
  std::vector<KeyInvalidation> keys;  // drop exactly these
  std::vector<std::string> tags;      // Engine::invalidate_tag each
  // PostWriteState scopes to mark until completion + bypass_window
  // (empty when the window is 0).
  std::vector<std::string> bypass_scopes;
  Duration bypass_window{};
  bool empty() const noexcept { return keys.empty() && tags.empty(); }
};

// A cacheable read.
struct CachedRead {
  const ReadMethod* method = nullptr;  // into the Preset
  std::string ns;
  TenantId tenant;
  // "getChat?chat_id=-100123": method name, '?', the key parameters.
  std::string key;
  Duration ttl{};           // for an {"ok":true} answer
  Duration negative_ttl{};  // for a matching error answer (0 = none)
  // Tags to store the answer with (PutOptions::tags).
  std::vector<std::string> tags;
  // Inside a post-write window: skip the cache lookup, forward, and do not
  // store the answer.
  bool bypass = false;
};

// A paced call (a message): acquire `pacing`, forward, apply invalidations.
// The call may be a multipart upload (TelegramCall::multipart): stream it.
struct PacedSend {
  std::string method;
  Pacing pacing;
  Invalidations invalidations;
};

// A call that changes cached answers; not paced.
struct Write {
  std::string method;
  Invalidations invalidations;
};

// Forward as is, uncached (getUpdates, uploads to reads, unknown methods,
// file downloads). Pace first when `pacing` is set (unknown sending methods).
struct Passthrough {
  std::string method;  // empty for file downloads
  std::string reason;  // for logs and metrics: "passthrough method", "unknown method", ...
  std::optional<Pacing> pacing;
};

// Answer the client directly.
struct Reject {
  int status = 400;
  std::string description;
  std::string json;  // Bot API shape: {"ok":false,"error_code":...,"description":...}
};

using Plan = std::variant<CachedRead, PacedSend, Write, Passthrough, Reject>;

// Decides what to do with `call`. For a write (or a send with
// invalidations) it also opens the post-write window in `state` at `now`;
// for a read it consults it. Never fails: what cannot be planned is a
// Passthrough or a Reject.
Plan plan(const TelegramCall& call, const Preset& preset, TimePoint now, PostWriteState& state);

// True iff `body` is a JSON object whose top-level "ok" is true (the Bot
// API's success shape). Validates the whole document without building it.
bool cacheable_answer(std::string_view body);

// True iff `body` is a whole JSON document whose top level is an object —
// the shape of every Bot API answer, success or error. An upstream answer
// to a method call that is not (an HTML error page from a proxy, a body cut
// short) is an upstream failure, not an answer to relay.
bool bot_api_answer(std::string_view body);

enum class AnswerAction : std::uint8_t {
  kStore,          // an {"ok":true} answer: store for ttl
  kStoreNegative,  // a 400 answer the preset caches negatively: store for ttl
  kDoNotStore,     // anything else (and every answer while read.bypass)
};
struct AnswerDecision {
  AnswerAction action = AnswerAction::kDoNotStore;
  Duration ttl{};
};
// What to do with the upstream's answer to `read`.
AnswerDecision classify_answer(const CachedRead& read, int http_status, std::string_view body);

// For an upstream 429 (HTTP status or "error_code":429 in the body): how long
// to back off, from the body's parameters.retry_after (seconds) or else the
// Retry-After header (seconds). nullopt when the answer is not a 429 or says
// nothing usable (the caller then applies its own default).
std::optional<Duration> retry_after(int http_status, std::string_view body,
                                    std::optional<std::string_view> retry_after_header);

// The tag every cached answer of `method` for `tenant` carries
// ("tg:<tenant hex>:<method name>"), e.g. for an admin "drop all getChat of
// this bot" action.
std::string method_tag(TenantId tenant, std::string_view method_name);

}  // namespace callcache::gateway::logic
