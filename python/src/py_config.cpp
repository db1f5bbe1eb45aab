#include "py_config.h"

#include <algorithm>

#include "engine_config.h"
#include "limits_config.h"
#include "scope_config.h"
#include "yaml_reader.h"

namespace callcache::python {

namespace {

constexpr const char* kCodecs[] = {"pickle", "json", "bytes"};

void read_codec(config::MapReader& r, std::string& out) {
  if (!r.has("codec")) return;
  std::string name;
  r.string("codec", name);
  if (!r.error().ok()) return;
  if (std::find(std::begin(kCodecs), std::end(kCodecs), name) == std::end(kCodecs)) {
    r.fail("codec", "expected one of pickle, json, bytes, got '" + name + "'");
    return;
  }
  out = name;
}

void read_python_section(config::MapReader& root, PyConfig& c) {
  config::MapReader py = root.map("python");
  read_codec(py, c.default_codec);
  c.distributed = c.has_storage && c.storage.l2 == tiers::L2Kind::kRedis;
  py.boolean("distributed", c.distributed);
  config::MapReader ns = py.map("namespaces");
  for (const std::string& name : ns.keys()) {
    bool known = std::any_of(c.engine.namespaces.begin(), c.engine.namespaces.end(),
                             [&](const NamespaceSpec& s) { return s.name == name; });
    config::MapReader one = ns.map(name);
    if (!known) {
      ns.fail(name, "no namespace '" + name + "' (declare it under namespaces:)");
      break;
    }
    std::string codec = c.default_codec;
    read_codec(one, codec);
    if (one.has("codec")) c.codecs[name] = codec;
    bool l2 = true;
    one.boolean("l2", l2);
    if (!l2) c.memory_only.insert(name);
    ns.merge(one.finish());
  }
  py.merge(ns.finish());
  root.merge(py.finish());
}

Result<PyConfig> parse_root(const YAML::Node& doc) {
  PyConfig c;
  c.scope.scope = CacheScope::kProcess;
  config::MapReader root(doc, "");
  if (!root.error().ok()) return root.error();
  config::read_engine_sections(root, c.engine);
  if (root.has("cache")) {
    config::MapReader cache = root.map("cache");
    config::read_cache_scope(cache, c.scope);
    root.merge(cache.error());
  }
  config::read_scope_sections(root, c.scope);
  if (root.has("rate_limits")) {
    c.has_rate_limits = true;
    config::MapReader r = root.map("rate_limits");
    config::read_rate_limits(r, c.rate_limits);
    root.merge(r.finish());
  }
  if (root.has("account_locks")) {
    c.has_account_locks = true;
    config::MapReader r = root.map("account_locks");
    config::read_account_locks(r, c.account_locks);
    root.merge(r.finish());
  }
  if (root.has("storage")) {
    c.has_storage = true;
    config::MapReader r = root.map("storage");
    root.merge(tiers::read_storage_config(r, c.storage));
  }
  if (root.error().ok()) read_python_section(root, c);
  // The gateway's own sections: one file may configure both.
  for (const char* key : {"server", "admin", "gateway", "telegram", "apis"}) (void)root.child(key);
  Status s = root.finish();
  if (!s.ok()) return s;
  return c;
}

}  // namespace

const std::string& PyConfig::codec_of(const std::string& ns) const {
  auto it = codecs.find(ns);
  return it == codecs.end() ? default_codec : it->second;
}

bool PyConfig::uses_l2(const std::string& ns) const {
  return has_storage && storage.l2 != tiers::L2Kind::kNone && !memory_only.count(ns);
}

Result<PyConfig> parse_py_config(const std::string& text, const std::string& source) {
  auto doc = config::load_string(text);
  if (!doc.ok()) return doc.status();
  auto c = parse_root(*doc);
  if (!c.ok() && !source.empty())
    return Status(c.status().code(), source + ": " + c.status().message());
  return c;
}

Result<PyConfig> load_py_config(const std::string& path) {
  auto doc = config::load_file(path);
  if (!doc.ok()) return doc.status();
  auto c = parse_root(*doc);
  if (!c.ok()) return Status(c.status().code(), path + ": " + c.status().message());
  return c;
}

}  // namespace callcache::python
