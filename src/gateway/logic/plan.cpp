#include "plan.h"

#include <algorithm>
#include <charconv>

#include "canonical.h"
#include "request.h"

namespace callcache::gateway::logic {
namespace {

// Keys longer than this are not cached (the engine's own bound is 64 KiB).
constexpr std::size_t kMaxKeyBytes = 16 * 1024;

// The call's parameters with `read`'s defaults dropped (a default value is
// the same question as no value).
Params without_defaults(const Params& params, const ReadMethod& read) {
  if (read.defaults.empty()) return params;
  Params out = params;
  for (const auto& [name, value] : read.defaults) {
    const std::string* v = out.find(name);
    if (v && *v == value) out.erase(name);
  }
  return out;
}

std::string scope_id(const std::string& method_tag_text, const Params& params,
                     const std::vector<std::string>& by) {
  return method_tag_text + ":" + key_string(params, by);
}

bool has_all(const Params& params, const std::vector<std::string>& names) {
  return std::all_of(names.begin(), names.end(),
                     [&](const std::string& n) { return params.find(n) != nullptr; });
}

bool truthy(const std::string* v) { return v && (ascii_iequals(*v, "true") || *v == "1"); }

Pacing pacing_for(const TelegramCall& call, PaceScope scope, std::string_view chat_param,
                  std::string_view paid_param) {
  Pacing p;
  p.bot = call.tenant;
  p.scope = scope;
  if (scope == PaceScope::kChat) {
    if (const std::string* chat = call.params.find(chat_param)) {
      p.chat_id = *chat;
      p.is_group = !chat->empty() && (chat->front() == '-' || chat->front() == '@');
    }
  }
  if (!paid_param.empty()) p.paid = truthy(call.params.find(paid_param));
  return p;
}

Invalidations invalidations_for(const TelegramCall& call, const ActionMethod& action,
                                const Preset& preset) {
  Invalidations inv;
  const std::string hex = to_hex(call.tenant);
  for (const InvalidationSpec& spec : action.invalidates) {
    const ReadMethod* read = preset.find_read(ascii_lower(spec.read));
    if (!read) continue;  // finalize() guarantees presence; be safe anyway
    const std::string wide = "tg:" + hex + ":" + read->name;
    Params params = without_defaults(call.params, *read);
    if (spec.by.empty() || !has_all(params, spec.by)) {
      // Every answer of this read for the bot.
      inv.tags.push_back(wide);
      inv.bypass_scopes.push_back(wide);
      continue;
    }
    std::string scope = scope_id(wide, params, spec.by);
    if (!read->all_params && read->key == spec.by) {
      inv.keys.push_back({read->ns, call.tenant, read->name + "?" + key_string(params, spec.by)});
    } else {
      inv.tags.push_back(scope);
    }
    inv.bypass_scopes.push_back(std::move(scope));
  }
  auto dedupe = [](std::vector<std::string>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  };
  dedupe(inv.tags);
  dedupe(inv.bypass_scopes);
  inv.bypass_window = action.bypass.value_or(preset.post_write_bypass);
  if (inv.bypass_window <= Duration::zero()) inv.bypass_scopes.clear();
  return inv;
}

Plan plan_read(const TelegramCall& call, const ReadMethod& read, TimePoint now,
               const PostWriteState& state) {
  if (!read.cache) return Passthrough{read.name, "caching disabled", std::nullopt};
  if (call.multipart) return Passthrough{read.name, "multipart body", std::nullopt};
  Params copy;  // only when defaults must be dropped (the common read has none)
  if (!read.defaults.empty()) copy = without_defaults(call.params, read);
  const Params& params = read.defaults.empty() ? call.params : copy;
  CachedRead r;
  r.method = &read;
  r.ns = read.ns;
  r.tenant = call.tenant;
  r.key = read.name + "?" + (read.all_params ? key_string(params) : key_string(params, read.key));
  if (r.key.size() > kMaxKeyBytes) return Passthrough{read.name, "key too long", std::nullopt};
  r.ttl = read.ttl;
  r.negative_ttl = read.negative_ttl;
  std::string wide = method_tag(call.tenant, read.name);
  const bool any_window = state.any_open(now);
  bool bypass = any_window && state.bypassing(wide, now);
  for (const auto& scope : read.scopes) {
    // Exact-key scopes are invalidated by key; the others need a tag.
    const bool tagged = read.all_params || read.key != scope;
    if (!tagged && !any_window) continue;
    std::string id = scope_id(wide, params, scope);
    if (!bypass && any_window && state.bypassing(id, now)) bypass = true;
    if (tagged) r.tags.push_back(std::move(id));
  }
  r.tags.push_back(std::move(wide));
  r.bypass = bypass;
  return r;
}

Plan plan_action(const TelegramCall& call, const ActionMethod& action, const Preset& preset,
                 TimePoint now, PostWriteState& state) {
  Invalidations inv = invalidations_for(call, action, preset);
  if (!inv.bypass_scopes.empty()) state.mark(inv.bypass_scopes, now + inv.bypass_window);
  if (action.pace == PaceScope::kNone) return Write{action.name, std::move(inv)};
  return PacedSend{action.name, pacing_for(call, action.pace, action.chat_param, action.paid_param),
                   std::move(inv)};
}

}  // namespace

std::string method_tag(TenantId tenant, std::string_view method_name) {
  return "tg:" + to_hex(tenant) + ":" + std::string(method_name);
}

Plan plan(const TelegramCall& call, const Preset& preset, TimePoint now, PostWriteState& state) {
  if (call.kind == TelegramCall::Kind::kFile) {
    return Passthrough{"", "file download", std::nullopt};
  }
  const std::string& m = call.method_lower;
  if (auto it = preset.blocked.find(m); it != preset.blocked.end()) {
    std::string why = "Forbidden: method " + it->second + " is blocked by the gateway";
    return Reject{403, why, error_json(403, why)};
  }
  if (auto it = preset.passthrough.find(m); it != preset.passthrough.end()) {
    return Passthrough{it->second, "passthrough method", std::nullopt};
  }
  if (const ReadMethod* read = preset.find_read(m)) return plan_read(call, *read, now, state);
  if (const ActionMethod* action = preset.find_action(m)) {
    return plan_action(call, *action, preset, now, state);
  }
  for (const std::string& prefix : preset.sending_prefixes) {
    if (m.starts_with(prefix)) {
      return Passthrough{call.method, "unknown sending method",
                         pacing_for(call, PaceScope::kChat, "chat_id", "allow_paid_broadcast")};
    }
  }
  return Passthrough{call.method, "unknown method", std::nullopt};
}

}  // namespace callcache::gateway::logic
