#include "gateway/app/config.h"

#include <algorithm>

#include "engine_config.h"
#include "limits_config.h"
#include "yaml_reader.h"

namespace callcache::gateway {

std::string ListenAddress::to_string() const { return host + ":" + std::to_string(port); }

Result<ListenAddress> parse_listen(std::string_view text, std::string_view what) {
  std::size_t colon = text.rfind(':');
  auto bad = [&](std::string why) {
    return Status::invalid_argument(std::string(what) + ": " + why + ", got '" + std::string(text) +
                                    "'");
  };
  if (colon == std::string_view::npos) return bad("expected host:port");
  ListenAddress a;
  a.host = std::string(text.substr(0, colon));
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') {
    a.host = a.host.substr(1, a.host.size() - 2);
  }
  std::string_view port = text.substr(colon + 1);
  if (a.host.empty()) return bad("expected host:port (host missing)");
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return bad("port must be a number 0-65535");
  }
  unsigned long p = std::stoul(std::string(port));
  if (p > 65535) return bad("port must be a number 0-65535");
  a.port = static_cast<std::uint16_t>(p);
  return a;
}

namespace {

void read_listen(config::MapReader& r, std::string_view key, ListenAddress& out) {
  std::string text;
  if (!r.has(key)) return;
  r.string(key, text);
  if (!r.error().ok()) return;
  auto a = parse_listen(text, r.path_of(key));
  if (!a.ok()) {
    r.merge(a.status());
    return;
  }
  out = *a;
}

bool name_ok(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// The engine's sections (`tenant_key`, `engine`, `namespaces`) with the
// engine's own reader (config/engine_config.h), so the keys and messages are
// those of every other callcache program.
void read_engine(config::MapReader& top, GatewayConfig& c) {
  EngineConfig engine;
  engine.tenant_key = c.tenant_key;
  engine.namespaces.clear();  // the gateway's namespaces come from the preset
  engine.shards = c.engine_shards;
  engine.sweep_interval = c.engine_sweep_interval;
  config::read_engine_sections(top, engine);
  for (const auto& spec : engine.namespaces) {
    if (!name_ok(spec.name)) {
      top.fail("namespaces", "namespace names use a-z, 0-9, '_' and '-', got '" + spec.name + "'");
    }
  }
  c.tenant_key = engine.tenant_key;
  c.engine_shards = engine.shards;
  c.engine_sweep_interval = engine.sweep_interval;
  c.namespaces = std::move(engine.namespaces);
}

// `storage:` with the tiers' reader (tiers/storage_config.h). The earlier
// gateway-only layout (storage.sqlite.path, storage.redis.url ...) is refused
// with the key to write instead.
void read_storage(config::MapReader& top, tiers::StorageConfig& out) {
  config::MapReader r = top.map("storage");
  if (r.has("sqlite")) {
    (void)r.child("sqlite");
    r.fail("sqlite", "the storage section is flat: write storage.path (and write_behind, "
                     "purge_interval, timeout) directly under storage");
  }
  if (r.has("redis")) {
    (void)r.child("redis");
    r.fail("redis", "the storage section is flat: write storage.redis_url, "
                    "redis_password_env, connect_timeout, timeout, pool_size and "
                    "redis_coordination directly under storage");
  }
  if (!r.error().ok()) {
    top.merge(r.finish());
    return;
  }
  top.merge(tiers::read_storage_config(r, out));
}

// A prefix such as "/sns" or "/api/v2": checks it and drops a trailing '/'.
std::string check_prefix(std::string prefix, std::string& why) {
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  if (prefix.empty() || prefix.front() != '/') {
    why = "expected a path such as /sns, got '" + prefix + "'";
  } else if (prefix == "/") {
    why = "'/' would capture every request; use a path such as /sns";
  } else if (prefix.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789-._~/") != std::string::npos) {
    why = "use letters, digits, '-', '.', '_', '~' and '/', got '" + prefix + "'";
  } else if (prefix.find("//") != std::string::npos || prefix.find("/./") != std::string::npos ||
             prefix.find("/../") != std::string::npos || prefix.ends_with("/.") ||
             prefix.ends_with("/..")) {
    why = "expected a normalised path (no empty, '.' or '..' segments), got '" + prefix + "'";
  } else {
    // The Bot API front owns /bot<token>/... and /file/bot<token>/...
    std::string_view p(prefix);
    p.remove_prefix(1);
    std::string_view first = p.substr(0, p.find('/'));
    std::string_view second;
    if (first.size() < p.size()) {
      second = p.substr(first.size() + 1);
      second = second.substr(0, second.find('/'));
    }
    if (first.starts_with("bot")) {
      why = "'" + prefix + "' would shadow the Bot API routes /bot<token>/<method>";
    } else if (first == "file" && (second.empty() || second.starts_with("bot"))) {
      why = "'" + prefix + "' would shadow the Bot API file routes /file/bot<token>/<path>";
    }
  }
  return prefix;
}

// True if one prefix is the other or contains it as whole segments.
bool prefixes_overlap(std::string_view a, std::string_view b) {
  if (a.size() > b.size()) std::swap(a, b);
  return b.starts_with(a) && (b.size() == a.size() || b[a.size()] == '/');
}

void read_apis(config::MapReader& top, const std::vector<NamespaceSpec>& namespaces,
               std::vector<ApiConfig>& out) {
  YAML::Node list = top.child("apis");
  if (!list || list.IsNull()) return;
  if (!list.IsSequence()) {
    top.fail("apis", "expected a list of APIs (name, prefix, upstream, rules)");
    return;
  }
  std::vector<ApiConfig> apis;
  for (std::size_t i = 0; i < list.size() && top.error().ok(); ++i) {
    ApiConfig api;
    api.origin = "apis[" + std::to_string(i) + "]";
    config::MapReader r(list[i], api.origin);
    for (const char* key : {"name", "prefix", "upstream"}) {
      if (r.error().ok() && !r.has(key)) r.fail(key, "is required");
    }
    r.string("name", api.name);
    if (r.error().ok() && !name_ok(api.name)) {
      r.fail("name", "use a-z, 0-9, '_' and '-', got '" + api.name + "'");
    }
    r.string("prefix", api.prefix);
    if (r.error().ok()) {
      std::string why;
      api.prefix = check_prefix(api.prefix, why);
      if (!why.empty()) r.fail("prefix", why);
    }
    r.boolean("strip_prefix", api.strip_prefix);
    r.string("upstream", api.upstream);
    YAML::Node rules = r.child("rules");
    if (r.error().ok()) {
      auto parsed = logic::parse_rules(rules, r.path_of("rules"));
      if (parsed.ok()) {
        api.rules = std::move(*parsed);
      } else {
        r.merge(parsed.status());
      }
    }
    if (r.error().ok()) {
      Status s = logic::check_namespaces(api.rules, namespaces);
      if (!s.ok() && namespaces.empty()) {
        s = Status::invalid_argument(s.message() + "; declare it under the top-level namespaces:");
      }
      r.merge(s);
    }
    for (const ApiConfig& other : apis) {
      if (!r.error().ok()) break;
      if (other.name == api.name) {
        r.fail("name", "'" + api.name + "' is already used by " + other.origin);
      } else if (prefixes_overlap(other.prefix, api.prefix)) {
        r.fail("prefix",
               "'" + api.prefix + "' overlaps " + other.origin + ".prefix '" + other.prefix + "'");
      }
      for (const logic::Rule& rule : api.rules.rules) {
        if (rule.action != logic::Rule::Action::kCache) continue;
        auto used = other.rules.namespaces_used();
        if (std::find(used.begin(), used.end(), rule.ns) != used.end()) {
          top.merge(Status::invalid_argument(rule.origin + ".namespace: '" + rule.ns +
                                             "' is already used by " + other.origin +
                                             " (each API caches in namespaces of its own)"));
          break;
        }
      }
    }
    Status s = r.finish();
    top.merge(s);
    apis.push_back(std::move(api));
  }
  if (top.error().ok()) out = std::move(apis);
}

}  // namespace

Result<GatewayConfig> parse_config(const YAML::Node& root) {
  GatewayConfig c;
  config::MapReader top(root, "");
  {
    config::MapReader r = top.map("server");
    read_listen(r, "listen", c.listen);
    std::uint64_t threads = c.threads;
    r.count("threads", threads);
    if (threads > 1024) r.fail("threads", "expected at most 1024, got " + std::to_string(threads));
    c.threads = static_cast<unsigned>(threads);
    r.count("max_connections", c.max_connections, false);
    r.bytes("max_header_bytes", c.max_header_bytes, false);
    r.bytes("max_body_bytes", c.max_body_bytes, false);
    r.bytes("stream_threshold", c.stream_threshold);
    r.duration("read_timeout", c.read_timeout, false);
    r.duration("idle_timeout", c.idle_timeout, false);
    r.duration("write_timeout", c.write_timeout, false);
    r.duration("shutdown_timeout", c.shutdown_timeout);
    if (r.has("access_log")) {
      YAML::Node n = r.child("access_log");
      if (n.IsScalar() && (n.Scalar() == "false" || n.Scalar() == "off")) {
        c.access_log.clear();
      } else if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "on")) {
        c.access_log = "-";
      } else if (n.IsScalar()) {
        c.access_log = n.Scalar();
      } else {
        r.fail("access_log", "expected true, false, '-' (stderr) or a file path");
      }
    }
    r.choice("log_level", c.log_level,
             {{"trace", std::string("trace")},
              {"debug", std::string("debug")},
              {"info", std::string("info")},
              {"warn", std::string("warn")},
              {"error", std::string("error")},
              {"off", std::string("off")}});
    top.merge(r.finish());
  }
  {
    config::MapReader r = top.map("admin");
    r.boolean("enabled", c.admin_enabled);
    read_listen(r, "listen", c.admin_listen);
    r.string("token", c.admin_token, true);
    top.merge(r.finish());
  }
  {
    config::MapReader r = top.map("gateway");
    r.string("upstream", c.upstream);
    r.duration("connect_timeout", c.connect_timeout, false);
    r.duration("upstream_timeout", c.upstream_timeout, false);
    r.boolean("verify_peer", c.verify_peer);
    r.string("ca_file", c.ca_file, true);
    r.count("max_idle_per_origin", c.max_idle_per_origin);
    r.bytes("max_response_bytes", c.max_response_bytes, false);
    if (r.has("tenant_key")) {
      (void)r.child("tenant_key");
      r.fail("tenant_key", "the tenant key is the top-level tenant_key (the engine's section, "
                           "shared by every callcache program)");
    }
    config::MapReader p = r.map("pacing");
    p.boolean("enabled", c.pacing_enabled);
    p.duration("max_wait", c.pacing_max_wait);
    p.count("retry_429", c.retry_429);
    p.duration("retry_max_delay", c.retry_max_delay);
    if (p.has("rules")) {
      (void)p.child("rules");
      p.fail("rules", "pacing rules are the top-level rate_limits section (rate_limits.rules, "
                      "keyed by rule name; see config/callcache.yaml)");
    }
    r.merge(p.finish());
    top.merge(r.finish());
  }
  if (top.has("rate_limits")) {
    config::MapReader r = top.map("rate_limits");
    config::read_rate_limits(r, c.rate_limits);
    top.merge(r.finish());
  }
  read_storage(top, c.storage);
  c.telegram = top.child("telegram");
  read_engine(top, c);
  if (top.error().ok()) read_apis(top, c.namespaces, c.apis);
  Status s = top.finish();
  if (!s.ok()) return s;
  return c;
}

Result<GatewayConfig> load_config_file(const std::string& path) {
  auto doc = config::load_file(path);
  if (!doc.ok()) return doc.status();
  auto c = parse_config(*doc);
  if (!c.ok()) return Status(c.status().code(), path + ": " + c.status().message());
  return c;
}

}  // namespace callcache::gateway
