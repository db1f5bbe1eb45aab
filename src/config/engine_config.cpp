#include "engine_config.h"

#include <algorithm>

namespace callcache {
namespace config {
namespace {

void read_policy(MapReader& r, NamespacePolicy& p) {
  r.duration("ttl", p.ttl, /*allow_zero=*/false);
  r.count("max_entries", p.max_entries, /*allow_zero=*/false);
  r.bytes("max_bytes", p.max_bytes);
  r.count("max_entries_per_tenant", p.max_entries_per_tenant);
  r.choice("eviction", p.eviction,
           {{"s3fifo", EvictionPolicy::kS3Fifo}, {"lru", EvictionPolicy::kLru},
            {"wtinylfu", EvictionPolicy::kWTinyLfu}, {"adaptive", EvictionPolicy::kAdaptive}});
  r.duration("negative_ttl", p.negative_ttl);
  r.duration("stale_ttl", p.stale_ttl);
  r.duration("refresh_ahead", p.refresh_ahead);
  r.number("jitter", p.jitter, 0.0, 0.99);
  r.duration("load_timeout", p.load_timeout);
  r.boolean("shared", p.shared);
}

}  // namespace

void read_engine_sections(MapReader& root, EngineConfig& out) {
  if (root.has("tenant_key")) {
    std::string hex;
    root.string("tenant_key", hex);
    auto key = parse_tenant_key(hex);
    if (key.ok()) {
      out.tenant_key = *key;
    } else {
      root.fail("tenant_key", key.status().message());  // the value is a secret: not echoed
    }
  }
  MapReader engine = root.map("engine");
  std::uint64_t shards = out.shards;
  engine.count("shards", shards);
  out.shards = shards;
  engine.duration("sweep_interval", out.sweep_interval);
  root.merge(engine.finish());

  MapReader ns = root.map("namespaces");
  for (const std::string& name : ns.keys()) {
    auto it = std::find_if(out.namespaces.begin(), out.namespaces.end(),
                           [&](const NamespaceSpec& s) { return s.name == name; });
    if (it == out.namespaces.end()) {
      out.namespaces.push_back(NamespaceSpec{name, NamespacePolicy{}});
      it = out.namespaces.end() - 1;
    }
    MapReader r = ns.map(name);
    read_policy(r, it->policy);
    Status s = r.finish();
    if (s.ok()) {
      s = validate(name, it->policy);
      if (!s.ok()) s = Status::invalid_argument(ns.path_of(name) + ": " + s.message());
    }
    root.merge(s);
  }
  root.merge(ns.finish());
}

}  // namespace config

EngineOptions EngineConfig::engine_options() const {
  EngineOptions o;
  o.namespaces = namespaces;
  o.shards = shards;
  o.sweep_interval = sweep_interval;
  return o;
}

Result<EngineConfig> parse_engine_config(const std::string& yaml) {
  auto doc = config::load_string(yaml);
  if (!doc.ok()) return doc.status();
  EngineConfig out;
  config::MapReader root(*doc, "");
  config::read_engine_sections(root, out);
  if (!root.error().ok()) return root.error();
  return out;
}

Result<EngineConfig> load_engine_config(const std::string& path) {
  auto doc = config::load_file(path);
  if (!doc.ok()) return doc.status();
  EngineConfig out;
  config::MapReader root(*doc, "");
  config::read_engine_sections(root, out);
  if (!root.error().ok()) return Status(root.error().code(), path + ": " + root.error().message());
  return out;
}

}  // namespace callcache
