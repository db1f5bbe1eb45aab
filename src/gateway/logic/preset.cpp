#include "preset.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "canonical.h"
#include "request.h"
#include "yaml_reader.h"

namespace callcache::gateway::logic {
namespace {

using config::MapReader;

bool letters_only(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_ascii_alpha(c); });
}

bool param_name_ok(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_ascii_alnum(c) || c == '_'; });
}

std::vector<std::string> sorted_unique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// Reads a list of parameter names at `key`, checking each name.
void param_list(MapReader& r, std::string_view key, std::vector<std::string>& out) {
  std::vector<std::string> v;
  if (!r.has(key)) return;  // MapReader::string_list rejects an absent key
  r.string_list(key, v);
  for (const auto& p : v) {
    if (!param_name_ok(p)) {
      return r.fail(key, "'" + p + "' is not a parameter name (letters, digits, '_')");
    }
  }
  out = sorted_unique(std::move(v));
}

void parse_policy(MapReader& r, NamespacePolicy& p) {
  r.duration("ttl", p.ttl, /*allow_zero=*/false);
  r.count("max_entries", p.max_entries, /*allow_zero=*/false);
  r.bytes("max_bytes", p.max_bytes);
  r.count("max_entries_per_tenant", p.max_entries_per_tenant);
  r.choice("eviction", p.eviction,
           {{"lru", EvictionPolicy::kLru}, {"s3fifo", EvictionPolicy::kS3Fifo},
            {"wtinylfu", EvictionPolicy::kWTinyLfu}, {"adaptive", EvictionPolicy::kAdaptive}});
  r.duration("negative_ttl", p.negative_ttl);
  r.duration("stale_ttl", p.stale_ttl);
  r.duration("refresh_ahead", p.refresh_ahead);
  r.number("jitter", p.jitter, 0.0, 0.99);
  r.duration("load_timeout", p.load_timeout);
  r.boolean("shared", p.shared);
}

void parse_read(MapReader& r, ReadMethod& m, const RequestLimits& limits) {
  r.string("namespace", m.ns);
  r.duration("ttl", m.ttl, /*allow_zero=*/false);
  r.boolean("cache", m.cache);
  if (r.has("key")) {
    YAML::Node k = r.child("key");
    if (k.IsScalar() && k.Scalar() == "all") {
      m.all_params = true;
      m.key.clear();
    } else if (k.IsSequence()) {
      m.all_params = false;
      param_list(r, "key", m.key);
    } else {
      r.fail("key", "expected a list of parameter names or 'all'");
    }
  }
  if (r.has("defaults")) {
    MapReader d = r.map("defaults");
    m.defaults.clear();
    for (const std::string& p : d.keys()) {
      std::string value;
      d.string(p, value, /*allow_empty=*/true);
      if (!param_name_ok(p)) d.fail(p, "not a parameter name (letters, digits, '_')");
      m.defaults[p] = canonical_text_value(value, limits);
    }
    r.merge(d.finish());
  }
  if (r.has("negative")) {
    MapReader n = r.map("negative");
    n.duration("ttl", m.negative_ttl);
    std::vector<std::string> match;
    if (n.has("match")) n.string_list("match", match);
    if (n.has("match")) {
      m.negative_match.clear();
      for (auto& s : match) {
        if (s.empty()) n.fail("match", "an empty pattern would match every error");
        m.negative_match.push_back(ascii_lower(s));
      }
    }
    if (n.error().ok() && m.negative_ttl > Duration::zero() && m.negative_match.empty()) {
      n.fail("match", "negative caching needs at least one description pattern");
    }
    r.merge(n.finish());
  }
}

void parse_action(MapReader& r, ActionMethod& m) {
  r.choice("pace", m.pace,
           {{"none", PaceScope::kNone}, {"bot", PaceScope::kBot}, {"chat", PaceScope::kChat}});
  r.string("chat", m.chat_param);
  r.string("paid", m.paid_param, /*allow_empty=*/true);
  if (r.has("chat") && !param_name_ok(m.chat_param)) r.fail("chat", "not a parameter name");
  if (r.has("paid") && !m.paid_param.empty() && !param_name_ok(m.paid_param)) {
    r.fail("paid", "not a parameter name");
  }
  if (r.has("bypass")) {
    Duration d{};
    r.duration("bypass", d);
    m.bypass = d;
  }
  if (r.has("invalidates")) {
    MapReader inv = r.map("invalidates");
    m.invalidates.clear();
    for (const std::string& read : inv.keys()) {
      InvalidationSpec spec;
      spec.read = read;
      param_list(inv, read, spec.by);
      m.invalidates.push_back(std::move(spec));
    }
    r.merge(inv.finish());
  }
}

// Where each method is defined within one document, to refuse a method named
// in two sections of the same document.
using Seen = std::map<std::string, std::string, std::less<>>;

bool claim(MapReader& section, const std::string& name, Seen& seen) {
  if (!letters_only(name)) {
    section.fail(name, "method names are letters only");
    return false;
  }
  std::string lower = ascii_lower(name);
  auto [it, inserted] = seen.emplace(lower, section.path_of(name));
  if (!inserted) {
    section.fail(name, "method '" + name + "' is already defined at " + it->second);
    return false;
  }
  return true;
}

// The name a method keeps: its spelling where the preset already defines it
// (an override may spell it in any case: "getchat" overrides getChat, whose
// name stays "getChat" in keys, tags and metrics), else `name`.
std::string canonical_name(const Preset& p, const std::string& lower, const std::string& name) {
  if (const auto* r = p.find_read(lower)) return r->name;
  if (const auto* a = p.find_action(lower)) return a->name;
  if (auto it = p.passthrough.find(lower); it != p.passthrough.end()) return it->second;
  if (auto it = p.blocked.find(lower); it != p.blocked.end()) return it->second;
  return name;
}

// Moves `lower` out of every section but the one it is being defined in.
void remove_elsewhere(Preset& p, const std::string& lower, int keep) {
  if (keep != 0) p.reads.erase(lower);
  if (keep != 1) p.actions.erase(lower);
  if (keep != 2) p.passthrough.erase(lower);
  if (keep != 3) p.blocked.erase(lower);
}

void apply_document(Preset& p, MapReader& root) {
  const RequestLimits limits;
  Seen seen;
  if (root.has("namespaces")) {
    MapReader nss = root.map("namespaces");
    for (const std::string& name : nss.keys()) {
      auto it = std::find_if(p.namespaces.begin(), p.namespaces.end(),
                             [&](const NamespaceSpec& s) { return s.name == name; });
      if (it == p.namespaces.end()) {
        p.namespaces.push_back(NamespaceSpec{name, NamespacePolicy{}});
        it = std::prev(p.namespaces.end());
      }
      MapReader pr = nss.map(name);
      parse_policy(pr, it->policy);
      Status s = pr.finish();
      if (s.ok()) {
        Status v = validate(name, it->policy);
        if (!v.ok()) s = Status::invalid_argument(nss.path_of(name) + ": " + v.message());
      }
      nss.merge(s);
    }
    root.merge(nss.finish());
  }
  root.duration("post_write_bypass", p.post_write_bypass);
  root.count("post_write_max_entries", p.post_write_max_entries, /*allow_zero=*/false);
  if (root.has("sending_prefixes")) {
    std::vector<std::string> v;
    root.string_list("sending_prefixes", v);
    p.sending_prefixes.clear();
    for (const auto& s : v) {
      if (!letters_only(s)) root.fail("sending_prefixes", "'" + s + "' is not letters only");
      p.sending_prefixes.push_back(ascii_lower(s));
    }
  }
  if (root.has("reads")) {
    MapReader reads = root.map("reads");
    for (const std::string& name : reads.keys()) {
      if (!claim(reads, name, seen)) break;
      std::string lower = ascii_lower(name);
      std::string canonical = canonical_name(p, lower, name);
      remove_elsewhere(p, lower, 0);
      ReadMethod& m = p.reads[lower];
      m.name = std::move(canonical);
      m.origin = reads.path_of(name);
      MapReader r = reads.map(name);
      parse_read(r, m, limits);
      reads.merge(r.finish());
    }
    root.merge(reads.finish());
  }
  // Shorthand for the most common override: ttl: {getChat: 10m, ...}.
  if (root.has("ttl")) {
    MapReader ttls = root.map("ttl");
    for (const std::string& name : ttls.keys()) {
      auto it = p.reads.find(ascii_lower(name));
      if (it == p.reads.end()) {
        ttls.fail(name, "not a read method of the preset");
        break;
      }
      ttls.duration(name, it->second.ttl, /*allow_zero=*/false);
    }
    root.merge(ttls.finish());
  }
  for (std::string_view section_name : {"writes", "sends"}) {
    if (!root.has(section_name)) continue;
    MapReader section = root.map(section_name);
    for (const std::string& name : section.keys()) {
      if (!claim(section, name, seen)) break;
      std::string lower = ascii_lower(name);
      std::string canonical = canonical_name(p, lower, name);
      remove_elsewhere(p, lower, 1);
      auto [it, inserted] = p.actions.try_emplace(lower);
      ActionMethod& m = it->second;
      if (inserted) m.pace = section_name == "sends" ? PaceScope::kChat : PaceScope::kNone;
      m.name = std::move(canonical);
      m.origin = section.path_of(name);
      MapReader r = section.map(name);
      parse_action(r, m);
      section.merge(r.finish());
    }
    root.merge(section.finish());
  }
  for (std::string_view list_name : {"passthrough", "blocked"}) {
    if (!root.has(list_name)) continue;
    std::vector<std::string> names;
    root.string_list(list_name, names);
    const int keep = list_name == "passthrough" ? 2 : 3;
    auto& target = keep == 2 ? p.passthrough : p.blocked;
    for (const std::string& name : names) {
      if (!letters_only(name)) {
        root.fail(list_name, "'" + name + "' is not a method name (letters only)");
        break;
      }
      std::string lower = ascii_lower(name);
      auto [it, inserted] = seen.emplace(lower, root.path_of(list_name));
      if (!inserted) {
        root.fail(list_name, "method '" + name + "' is already defined at " + it->second);
        break;
      }
      std::string canonical = canonical_name(p, lower, name);
      remove_elsewhere(p, lower, keep);
      target[lower] = std::move(canonical);
    }
  }
}

// Checks cross-references and derives ReadMethod::scopes.
Status finalize(Preset& p) {
  for (auto& [lower, m] : p.reads) {
    if (m.ns.empty()) return Status::invalid_argument(m.origin + ".namespace: is required");
    const NamespaceSpec* ns = p.find_namespace(m.ns);
    if (!ns) {
      std::string known;
      for (const auto& s : p.namespaces) known += (known.empty() ? "" : ", ") + s.name;
      return Status::invalid_argument(m.origin + ".namespace: unknown namespace '" + m.ns +
                                      "' (declared: " + known + ")");
    }
    if (m.ttl <= Duration::zero()) m.ttl = ns->policy.ttl;
    m.scopes.clear();
  }
  for (auto& [lower, a] : p.actions) {
    for (const InvalidationSpec& inv : a.invalidates) {
      const std::string read_lower = ascii_lower(inv.read);
      auto it = p.reads.find(read_lower);
      if (it == p.reads.end()) {
        // A read moved to another section by an override caches nothing:
        // nothing to invalidate. A name known nowhere is a typo.
        if (p.passthrough.contains(read_lower) || p.blocked.contains(read_lower) ||
            p.actions.contains(read_lower)) {
          continue;
        }
        return Status::invalid_argument(a.origin + ".invalidates." + inv.read +
                                        ": not a read method of the preset");
      }
      if (!inv.by.empty()) it->second.scopes.push_back(inv.by);
    }
  }
  for (auto& entry : p.reads) {
    auto& v = entry.second.scopes;
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  return Status();
}

Status with_origin(const Status& s, std::string_view origin) {
  if (s.ok() || origin.empty()) return s;
  return Status(s.code(), std::string(origin) + ": " + s.message());
}

}  // namespace

const ReadMethod* Preset::find_read(std::string_view method_lower) const {
  auto it = reads.find(method_lower);
  return it == reads.end() ? nullptr : &it->second;
}

const ActionMethod* Preset::find_action(std::string_view method_lower) const {
  auto it = actions.find(method_lower);
  return it == actions.end() ? nullptr : &it->second;
}

const NamespaceSpec* Preset::find_namespace(std::string_view ns) const {
  for (const auto& s : namespaces) {
    if (s.name == ns) return &s;
  }
  return nullptr;
}

Result<Preset> parse_preset(const YAML::Node& doc, std::string_view origin) {
  Preset p;
  MapReader root(doc, "");
  apply_document(p, root);
  Status s = root.finish();
  if (s.ok()) s = finalize(p);
  if (!s.ok()) return with_origin(s, origin);
  return p;
}

Result<Preset> parse_preset_text(std::string_view yaml_text, std::string_view origin) {
  auto doc = config::load_string(std::string(yaml_text));
  if (!doc.ok()) return with_origin(doc.status(), origin);
  return parse_preset(*doc, origin);
}

Result<Preset> builtin_preset() {
  return parse_preset_text(builtin_preset_text(), "built-in telegram_preset.yaml");
}

Status apply_overrides(Preset& preset, const YAML::Node& overrides, std::string_view path,
                       const std::vector<std::string>& ignored_keys) {
  MapReader root(overrides, std::string(path));
  for (const auto& k : ignored_keys) (void)root.child(k);
  apply_document(preset, root);
  Status s = root.finish();
  if (!s.ok()) return s;
  return finalize(preset);
}

Result<Preset> load_telegram_preset(const YAML::Node& section, std::string_view path,
                                    const std::vector<std::string>& ignored_keys) {
  std::string file;
  {
    MapReader probe(section, std::string(path));
    probe.string("preset", file);
    if (!probe.error().ok()) return probe.error();
  }
  Result<Preset> base = Status::internal("unset");
  if (file.empty()) {
    base = builtin_preset();
  } else {
    auto doc = config::load_file(file);
    if (!doc.ok()) {
      return Status(doc.status().code(), std::string(path) + ".preset: " + doc.status().message());
    }
    base = parse_preset(*doc, file);
  }
  if (!base.ok()) return base;
  std::vector<std::string> ignored = ignored_keys;
  ignored.push_back("preset");
  Status s = apply_overrides(*base, section, path, ignored);
  if (!s.ok()) return s;
  return base;
}

}  // namespace callcache::gateway::logic
