#include "rules.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "yaml_reader.h"

namespace callcache::gateway::logic {
namespace {

using config::MapReader;

constexpr int kMatchBudget = 20000;  // steps per match attempt (bounds backtracking)

bool name_char(char c) { return is_ascii_alnum(c) || c == '_'; }

// A rule's name and match text become parts of cache keys and tags, which are
// single-line text (invalidation-marker keys, log lines): no control bytes.
bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// Fails `key` of `r` when `value` holds a control byte.
void reject_control(MapReader& r, const char* key, std::string_view value) {
  if (r.error().ok() && has_control(value)) {
    r.fail(key, "contains a control character (shown as '?'): '" + quote_for_error(value) + "'");
  }
}

bool method_ok(std::string_view m) {
  if (m == "*") return true;
  if (m.empty() || m.size() > 16) return false;
  return std::all_of(m.begin(), m.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// "GET   /a" → ("GET", "/a"); false if not two words.
bool split_match(std::string_view text, std::string& method, std::string& path) {
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  std::size_t i = 0;
  while (i < text.size() && is_space(text[i])) ++i;
  std::size_t m0 = i;
  while (i < text.size() && !is_space(text[i])) ++i;
  method = std::string(text.substr(m0, i - m0));
  while (i < text.size() && is_space(text[i])) ++i;
  std::size_t p0 = i;
  while (i < text.size() && !is_space(text[i])) ++i;
  path = std::string(text.substr(p0, i - p0));
  while (i < text.size() && is_space(text[i])) ++i;
  return !method.empty() && !path.empty() && i == text.size();
}

bool match_from(const std::vector<PatternToken>& toks, std::size_t ti, std::string_view path,
                std::size_t pi, std::vector<std::string_view>& caps, int& budget) {
  if (--budget < 0) return false;
  if (ti == toks.size()) return pi == path.size();
  const PatternToken& t = toks[ti];
  switch (t.kind) {
    case PatternToken::Kind::kLiteral:
      return path.substr(pi).starts_with(t.text) &&
             match_from(toks, ti + 1, path, pi + t.text.size(), caps, budget);
    case PatternToken::Kind::kParam: {
      std::size_t end = path.find('/', pi);
      if (end == std::string_view::npos) end = path.size();
      // Longest segment first: "{id}" usually ends at '/' or the path's end.
      for (std::size_t e = end; e > pi; --e) {
        caps.push_back(path.substr(pi, e - pi));
        if (match_from(toks, ti + 1, path, e, caps, budget)) return true;
        caps.pop_back();
        if (budget < 0) return false;
      }
      return false;
    }
    case PatternToken::Kind::kStar:
      for (std::size_t e = path.size() + 1; e-- > pi;) {
        if (match_from(toks, ti + 1, path, e, caps, budget)) return true;
        if (budget < 0) return false;
      }
      return false;
  }
  return false;
}

// "query.lang", "query.*", "header.X-Api-Key".
bool parse_part(std::string_view text, bool allow_all_query, RequestPart& out) {
  if (text.starts_with("query.")) {
    std::string_view n = text.substr(6);
    if (n == "*") {
      if (!allow_all_query) return false;
      out = {RequestPart::Source::kAllQuery, ""};
      return true;
    }
    if (n.empty()) return false;
    out = {RequestPart::Source::kQuery, std::string(n)};
    return true;
  }
  if (text.starts_with("header.")) {
    std::string_view n = text.substr(7);
    if (n.empty()) return false;
    for (char c : n) {
      if (!is_ascii_alnum(c) && c != '-' && c != '_') return false;
    }
    out = {RequestPart::Source::kHeader, ascii_lower(n)};
    return true;
  }
  return false;
}

void parse_parts(MapReader& r, std::string_view key, bool allow_all_query,
                 std::vector<RequestPart>& out) {
  std::vector<std::string> items;
  if (!r.has(key)) return;  // MapReader::string_list rejects an absent key
  r.string_list(key, items);
  for (const auto& item : items) {
    RequestPart part;
    if (!parse_part(item, allow_all_query, part)) {
      return r.fail(key, "expected query.<name>" + std::string(allow_all_query ? ", query.*" : "") +
                             " or header.<name>, got '" + item + "'");
    }
    out.push_back(std::move(part));
  }
}

using QueryPairs = std::vector<std::pair<std::string, std::string>>;

// The values of `parts` as "q.name=v&h.name=v" (absent ones skipped).
// Returns false if `require_all` and one is absent.
bool render_parts(const std::vector<RequestPart>& parts, const QueryPairs& query,
                  const HttpRequestView& req, bool require_all, std::string& out) {
  auto add = [&](std::string_view prefix, std::string_view name, std::string_view value) {
    if (!out.empty()) out += '&';
    out += prefix;
    out += percent_encode(name);
    out += '=';
    out += percent_encode(value);
  };
  for (const RequestPart& part : parts) {
    switch (part.source) {
      case RequestPart::Source::kAllQuery:
        for (const auto& [n, v] : query) add("q.", n, v);
        break;
      case RequestPart::Source::kQuery: {
        auto it = std::find_if(query.begin(), query.end(),
                               [&](const auto& kv) { return kv.first == part.name; });
        if (it != query.end())
          add("q.", it->first, it->second);
        else if (require_all)
          return false;
        break;
      }
      case RequestPart::Source::kHeader: {
        auto v = req.header(part.name);
        if (v)
          add("h.", part.name, *v);
        else if (require_all)
          return false;
        break;
      }
    }
  }
  return true;
}

// The tenant of `rule` for this request, or nullopt if its tenant parts are
// missing.
std::optional<TenantId> tenant_of(const Rule& rule, const QueryPairs& query,
                                  const HttpRequestView& req, const TenantKey& key) {
  if (rule.tenant.empty()) return kSharedTenant;
  std::string secret;
  if (!render_parts(rule.tenant, query, req, /*require_all=*/true, secret)) return std::nullopt;
  return tenant_from_secret(secret, key);
}

std::string rule_tag(TenantId t, const Rule& r) { return "rule:" + to_hex(t) + ":" + r.name; }

}  // namespace

Result<std::vector<PatternToken>> compile_pattern(std::string_view p) {
  if (p.empty() || (p.front() != '/' && p.front() != '*')) {
    return Status::invalid_argument("a path pattern starts with '/', got '" + std::string(p) + "'");
  }
  std::vector<PatternToken> out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < p.size();) {
    if (p[i] == '*') {
      if (out.empty() || out.back().kind != PatternToken::Kind::kStar) {
        out.push_back({PatternToken::Kind::kStar, ""});
      }
      ++i;
    } else if (p[i] == '{') {
      std::size_t close = p.find('}', i);
      if (close == std::string_view::npos) {
        return Status::invalid_argument("unclosed '{' in '" + std::string(p) + "'");
      }
      std::string name(p.substr(i + 1, close - i - 1));
      if (name.empty() || !std::all_of(name.begin(), name.end(), name_char)) {
        return Status::invalid_argument("bad parameter name '{" + name + "}' in '" +
                                        std::string(p) + "' (letters, digits, '_')");
      }
      if (!names.insert(name).second) {
        return Status::invalid_argument("parameter '{" + name + "}' appears twice in '" +
                                        std::string(p) + "'");
      }
      out.push_back({PatternToken::Kind::kParam, name});
      i = close + 1;
    } else if (p[i] == '}' || p[i] == '?' || p[i] == ' ') {
      return Status::invalid_argument("unexpected '" + std::string(1, p[i]) + "' in '" +
                                      std::string(p) + "'");
    } else {
      if (out.empty() || out.back().kind != PatternToken::Kind::kLiteral) {
        out.push_back({PatternToken::Kind::kLiteral, ""});
      }
      out.back().text += p[i++];
    }
  }
  return out;
}

bool match_pattern(const std::vector<PatternToken>& pattern, std::string_view path,
                   std::vector<std::string_view>& captures) {
  int budget = kMatchBudget;
  std::size_t before = captures.size();
  bool ok = match_from(pattern, 0, path, 0, captures, budget);
  if (!ok) captures.resize(before);
  return ok;
}

std::vector<std::string> Rules::namespaces_used() const {
  std::vector<std::string> out;
  for (const Rule& r : rules) {
    if (r.action == Rule::Action::kCache) out.push_back(r.ns);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<Rules> parse_rules(const YAML::Node& section, std::string_view path) {
  Rules rules;
  if (!section || section.IsNull()) return rules;
  if (!section.IsSequence()) {
    return Status::invalid_argument(std::string(path) + ": expected a list of rules");
  }
  // Invalidation targets are resolved after every rule is known.
  std::vector<std::vector<std::string>> targets;
  std::map<std::string, std::size_t> by_name;
  std::size_t index = 0;
  for (const auto& item : section) {
    Rule rule;
    rule.origin = std::string(path) + "[" + std::to_string(index) + "]";
    MapReader r(item, rule.origin);
    std::string match;
    r.string("match", match);
    reject_control(r, "match", match);
    if (r.error().ok() && !r.has("match")) r.fail("match", "is required (e.g. 'GET /items/{id}')");
    std::string pattern;
    if (r.error().ok() && !split_match(match, rule.method, pattern)) {
      r.fail("match", "expected 'METHOD /path', got '" + match + "'");
    }
    if (r.error().ok() && !method_ok(rule.method)) {
      r.fail("match", "method must be uppercase letters or '*', got '" + rule.method + "'");
    }
    if (r.error().ok()) {
      auto compiled = compile_pattern(pattern);
      if (!compiled.ok())
        r.fail("match", compiled.status().message());
      else
        rule.pattern = std::move(*compiled);
      for (const auto& t : rule.pattern) {
        if (t.kind == PatternToken::Kind::kParam) rule.params.push_back(t.text);
      }
      rule.match = rule.method + " " + pattern;
    }
    rule.name = rule.match;
    r.string("name", rule.name);
    reject_control(r, "name", rule.name);
    r.string("namespace", rule.ns);
    if (r.has("ttl")) {
      Duration ttl{};
      r.duration("ttl", ttl, /*allow_zero=*/false);
      rule.ttl = ttl;
    }
    parse_parts(r, "key", /*allow_all_query=*/true, rule.key);
    parse_parts(r, "tenant", /*allow_all_query=*/false, rule.tenant);
    std::vector<std::string> inv;
    if (r.has("invalidates")) r.string_list("invalidates", inv);
    bool cache = true;
    r.boolean("cache", cache);
    if (r.error().ok()) {
      const bool caches = r.has("namespace");
      const bool writes = r.has("invalidates");
      if (caches && writes) {
        r.fail("invalidates", "a rule either caches (namespace) or invalidates, not both");
      } else if (!cache) {
        if (caches || writes) r.fail("cache", "'cache: false' takes no namespace or invalidates");
        rule.action = Rule::Action::kPassthrough;
      } else if (caches) {
        rule.action = Rule::Action::kCache;
      } else if (writes) {
        rule.action = Rule::Action::kInvalidate;
        if (inv.empty()) r.fail("invalidates", "names no rule");
      } else {
        r.fail("match", "rule '" + rule.name +
                            "' needs namespace (to cache), invalidates (a write) or cache: false");
      }
      if (rule.action != Rule::Action::kCache &&
          (r.has("ttl") || r.has("key") || r.has("tenant"))) {
        r.fail(r.has("ttl")   ? "ttl"
               : r.has("key") ? "key"
                              : "tenant",
               "only caching rules (with a namespace) take ttl, key and tenant");
      }
    }
    if (r.error().ok()) {
      auto [it, inserted] = by_name.emplace(rule.name, index);
      if (!inserted)
        r.fail("name", "rule name '" + rule.name + "' is already used by " +
                           rules.rules[it->second].origin);
      // The match text also names the rule, when no explicit name differs.
      if (rule.name != rule.match) by_name.emplace(rule.match, index);
    }
    Status s = r.finish();
    if (!s.ok()) return s;
    rules.rules.push_back(std::move(rule));
    targets.push_back(std::move(inv));
    ++index;
  }
  for (std::size_t i = 0; i < rules.rules.size(); ++i) {
    Rule& rule = rules.rules[i];
    for (std::size_t j = 0; j < targets[i].size(); ++j) {
      const std::string& t = targets[i][j];
      std::string method, pat;
      std::string normal = split_match(t, method, pat) ? method + " " + pat : t;
      auto it = by_name.find(normal);
      std::string where = rule.origin + ".invalidates[" + std::to_string(j) + "]";
      if (it == by_name.end()) {
        return Status::invalid_argument(where + ": no rule is named or matches '" + t + "'");
      }
      if (rules.rules[it->second].action != Rule::Action::kCache) {
        return Status::invalid_argument(where + ": rule '" + t + "' does not cache anything");
      }
      rule.invalidates.push_back(it->second);
    }
  }
  return rules;
}

Status check_namespaces(const Rules& rules, const std::vector<NamespaceSpec>& namespaces) {
  for (const Rule& r : rules.rules) {
    if (r.action != Rule::Action::kCache) continue;
    bool found = std::any_of(namespaces.begin(), namespaces.end(),
                             [&](const NamespaceSpec& s) { return s.name == r.ns; });
    if (!found) {
      std::string known;
      for (const auto& s : namespaces) known += (known.empty() ? "" : ", ") + s.name;
      return Status::invalid_argument(r.origin + ".namespace: unknown namespace '" + r.ns +
                                      "' (declared: " + (known.empty() ? "none" : known) + ")");
    }
  }
  return Status();
}

Result<RulePlan> plan_generic(const HttpRequestView& req, const Rules& rules,
                              const TenantKey& tenant_key) {
  if (req.target.size() > req.limits.max_target_bytes) {
    return Status::invalid_argument("Bad Request: request target longer than " +
                                    std::to_string(req.limits.max_target_bytes) + " bytes");
  }
  auto [path, query_text] = split_target(req.target);
  RulePlan plan;
  std::vector<std::string_view> caps;
  const Rule* rule = nullptr;
  for (const Rule& r : rules.rules) {
    if (r.method != "*" && r.method != req.method) continue;
    caps.clear();
    if (match_pattern(r.pattern, path, caps)) {
      rule = &r;
      break;
    }
  }
  if (!rule) {
    plan.reason = "no rule";
    return plan;
  }
  plan.rule = rule;
  if (rule->action == Rule::Action::kPassthrough) {
    plan.reason = "rule says cache: false";
    return plan;
  }
  // Captured path parameters, decoded, as "p.name=value&...".
  std::vector<std::pair<std::string, std::string>> params;
  for (std::size_t i = 0; i < caps.size(); ++i) {
    auto v = percent_decode(caps[i], false);
    if (!v.ok()) return v.status();
    params.emplace_back(rule->params[i], std::move(*v));
  }
  auto render_params = [&](const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& n : names) {
      auto it =
          std::find_if(params.begin(), params.end(), [&](const auto& kv) { return kv.first == n; });
      if (it == params.end()) continue;
      if (!out.empty()) out += '&';
      out += "p." + percent_encode(n) + "=" + percent_encode(it->second);
    }
    return out;
  };
  auto query = parse_query(query_text);
  if (!query.ok()) return query.status();
  std::stable_sort(query->begin(), query->end());

  if (rule->action == Rule::Action::kInvalidate) {
    plan.kind = RulePlan::Kind::kInvalidate;
    for (std::size_t target : rule->invalidates) {
      const Rule& read = rules.rules[target];
      auto tenant = tenant_of(read, *query, req, tenant_key);
      if (!tenant) continue;  // nothing of an unidentified caller is cached
      bool all = std::all_of(read.params.begin(), read.params.end(), [&](const std::string& n) {
        return std::any_of(params.begin(), params.end(),
                           [&](const auto& kv) { return kv.first == n; });
      });
      if (read.params.empty() || !all) {
        plan.invalidate_tags.push_back(rule_tag(*tenant, read));
      } else {
        plan.invalidate_tags.push_back(rule_tag(*tenant, read) + ":" + render_params(read.params));
      }
    }
    std::sort(plan.invalidate_tags.begin(), plan.invalidate_tags.end());
    plan.invalidate_tags.erase(
        std::unique(plan.invalidate_tags.begin(), plan.invalidate_tags.end()),
        plan.invalidate_tags.end());
    return plan;
  }

  auto tenant = tenant_of(*rule, *query, req, tenant_key);
  if (!tenant) {
    plan.reason = "no tenant";
    return plan;
  }
  plan.kind = RulePlan::Kind::kCachedRead;
  plan.ns = rule->ns;
  plan.tenant = *tenant;
  plan.ttl = rule->ttl;
  std::string path_part = render_params(rule->params);
  std::string parts;
  (void)render_parts(rule->key, *query, req, /*require_all=*/false, parts);
  plan.key = rule->name + "?" + path_part;
  if (!path_part.empty() && !parts.empty()) plan.key += '&';
  plan.key += parts;
  std::string tag = rule_tag(*tenant, *rule);
  if (!rule->params.empty()) plan.tags.push_back(tag + ":" + path_part);
  plan.tags.push_back(std::move(tag));
  return plan;
}

}  // namespace callcache::gateway::logic
