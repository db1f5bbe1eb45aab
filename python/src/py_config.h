// Internal (Python binding): the YAML configuration the Python package reads —
// the same sections as the C++ library, read by the library's own readers so
// that every error names the key path and the value:
//
//   tenant_key, engine, namespaces     the engine (callcache/config.h)
//   cache.scope, process, per_account  scopes (callcache/scope.h); the Python
//                                      package defaults to `process` scope
//   rate_limits, account_locks         the toolkit (src/limits/limits_config.h)
//   storage                            the second tier (src/tiers/storage_config.h);
//                                      absent = memory only
//   python:                            what only the Python package reads
//     codec: pickle                    how values reach the second tier:
//                                      pickle | json | bytes (default pickle)
//     distributed: true                with storage.l2 redis, the limiter and
//                                      the account locks live in Redis too
//                                      (default: true when l2 is redis)
//     namespaces:
//       analytics: {codec: json}       per namespace: codec, l2 (false = memory only)
//
// The gateway's sections (server, admin, gateway, telegram, apis) are
// accepted and ignored, so one file can serve both; any other top-level key
// is an error.
//
// Thread-safety: plain values.
#pragma once

#include <map>
#include <set>
#include <string>

#include "callcache/account_locks.h"
#include "callcache/config.h"
#include "callcache/rate_limiter.h"
#include "callcache/scope.h"
#include "callcache/status.h"
#include "storage_config.h"

namespace callcache::python {

struct PyConfig {
  EngineConfig engine;
  ScopeSettings scope;  // scope = kProcess unless `cache.scope` says otherwise
  bool has_rate_limits = false;
  RateLimiterOptions rate_limits;
  bool has_account_locks = false;
  AccountLockOptions account_locks;
  bool has_storage = false;
  tiers::StorageConfig storage;
  bool distributed = false;  // limiter and locks in Redis
  std::string default_codec = "pickle";
  std::map<std::string, std::string> codecs;  // namespace -> codec name (overrides)
  std::set<std::string> memory_only;          // namespaces kept out of the second tier

  // The codec name of a namespace.
  const std::string& codec_of(const std::string& ns) const;
  // True if the namespace's values go to the second tier.
  bool uses_l2(const std::string& ns) const;
};

// Parses a whole configuration document. `source` (a path, or "" for text)
// prefixes error messages.
Result<PyConfig> parse_py_config(const std::string& text, const std::string& source);
Result<PyConfig> load_py_config(const std::string& path);

}  // namespace callcache::python
