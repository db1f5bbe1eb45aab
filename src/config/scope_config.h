// Internal: the scope settings of the YAML configuration (callcache/scope.h).
//
//   cache:
//     scope: process            # task | process (default task)
//   process:
//     max_size: 10000           # max_entries of each namespace of the process cache (0 = own)
//     cleanup_interval: 60s     # background sweep of expired entries (> 0)
//   per_account:
//     max_entries: 200          # per-tenant cap in every namespace and scope (0 = none)
//
// Errors name the key path and the value, e.g.
//   "cache.scope: expected one of task, process, got 'global'".
#pragma once

#include "callcache/scope.h"
#include "callcache/status.h"
#include "yaml_reader.h"

namespace callcache::config {

// Reads `scope` from the `cache` mapping. Leaves the other keys of `cache` to
// their readers (does not finish `cache`).
void read_cache_scope(MapReader& cache, ScopeSettings& out);

// Reads the `process` and `per_account` mappings of the root (each finished:
// unknown keys inside them are errors). Absent sections keep the defaults.
void read_scope_sections(MapReader& root, ScopeSettings& out);

// Reads all scope settings from a configuration root: cache.scope, process.*
// and per_account.*; other keys of the root and of `cache` are ignored (they
// belong to other sections).
Result<ScopeSettings> parse_scope_settings(const YAML::Node& root);

}  // namespace callcache::config
