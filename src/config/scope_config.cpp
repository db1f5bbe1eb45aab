#include "scope_config.h"

namespace callcache::config {

void read_cache_scope(MapReader& cache, ScopeSettings& out) {
  cache.choice("scope", out.scope,
               {{"task", CacheScope::kTask}, {"process", CacheScope::kProcess}});
}

void read_scope_sections(MapReader& root, ScopeSettings& out) {
  MapReader process = root.map("process");
  process.count("max_size", out.process_max_entries);
  process.duration("cleanup_interval", out.cleanup_interval, /*allow_zero=*/false);
  root.merge(process.finish());
  MapReader per_account = root.map("per_account");
  per_account.count("max_entries", out.per_tenant_max_entries);
  root.merge(per_account.finish());
}

Result<ScopeSettings> parse_scope_settings(const YAML::Node& root) {
  ScopeSettings out;
  MapReader r(root, "");
  if (!r.error().ok()) return r.error();
  MapReader cache = r.map("cache");
  read_cache_scope(cache, out);
  r.merge(cache.error());
  read_scope_sections(r, out);
  if (!r.error().ok()) return r.error();
  return out;
}

}  // namespace callcache::config
