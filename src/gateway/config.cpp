#include "gateway/config.h"

#include "yaml_reader.h"

namespace callcache::gateway {

std::string ListenAddress::to_string() const { return host + ":" + std::to_string(port); }

Result<ListenAddress> parse_listen(std::string_view text, std::string_view what) {
  std::size_t colon = text.rfind(':');
  auto bad = [&](std::string why) {
    return Status::invalid_argument(std::string(what) + ": " + why + ", got '" +
                                    std::string(text) + "'");
  };
  if (colon == std::string_view::npos) return bad("expected host:port");
  ListenAddress a;
  a.host = std::string(text.substr(0, colon));
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') {
    a.host = a.host.substr(1, a.host.size() - 2);
  }
  std::string_view port = text.substr(colon + 1);
  if (a.host.empty()) return bad("expected host:port (host missing)");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
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

void read_rules(config::MapReader& r, std::vector<Rule>& out) {
  YAML::Node list = r.child("rules");
  if (!list || list.IsNull()) return;
  if (!list.IsSequence()) {
    r.fail("rules", "expected a list of rules");
    return;
  }
  std::vector<Rule> rules;
  for (std::size_t i = 0; i < list.size(); ++i) {
    config::MapReader rr(list[i], r.path_of("rules") + "[" + std::to_string(i) + "]");
    Rule rule;
    rr.string("name", rule.name);
    rr.count("limit", rule.limit, false);
    rr.duration("period", rule.period, false);
    rr.count("burst", rule.burst, false);
    std::vector<std::string> key;
    rr.string_list("key", key);
    rule.key = key_scope::kGlobal;
    for (const auto& k : key) {
      if (k == "bot") {
        rule.key |= key_scope::kBot;
      } else if (k == "chat") {
        rule.key |= key_scope::kChat;
      } else if (k == "method") {
        rule.key |= key_scope::kMethod;
      } else if (k == "paid") {
        rule.key |= key_scope::kPaid;
      } else {
        rr.fail("key", "expected bot, chat, method or paid, got '" + k + "'");
      }
    }
    rr.string_list("methods", rule.methods);
    rr.string_list("except_methods", rule.except_methods);
    rr.choice("chat", rule.chat,
              {{"any", ChatMatch::kAny}, {"private", ChatMatch::kPrivate}, {"group", ChatMatch::kGroup}});
    rr.choice("paid", rule.paid,
              {{"any", PaidMatch::kAny}, {"paid", PaidMatch::kPaid}, {"unpaid", PaidMatch::kUnpaid}});
    r.merge(rr.finish());
    rules.push_back(std::move(rule));
  }
  if (!r.error().ok()) return;
  Status v = validate_rules(rules);
  if (!v.ok()) {
    r.fail("rules", v.message());
    return;
  }
  out = std::move(rules);
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
             {{"trace", std::string("trace")}, {"debug", std::string("debug")},
              {"info", std::string("info")}, {"warn", std::string("warn")},
              {"error", std::string("error")}, {"off", std::string("off")}});
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
      std::string hex;
      r.string("tenant_key", hex);
      if (r.error().ok()) {
        auto key = parse_tenant_key(hex);
        if (!key.ok()) {
          r.fail("tenant_key", key.status().message());
        } else {
          c.tenant_key = *key;
        }
      }
    }
    config::MapReader p = r.map("pacing");
    p.boolean("enabled", c.pacing_enabled);
    p.duration("max_wait", c.pacing_max_wait);
    p.count("retry_429", c.retry_429);
    p.duration("retry_max_delay", c.retry_max_delay);
    read_rules(p, c.pacing_rules);
    r.merge(p.finish());
    top.merge(r.finish());
  }
  {
    config::MapReader r = top.map("storage");
    r.choice("l2", c.l2, {{"sqlite", std::string("sqlite")}, {"none", std::string("none")}});
    config::MapReader s = r.map("sqlite");
    s.string("path", c.sqlite_path);
    r.merge(s.finish());
    top.merge(r.finish());
  }
  c.telegram = top.child("telegram");
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
