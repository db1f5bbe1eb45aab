// Internal: the Telegram Bot API preset — which methods are cached, for how
// long and under which key; which methods change which cached answers; which
// methods are paced as sends; which pass straight through.
//
// The preset is data, not code: config/telegram_preset.yaml (read it for the
// schema, every key is commented there). That file is embedded in the
// library at build time (builtin_preset_text()), so the gateway needs no file
// at run time; the main config's `telegram:` section may name another preset
// file and may override any value of it:
//
//   telegram:
//     preset: /etc/callcache/my_preset.yaml   # optional; default: built-in
//     post_write_bypass: 5s
//     ttl: {getChatMember: 30s, getMe: 1d}     # shorthand for reads.<m>.ttl
//     reads:
//       getChat: {ttl: 10m}                    # change one field, keep the rest
//       getFoo:  {namespace: tg_chat, ttl: 1m} # a method the preset lacks
//     writes:
//       setFoo: {invalidates: {getFoo: [chat_id]}}
//     passthrough: [getChatMember]             # moves a method out of reads
//     namespaces:
//       tg_chat: {max_entries: 50000}
//
// Overriding a method keeps its fields not named; naming a method under
// another section (e.g. a read under `passthrough`) moves it there. Every
// error names the full key path and the offending value, e.g.
//   "telegram.reads.getChat.ttl: expected a duration like 300, 300s, ... got 'soon'".
//
// Thread-safety: a Preset is an immutable value once loaded; share it by const
// reference between threads.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/clock.h"
#include "callcache/policy.h"
#include "callcache/status.h"

namespace callcache::gateway::logic {

// A cached read method (getChat, getChatMember ...).
struct ReadMethod {
  std::string name;  // as in the Bot API docs: "getChat"
  std::string ns;    // the cache namespace its answers live in
  Duration ttl{};    // how long an {"ok":true} answer is fresh
  // false: forwarded uncached (set by `cache: false`).
  bool cache = true;
  // Which parameters form the key: all of them (the safe default), or only
  // `key` (sorted, unique) when all_params is false.
  bool all_params = true;
  std::vector<std::string> key;
  // Parameters whose canonical value equals the default are dropped from the
  // key ("scope": {"type":"default"} is the same question as no scope).
  std::map<std::string, std::string, std::less<>> defaults;
  // Negative caching: a 400 answer whose description contains one of
  // `negative_match` (lowercase) is stored for negative_ttl (0 = never).
  Duration negative_ttl{};
  std::vector<std::string> negative_match;
  // Derived when loading: the parameter sets that writes invalidate this read
  // by (sorted; the empty set, "every answer of this bot", is implicit).
  std::vector<std::vector<std::string>> scopes;
  // Where it was defined, for error messages ("reads.getChat").
  std::string origin;
};

// "This write changes answers of `read` whose parameters `by` equal the
// write's." An empty `by`, or a write lacking one of the `by` parameters,
// means every answer of `read` for the bot.
struct InvalidationSpec {
  std::string read;             // read method name (any case)
  std::vector<std::string> by;  // sorted, unique
};

// How a non-read method is paced.
enum class PaceScope : std::uint8_t {
  kNone,  // not paced (writes such as setChatTitle)
  kBot,   // counts against the bot's global budget only (sendChatAction)
  kChat,  // per bot and per chat (sendMessage ...): the chat from `chat_param`
};

// A write or send method.
struct ActionMethod {
  std::string name;
  PaceScope pace = PaceScope::kNone;
  std::string chat_param = "chat_id";
  // A boolean parameter that, when true, marks a paid broadcast (higher
  // limits, paid in Stars). Empty = none.
  std::string paid_param = "allow_paid_broadcast";
  std::vector<InvalidationSpec> invalidates;
  // Overrides Preset::post_write_bypass for this method.
  std::optional<Duration> bypass;
  std::string origin;
};

struct Preset {
  // The namespaces the preset's reads use, with their policies: create the
  // Engine with these (plus any others the gateway needs).
  std::vector<NamespaceSpec> namespaces;
  // After a write, reads it affects skip the cache this long (the Bot API
  // may itself answer stale for a few seconds after a write). 0 = off.
  Duration post_write_bypass{};
  // Bound on remembered post-write windows (PostWriteState capacity).
  std::uint64_t post_write_max_entries = 65536;
  // Unknown methods whose lowercase name starts with one of these are paced
  // per bot (and per chat when they carry chat_id) as sends.
  std::vector<std::string> sending_prefixes;
  // By lowercase method name.
  std::map<std::string, ReadMethod, std::less<>> reads;
  std::map<std::string, ActionMethod, std::less<>> actions;
  // Forwarded uncached, never paced (getUpdates ...): lowercase → name.
  std::map<std::string, std::string, std::less<>> passthrough;
  // Refused with 403 (e.g. logOut on a shared gateway): lowercase → name.
  std::map<std::string, std::string, std::less<>> blocked;

  // Lookups by lowercase method name; nullptr when absent.
  const ReadMethod* find_read(std::string_view method_lower) const;
  const ActionMethod* find_action(std::string_view method_lower) const;
  // The namespace spec named `ns`, or nullptr.
  const NamespaceSpec* find_namespace(std::string_view ns) const;
};

// The text of config/telegram_preset.yaml as embedded at build time.
std::string_view builtin_preset_text();

// Parses a preset document. `origin` (a file name, or "" ) prefixes errors:
// "<origin>: reads.getChat.ttl: ...".
Result<Preset> parse_preset(const YAML::Node& doc, std::string_view origin);
Result<Preset> parse_preset_text(std::string_view yaml_text, std::string_view origin);

// The built-in preset, parsed. Cannot fail unless the embedded file is broken
// (a test guards that).
Result<Preset> builtin_preset();

// Applies an override mapping shaped like a preset document to `preset`
// and re-validates the result. `path` is the mapping's key path ("telegram").
// `ignored_keys` are keys of the mapping that the caller reads itself (e.g.
// the gateway's own telegram.* settings); any other unknown key is an error.
// On error `preset` may be partly modified: discard it.
Status apply_overrides(Preset& preset, const YAML::Node& overrides, std::string_view path,
                       const std::vector<std::string>& ignored_keys = {});

// The `telegram:` section of the main config → the preset to run with: the
// file named by its `preset:` key (or the built-in preset), with the
// section's other keys applied as overrides. A null section = the built-in
// preset unchanged.
Result<Preset> load_telegram_preset(const YAML::Node& telegram_section,
                                    std::string_view path = "telegram",
                                    const std::vector<std::string>& ignored_keys = {});

}  // namespace callcache::gateway::logic
