#include "callcache/policy.h"

namespace callcache {

std::string_view eviction_policy_name(EvictionPolicy p) noexcept {
  switch (p) {
    case EvictionPolicy::kLru:
      return "lru";
    case EvictionPolicy::kS3Fifo:
      return "s3fifo";
    case EvictionPolicy::kWTinyLfu:
      return "wtinylfu";
    case EvictionPolicy::kAdaptive:
      return "adaptive";
  }
  return "unknown";
}

Result<EvictionPolicy> parse_eviction_policy(std::string_view name) {
  if (name == "lru") return EvictionPolicy::kLru;
  if (name == "s3fifo" || name == "s3-fifo") return EvictionPolicy::kS3Fifo;
  if (name == "wtinylfu" || name == "w-tinylfu") return EvictionPolicy::kWTinyLfu;
  if (name == "adaptive") return EvictionPolicy::kAdaptive;
  return Status::invalid_argument("unknown eviction policy '" + std::string(name) +
                                  "' (expected lru, s3fifo, wtinylfu or adaptive)");
}

Status validate(std::string_view ns, const NamespacePolicy& p) {
  auto bad = [&](const std::string& what) {
    return Status::invalid_argument("namespace '" + std::string(ns) + "': " + what);
  };
  if (ns.empty()) return Status::invalid_argument("namespace name must not be empty");
  if (p.ttl <= Duration::zero()) return bad("ttl must be > 0");
  if (p.max_entries == 0) return bad("max_entries must be > 0");
  if (p.negative_ttl < Duration::zero()) return bad("negative_ttl must be >= 0");
  if (p.stale_ttl < Duration::zero()) return bad("stale_ttl must be >= 0");
  if (p.load_timeout < Duration::zero()) return bad("load_timeout must be >= 0");
  if (p.refresh_ahead < Duration::zero() || p.refresh_ahead >= p.ttl) {
    return bad("refresh_ahead must be >= 0 and < ttl");
  }
  if (!(p.jitter >= 0.0 && p.jitter < 1.0)) return bad("jitter must be in [0, 1)");
  return Status();
}

std::vector<NamespaceSpec> default_namespaces() {
  using std::chrono::seconds;
  auto ns = [](const char* name, seconds ttl) {
    NamespacePolicy p;
    p.ttl = ttl;
    p.max_entries = 500;
    return NamespaceSpec{name, p};
  };
  return {ns("entity", seconds(300)), ns("message", seconds(60)), ns("full_channel", seconds(600)),
          ns("discussion", seconds(300)), ns("input_peer", seconds(300))};
}

}  // namespace callcache
