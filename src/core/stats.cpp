#include "callcache/stats.h"

#include <array>
#include <cstdio>
#include <mutex>

#include "callcache/engine.h"
#include "callcache/text_writer.h"
#include "engine_impl.h"

namespace callcache {

const char* eviction_cause_name(EvictionCause c) noexcept {
  switch (c) {
    case EvictionCause::kSize:
      return "size";
    case EvictionCause::kBytes:
      return "bytes";
    case EvictionCause::kTenantCap:
      return "tenant_cap";
    case EvictionCause::kExpired:
      return "expired";
    case EvictionCause::kExplicit:
      return "explicit";
    case EvictionCause::kCount_:
      break;
  }
  return "unknown";
}

namespace {

void add(NamespaceStats& to, const NamespaceStats& s) {
  to.hits += s.hits;
  to.misses += s.misses;
  to.inserts += s.inserts;
  to.updates += s.updates;
  to.rejected_too_large += s.rejected_too_large;
  for (int i = 0; i < static_cast<int>(EvictionCause::kCount_); ++i)
    to.evictions[i] += s.evictions[i];
  to.expirations += s.expirations;
  to.entries += s.entries;
  to.bytes += s.bytes;
  to.max_entries += s.max_entries;
  to.max_bytes += s.max_bytes;
  to.loads += s.loads;
  to.load_failures += s.load_failures;
  to.load_timeouts += s.load_timeouts;
  to.coalesced += s.coalesced;
  to.negative_hits += s.negative_hits;
  to.stale_hits += s.stale_hits;
  to.refreshes += s.refreshes;
  to.refresh_failures += s.refresh_failures;
  to.late_loads += s.late_loads;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string to_json(const NamespaceStats& s) {
  std::string o = "{";
  auto field = [&](const char* k, const std::string& v) {
    if (o.size() > 1) o += ',';
    o += '"';
    o += k;
    o += "\":";
    o += v;
  };
  auto u = [](std::uint64_t v) { return std::to_string(v); };
  field("scope", text::json_string(s.scope));
  field("hits", u(s.hits));
  field("misses", u(s.misses));
  field("hit_ratio", num(s.hit_ratio()));
  field("inserts", u(s.inserts));
  field("updates", u(s.updates));
  field("rejected_too_large", u(s.rejected_too_large));
  std::string ev = "{";
  for (int i = 0; i < static_cast<int>(EvictionCause::kCount_); ++i) {
    if (i) ev += ',';
    ev += "\"" + std::string(eviction_cause_name(static_cast<EvictionCause>(i))) +
          "\":" + u(s.evictions[i]);
  }
  field("evictions", ev + "}");
  field("expirations", u(s.expirations));
  field("entries", u(s.entries));
  field("bytes", u(s.bytes));
  field("max_entries", u(s.max_entries));
  field("max_bytes", u(s.max_bytes));
  field("utilisation", num(s.utilisation()));
  field("loads", u(s.loads));
  field("load_failures", u(s.load_failures));
  field("load_timeouts", u(s.load_timeouts));
  field("coalesced", u(s.coalesced));
  field("negative_hits", u(s.negative_hits));
  field("stale_hits", u(s.stale_hits));
  field("refreshes", u(s.refreshes));
  field("refresh_failures", u(s.refresh_failures));
  field("late_loads", u(s.late_loads));
  field("load_latency_ms",
        "{\"count\":" + u(s.load_latency.count) + ",\"p50\":" + num(s.load_latency.p50_ms) +
            ",\"p90\":" + num(s.load_latency.p90_ms) + ",\"p99\":" + num(s.load_latency.p99_ms) +
            ",\"max\":" + num(s.load_latency.max_ms) + "}");
  return o + "}";
}

}  // namespace

std::string StatsSnapshot::to_json() const {
  std::string o = "{\"total\":" + callcache::to_json(total) + ",\"namespaces\":{";
  for (std::size_t i = 0; i < namespaces.size(); ++i) {
    if (i) o += ',';
    o += text::json_string(namespaces[i].name) + ":" + callcache::to_json(namespaces[i]);
  }
  return o + "}}";
}

std::string StatsSnapshot::to_prometheus() const {
  std::string o;
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    o += "# HELP callcache_";
    o += name;
    o += ' ';
    o += help;
    o += "\n# TYPE callcache_";
    o += name;
    o += ' ';
    o += type;
    o += '\n';
    for (const auto& s : namespaces) {
      o += "callcache_";
      o += name;
      o += "{namespace=\"" + text::label_value(s.name) + "\",scope=\"" + text::label_value(s.scope) + "\"} " +
           value(s) + "\n";
    }
  };
  auto u = [](std::uint64_t v) { return std::to_string(v); };
  family("hits_total", "counter", "Lookups that found a fresh entry.",
         [&](const NamespaceStats& s) { return u(s.hits); });
  family("misses_total", "counter", "Lookups that found nothing usable.",
         [&](const NamespaceStats& s) { return u(s.misses); });
  family("inserts_total", "counter", "New entries stored.",
         [&](const NamespaceStats& s) { return u(s.inserts); });
  family("updates_total", "counter", "Entries replaced by a newer value.",
         [&](const NamespaceStats& s) { return u(s.updates); });
  family("rejected_too_large_total", "counter", "Values not stored because they exceed max_bytes.",
         [&](const NamespaceStats& s) { return u(s.rejected_too_large); });
  o += "# HELP callcache_evictions_total Entries removed, by cause.\n# TYPE "
       "callcache_evictions_total counter\n";
  for (const auto& s : namespaces) {
    for (int i = 0; i < static_cast<int>(EvictionCause::kCount_); ++i) {
      o += "callcache_evictions_total{namespace=\"" + text::label_value(s.name) + "\",scope=\"" +
           text::label_value(s.scope) + "\",cause=\"" +
           eviction_cause_name(static_cast<EvictionCause>(i)) + "\"} " + u(s.evictions[i]) + "\n";
    }
  }
  family("expirations_total", "counter", "Entries removed because they expired.",
         [&](const NamespaceStats& s) { return u(s.expirations); });
  family("entries", "gauge", "Entries held.",
         [&](const NamespaceStats& s) { return u(s.entries); });
  family("bytes", "gauge", "Bytes charged by entries held.",
         [&](const NamespaceStats& s) { return u(s.bytes); });
  family("utilisation_ratio", "gauge", "Entries held / max_entries.",
         [&](const NamespaceStats& s) { return num(s.utilisation()); });
  family("loads_total", "counter", "Loader calls.",
         [&](const NamespaceStats& s) { return u(s.loads); });
  family("load_failures_total", "counter", "Loader calls that failed.",
         [&](const NamespaceStats& s) { return u(s.load_failures); });
  family("load_timeouts_total", "counter", "Loads failed by the load timeout.",
         [&](const NamespaceStats& s) { return u(s.load_timeouts); });
  family("coalesced_total", "counter", "Callers served by another caller's load.",
         [&](const NamespaceStats& s) { return u(s.coalesced); });
  family("negative_hits_total", "counter", "Remembered failures returned.",
         [&](const NamespaceStats& s) { return u(s.negative_hits); });
  family("stale_hits_total", "counter", "Expired values served while refreshing.",
         [&](const NamespaceStats& s) { return u(s.stale_hits); });
  family("refreshes_total", "counter", "Background refreshes.",
         [&](const NamespaceStats& s) { return u(s.refreshes); });
  family("refresh_failures_total", "counter", "Background refreshes that failed.",
         [&](const NamespaceStats& s) { return u(s.refresh_failures); });
  family("late_loads_total", "counter", "Loader completions discarded after their load timed out.",
         [&](const NamespaceStats& s) { return u(s.late_loads); });
  o += "# HELP callcache_load_latency_seconds Loader latency quantiles.\n# TYPE "
       "callcache_load_latency_seconds summary\n";
  for (const auto& s : namespaces) {
    const std::string l =
        "namespace=\"" + text::label_value(s.name) + "\",scope=\"" + text::label_value(s.scope) + "\"";
    o += "callcache_load_latency_seconds{" + l + ",quantile=\"0.5\"} " +
         num(s.load_latency.p50_ms / 1e3) + "\n";
    o += "callcache_load_latency_seconds{" + l + ",quantile=\"0.9\"} " +
         num(s.load_latency.p90_ms / 1e3) + "\n";
    o += "callcache_load_latency_seconds{" + l + ",quantile=\"0.99\"} " +
         num(s.load_latency.p99_ms / 1e3) + "\n";
    o += "callcache_load_latency_seconds_count{" + l + "} " + u(s.load_latency.count) + "\n";
  }
  return o;
}

StatsSnapshot Engine::stats() const {
  using internal::kLoadEvents;
  using internal::LoadEvent;
  StatsSnapshot snap;
  snap.total.name = "total";
  std::string scope;
  {
    std::lock_guard lock(impl_->label_mu);
    scope = impl_->scope_label;
  }
  snap.total.scope = scope;
  std::array<std::uint64_t, 512> all_latency{};
  std::uint64_t all_max = 0;
  for (const auto& nsp : impl_->namespaces) {
    const auto& ns = *nsp;
    NamespaceStats s;
    s.name = ns.name;
    s.scope = scope;
    for (const auto& shard : ns.shards) {
      const auto& c = shard->counters;
      s.inserts += c.inserts.load(std::memory_order_relaxed);
      s.updates += c.updates.load(std::memory_order_relaxed);
      s.rejected_too_large += c.rejected.load(std::memory_order_relaxed);
      for (int i = 0; i < static_cast<int>(EvictionCause::kCount_); ++i)
        s.evictions[i] += c.evictions[i].load(std::memory_order_relaxed);
      s.expirations += c.expirations.load(std::memory_order_relaxed);
      s.entries += shard->entries();
      s.bytes += shard->bytes();
    }
    s.updates += ns.lookups.load(internal::kInPlaceUpdateCount);
    s.hits += ns.lookups.load(internal::kHitCount);
    s.misses += ns.lookups.load(internal::kMissCount);
    auto ev = [&](internal::LoadEvent e) {
      return ns.load_events.load(static_cast<std::size_t>(e));
    };
    s.hits += ev(LoadEvent::kHit);
    s.misses += ev(LoadEvent::kMiss);
    s.loads = ev(LoadEvent::kLoad);
    s.load_failures = ev(LoadEvent::kLoadFailure);
    s.load_timeouts = ev(LoadEvent::kLoadTimeout);
    s.coalesced = ev(LoadEvent::kCoalesced);
    s.negative_hits = ev(LoadEvent::kNegativeHit);
    s.stale_hits = ev(LoadEvent::kStaleHit);
    s.refreshes = ev(LoadEvent::kRefresh);
    s.refresh_failures = ev(LoadEvent::kRefreshFailure);
    s.late_loads = ev(LoadEvent::kLateCompletion);
    s.max_entries = ns.policy.max_entries;
    s.max_bytes = ns.policy.max_bytes;
    s.load_latency = ns.latency.summary();
    ns.latency.merge_into(all_latency, all_max);
    add(snap.total, s);
    snap.namespaces.push_back(std::move(s));
  }
  snap.total.load_latency = internal::LatencyHistogram::summarise(all_latency, all_max);
  static_assert(kLoadEvents == 11);
  return snap;
}

}  // namespace callcache
