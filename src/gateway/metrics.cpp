#include "gateway/metrics.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "callcache/text_writer.h"
#include "gateway/net/http_message.h"

namespace callcache::gateway {

const char* outcome_name(Outcome o) noexcept {
  switch (o) {
    case Outcome::kHit: return "hit";
    case Outcome::kL2Hit: return "l2_hit";
    case Outcome::kMiss: return "miss";
    case Outcome::kCoalesced: return "coalesced";
    case Outcome::kStale: return "stale";
    case Outcome::kNegative: return "negative";
    case Outcome::kBypass: return "bypass";
    case Outcome::kPass: return "pass";
    case Outcome::kPaced: return "paced";
    case Outcome::kRejected: return "rejected";
    case Outcome::kError: return "error";
    case Outcome::kCount_: break;
  }
  return "unknown";
}

bool went_upstream(std::string_view o) noexcept {
  return o == "miss" || o == "pass" || o == "paced" || o == "bypass" || o == "error";
}

double latency_quantile_ms(const LatencyCounts& counts, double q) noexcept {
  std::uint64_t total = 0;
  for (std::uint64_t c : counts) total += c;
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  double below = 0;
  for (std::size_t b = 0; b < counts.size(); ++b) {
    const double here = static_cast<double>(counts[b]);
    if (here > 0 && below + here >= rank) {
      const double lo = b == 0 ? 0.0 : kLatencyBuckets[b - 1];
      if (b == kLatencyBuckets.size()) return lo * 1e3;
      const double hi = kLatencyBuckets[b];
      return (lo + (hi - lo) * std::clamp((rank - below) / here, 0.0, 1.0)) * 1e3;
    }
    below += here;
  }
  return kLatencyBuckets.back() * 1e3;
}

Metrics::MethodStats& Metrics::method(std::string_view name) {
  {
    std::shared_lock lock(mu_);
    auto it = methods_.find(name);
    if (it != methods_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = methods_[std::string(name)];
  if (!slot) slot = std::make_unique<MethodStats>();
  return *slot;
}

Metrics::RuleCounters& Metrics::rule(std::string_view label) {
  std::unique_lock lock(mu_);
  auto& slot = rules_[std::string(label)];
  if (!slot) slot = std::make_unique<RuleCounters>();
  return *slot;
}

void Metrics::upstream_call(std::string_view name, int status, std::chrono::nanoseconds latency) {
  upstream_calls_.fetch_add(1, kRelaxed);
  MethodStats& m = method(name);
  m.calls.fetch_add(1, kRelaxed);
  if (status == 0) {
    m.failed.fetch_add(1, kRelaxed);
  } else if (status == 429) {
    m.status_429.fetch_add(1, kRelaxed);
    received_429_.fetch_add(1, kRelaxed);
  } else if (status >= 500) {
    m.status_5xx.fetch_add(1, kRelaxed);
  } else if (status >= 400) {
    m.errors.fetch_add(1, kRelaxed);
  }
  double s = std::chrono::duration<double>(latency).count();
  std::size_t b = 0;
  while (b < kLatencyBuckets.size() && s > kLatencyBuckets[b]) ++b;
  m.buckets[b].fetch_add(1, kRelaxed);
  m.latency_ns_sum.fetch_add(static_cast<std::uint64_t>(latency.count()), kRelaxed);
}

Metrics::PacingRuleStats& Metrics::pacing_rule(std::string_view name) {
  {
    std::shared_lock lock(mu_);
    auto it = pacing_rules_.find(name);
    if (it != pacing_rules_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = pacing_rules_[std::string(name)];
  if (!slot) slot = std::make_unique<PacingRuleStats>();
  return *slot;
}

void Metrics::pacing_wait(std::chrono::nanoseconds wait, std::string_view rule) {
  const auto ns = static_cast<std::uint64_t>(wait.count());
  pacing_waits_.fetch_add(1, kRelaxed);
  pacing_wait_ns_.fetch_add(ns, kRelaxed);
  if (rule.empty()) return;
  PacingRuleStats& r = pacing_rule(rule);
  r.waits.fetch_add(1, kRelaxed);
  r.wait_ns.fetch_add(ns, kRelaxed);
}

void Metrics::pacing_refused(std::string_view rule) {
  pacing_refused_.fetch_add(1, kRelaxed);
  if (!rule.empty()) pacing_rule(rule).refused.fetch_add(1, kRelaxed);
}

void Metrics::tenant_answer(TenantId tenant, std::string_view outcome) {
  if (!went_upstream(outcome)) return;
  {
    std::shared_lock lock(tenants_mu_);
    auto it = tenants_.find(tenant.value);
    if (it != tenants_.end()) {
      it->second.fetch_add(1, kRelaxed);
      return;
    }
  }
  std::unique_lock lock(tenants_mu_);
  auto it = tenants_.find(tenant.value);
  if (it == tenants_.end()) {
    if (tenants_.size() >= kMaxTenants) {
      tenants_other_.fetch_add(1, kRelaxed);
      return;
    }
    it = tenants_.try_emplace(tenant.value, 0).first;
  }
  it->second.fetch_add(1, kRelaxed);
}

MetricsSnapshot Metrics::snapshot() const {
  MetricsSnapshot s;
  for (std::size_t i = 0; i < kOutcomeCount; ++i) s.outcomes[i] = outcomes_.load(i);
  s.upstream_calls = upstream_calls();
  s.received_429 = received_429();
  s.retried_429 = retried_429_.load(kRelaxed);
  s.pacing_waits = pacing_waits();
  s.pacing_refused = pacing_refused_.load(kRelaxed);
  std::shared_lock lock(mu_);
  s.methods.reserve(methods_.size());
  for (const auto& [name, m] : methods_) {
    MetricsSnapshot::Method& out = s.methods.emplace_back();
    out.name = name;
    out.calls = m->calls.load(kRelaxed);
    for (std::size_t b = 0; b < out.latency.size(); ++b)
      out.latency[b] = m->buckets[b].load(kRelaxed);
  }
  s.rules.reserve(rules_.size());
  for (const auto& [label, r] : rules_) {
    MetricsSnapshot::Rule& out = s.rules.emplace_back();
    out.label = label;
    for (std::size_t i = 0; i < kOutcomeCount; ++i) out.outcomes[i] = r->outcomes[i].load(kRelaxed);
  }
  s.pacing.reserve(pacing_rules_.size());
  for (const auto& [name, r] : pacing_rules_) {
    s.pacing.push_back({name, r->waits.load(kRelaxed), r->refused.load(kRelaxed)});
  }
  return s;
}

namespace {
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace

std::string Metrics::to_prometheus() const {
  std::string out;
  out.reserve(4096);
  out += "# HELP callcache_gateway_requests_total Requests by how they were answered.\n";
  out += "# TYPE callcache_gateway_requests_total counter\n";
  for (int i = 0; i < static_cast<int>(Outcome::kCount_); ++i) {
    out += "callcache_gateway_requests_total{outcome=\"";
    out += outcome_name(static_cast<Outcome>(i));
    out += "\"} " + std::to_string(outcomes_.load(static_cast<std::size_t>(i))) + "\n";
  }
  auto counter = [&](const char* name, const char* help, std::uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
           " " + std::to_string(v) + "\n";
  };
  counter("callcache_gateway_hits_total", "Reads answered from the cache (L1 or L2).",
          outcome(Outcome::kHit) + outcome(Outcome::kL2Hit));
  counter("callcache_gateway_misses_total", "Cacheable reads that called upstream.",
          outcome(Outcome::kMiss));
  counter("callcache_gateway_coalesced_total",
          "Reads that waited for an identical in-flight upstream call.",
          outcome(Outcome::kCoalesced));
  counter("callcache_gateway_stale_served_total", "Stale answers served.",
          outcome(Outcome::kStale));
  counter("callcache_gateway_upstream_calls_total", "Upstream exchanges.", upstream_calls());
  counter("callcache_gateway_429_received_total", "Upstream answers with status 429.",
          received_429());
  counter("callcache_gateway_429_retried_total",
          "Upstream 429s retried by the gateway after the back-off.",
          retried_429_.load(kRelaxed));
  counter("callcache_gateway_429_avoided_total",
          "Sends delayed by pacing instead of risking an upstream 429.", pacing_waits());
  counter("callcache_gateway_pacing_refused_total",
          "Sends refused with 429 because pacing would exceed pacing.max_wait.",
          pacing_refused_.load(kRelaxed));
  out += "# HELP callcache_gateway_pacing_wait_seconds_total Time sends waited for pacing.\n";
  out += "# TYPE callcache_gateway_pacing_wait_seconds_total counter\n";
  out += "callcache_gateway_pacing_wait_seconds_total " +
         num(static_cast<double>(pacing_wait_ns_.load(kRelaxed)) / 1e9) + "\n";
  {
    std::shared_lock lock(mu_);
    if (!pacing_rules_.empty()) {
      out +=
          "# HELP callcache_gateway_pacing_rule_waits_total Paced sends delayed, by the rule "
          "that demanded the wait.\n"
          "# TYPE callcache_gateway_pacing_rule_waits_total counter\n";
      for (const auto& [name, r] : pacing_rules_) {
        out += "callcache_gateway_pacing_rule_waits_total{rule=\"" + text::label_value(name) + "\"} " +
               std::to_string(r->waits.load(kRelaxed)) + "\n";
      }
      out +=
          "# HELP callcache_gateway_pacing_rule_refused_total Paced sends refused with 429, "
          "by the rule that demanded the wait.\n"
          "# TYPE callcache_gateway_pacing_rule_refused_total counter\n";
      for (const auto& [name, r] : pacing_rules_) {
        out += "callcache_gateway_pacing_rule_refused_total{rule=\"" + text::label_value(name) + "\"} " +
               std::to_string(r->refused.load(kRelaxed)) + "\n";
      }
    }
  }
  counter("callcache_gateway_tier_errors_total", "L2 tier operations that failed.",
          tier_errors());
  const StreamCounters& st = stream_counters();
  counter("callcache_gateway_streamed_uploads_total",
          "Request bodies streamed to the upstream in chunks.", st.uploads.load(kRelaxed));
  counter("callcache_gateway_streamed_upload_bytes_total", "Bytes of streamed request bodies.",
          st.upload_bytes.load(kRelaxed));
  counter("callcache_gateway_streamed_downloads_total",
          "Upstream answer bodies streamed to clients in chunks.", st.downloads.load(kRelaxed));
  counter("callcache_gateway_streamed_download_bytes_total", "Bytes of streamed answer bodies.",
          st.download_bytes.load(kRelaxed));
  counter("callcache_gateway_streams_aborted_total",
          "Streamed bodies that ended early (client or upstream gone, timeout, limit).",
          st.aborted.load(kRelaxed));
  out += "# HELP callcache_gateway_stream_buffer_bytes Chunk buffers of streamed bodies in use.\n";
  out += "# TYPE callcache_gateway_stream_buffer_bytes gauge\n";
  out += "callcache_gateway_stream_buffer_bytes " +
         std::to_string(st.buffer_bytes.load(kRelaxed)) + "\n";

  std::shared_lock lock(mu_);
  out += "# HELP callcache_gateway_upstream_method_calls_total Upstream calls by method and result.\n";
  out += "# TYPE callcache_gateway_upstream_method_calls_total counter\n";
  for (const auto& [name, m] : methods_) {
    std::uint64_t calls = m->calls.load(kRelaxed), e = m->errors.load(kRelaxed),
                  t = m->status_429.load(kRelaxed), f = m->status_5xx.load(kRelaxed),
                  x = m->failed.load(kRelaxed);
    std::string l = "callcache_gateway_upstream_method_calls_total{method=\"" + text::label_value(name) + "\",result=\"";
    out += l + "ok\"} " + std::to_string(calls - e - t - f - x) + "\n";
    out += l + "error\"} " + std::to_string(e) + "\n";
    out += l + "429\"} " + std::to_string(t) + "\n";
    out += l + "5xx\"} " + std::to_string(f) + "\n";
    out += l + "failed\"} " + std::to_string(x) + "\n";
  }
  out += "# HELP callcache_gateway_upstream_latency_seconds Upstream exchange latency.\n";
  out += "# TYPE callcache_gateway_upstream_latency_seconds histogram\n";
  for (const auto& [name, m] : methods_) {
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= kLatencyBuckets.size(); ++b) {
      cumulative += m->buckets[b].load(kRelaxed);
      out += "callcache_gateway_upstream_latency_seconds_bucket{method=\"" + text::label_value(name) + "\",le=\"" +
             (b < kLatencyBuckets.size() ? num(kLatencyBuckets[b]) : std::string("+Inf")) +
             "\"} " + std::to_string(cumulative) + "\n";
    }
    out += "callcache_gateway_upstream_latency_seconds_sum{method=\"" + text::label_value(name) + "\"} " +
           num(static_cast<double>(m->latency_ns_sum.load(kRelaxed)) / 1e9) + "\n";
    out += "callcache_gateway_upstream_latency_seconds_count{method=\"" + text::label_value(name) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  if (!rules_.empty()) {
    out += "# HELP callcache_gateway_rule_requests_total Generic API requests by rule and outcome.\n";
    out += "# TYPE callcache_gateway_rule_requests_total counter\n";
    for (const auto& [label, r] : rules_) {
      for (int i = 0; i < static_cast<int>(Outcome::kCount_); ++i) {
        out += "callcache_gateway_rule_requests_total{rule=\"" + text::label_value(label) + "\",outcome=\"" +
               outcome_name(static_cast<Outcome>(i)) + "\"} " +
               std::to_string(r->outcomes[i].load(kRelaxed)) + "\n";
      }
    }
  }
  return out;
}

std::string Metrics::to_json(std::size_t top_tenants) const {
  std::string out = "{\"requests\":{";
  for (int i = 0; i < static_cast<int>(Outcome::kCount_); ++i) {
    if (i) out += ",";
    out += std::string("\"") + outcome_name(static_cast<Outcome>(i)) +
           "\":" + std::to_string(outcomes_.load(static_cast<std::size_t>(i)));
  }
  out += "},\"upstream\":{\"calls\":" + std::to_string(upstream_calls()) +
         ",\"429_received\":" + std::to_string(received_429()) +
         ",\"429_retried\":" + std::to_string(retried_429_.load(kRelaxed)) + ",\"methods\":{";
  {
    std::shared_lock lock(mu_);
    bool first = true;
    for (const auto& [name, m] : methods_) {
      std::uint64_t calls = m->calls.load(kRelaxed);
      double mean_ms = calls ? static_cast<double>(m->latency_ns_sum.load(kRelaxed)) / 1e6 /
                                   static_cast<double>(calls)
                             : 0.0;
      LatencyCounts latency;
      for (std::size_t b = 0; b < latency.size(); ++b) latency[b] = m->buckets[b].load(kRelaxed);
      out += std::string(first ? "" : ",") + text::json_string(name) +
             ":{\"calls\":" + std::to_string(calls) +
             ",\"errors\":" + std::to_string(m->errors.load(kRelaxed)) +
             ",\"429\":" + std::to_string(m->status_429.load(kRelaxed)) +
             ",\"5xx\":" + std::to_string(m->status_5xx.load(kRelaxed)) +
             ",\"failed\":" + std::to_string(m->failed.load(kRelaxed)) +
             ",\"mean_latency_ms\":" + num(mean_ms) +
             ",\"p50_ms\":" + num(latency_quantile_ms(latency, 0.5)) +
             ",\"p99_ms\":" + num(latency_quantile_ms(latency, 0.99)) + "}";
      first = false;
    }
  }
  out += "}},\"pacing\":{\"waits\":" + std::to_string(pacing_waits()) +
         ",\"wait_seconds\":" + num(static_cast<double>(pacing_wait_ns_.load(kRelaxed)) / 1e9) +
         ",\"refused\":" + std::to_string(pacing_refused_.load(kRelaxed)) + ",\"rules\":{";
  {
    std::shared_lock lock(mu_);
    bool first = true;
    for (const auto& [name, r] : pacing_rules_) {
      out += std::string(first ? "" : ",") + text::json_string(name) +
             ":{\"waits\":" + std::to_string(r->waits.load(kRelaxed)) +
             ",\"wait_seconds\":" + num(static_cast<double>(r->wait_ns.load(kRelaxed)) / 1e9) +
             ",\"refused\":" + std::to_string(r->refused.load(kRelaxed)) + "}";
      first = false;
    }
  }
  out += "}},\"tier_errors\":" + std::to_string(tier_errors());
  {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> top;  // (calls, tenant)
    std::size_t tracked = 0;
    {
      std::shared_lock lock(tenants_mu_);
      tracked = tenants_.size();
      top.reserve(tracked);
      for (const auto& [id, calls] : tenants_) top.emplace_back(calls.load(kRelaxed), id);
    }
    const std::size_t n = std::min(top_tenants, top.size());
    std::partial_sort(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(n), top.end(),
                      [](const auto& a, const auto& b) {
                        return a.first != b.first ? a.first > b.first : a.second < b.second;
                      });
    out += ",\"tenants\":{\"tracked\":" + std::to_string(tracked) +
           ",\"other_upstream_calls\":" + std::to_string(tenants_other_.load(kRelaxed)) +
           ",\"top\":[";
    for (std::size_t i = 0; i < n; ++i) {
      out += std::string(i ? "," : "") + "{\"tenant\":\"" + to_hex(TenantId{top[i].second}) +
             "\",\"upstream_calls\":" + std::to_string(top[i].first) + "}";
    }
    out += "]}";
  }
  out += ",\"rules\":{";
  {
    std::shared_lock lock(mu_);
    bool first = true;
    for (const auto& [label, r] : rules_) {
      out += std::string(first ? "" : ",") + text::json_string(label) + ":{";
      for (int i = 0; i < static_cast<int>(Outcome::kCount_); ++i) {
        out += std::string(i ? "," : "") + "\"" + outcome_name(static_cast<Outcome>(i)) +
               "\":" + std::to_string(r->outcomes[i].load(kRelaxed));
      }
      out += "}";
      first = false;
    }
  }
  out += "}}";
  return out;
}

}  // namespace callcache::gateway
