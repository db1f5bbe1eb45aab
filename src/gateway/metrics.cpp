#include "gateway/metrics.h"

#include <cstdio>
#include <mutex>

#include "gateway/http_message.h"

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

void Metrics::pacing_wait(std::chrono::nanoseconds wait) noexcept {
  pacing_waits_.fetch_add(1, kRelaxed);
  pacing_wait_ns_.fetch_add(static_cast<std::uint64_t>(wait.count()), kRelaxed);
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
    std::string l = "callcache_gateway_upstream_method_calls_total{method=\"" + name + "\",result=\"";
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
      out += "callcache_gateway_upstream_latency_seconds_bucket{method=\"" + name + "\",le=\"" +
             (b < kLatencyBuckets.size() ? num(kLatencyBuckets[b]) : std::string("+Inf")) +
             "\"} " + std::to_string(cumulative) + "\n";
    }
    out += "callcache_gateway_upstream_latency_seconds_sum{method=\"" + name + "\"} " +
           num(static_cast<double>(m->latency_ns_sum.load(kRelaxed)) / 1e9) + "\n";
    out += "callcache_gateway_upstream_latency_seconds_count{method=\"" + name + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  if (!rules_.empty()) {
    out += "# HELP callcache_gateway_rule_requests_total Generic API requests by rule and outcome.\n";
    out += "# TYPE callcache_gateway_rule_requests_total counter\n";
    for (const auto& [label, r] : rules_) {
      for (int i = 0; i < static_cast<int>(Outcome::kCount_); ++i) {
        out += "callcache_gateway_rule_requests_total{rule=\"" + label + "\",outcome=\"" +
               outcome_name(static_cast<Outcome>(i)) + "\"} " +
               std::to_string(r->outcomes[i].load(kRelaxed)) + "\n";
      }
    }
  }
  return out;
}

std::string Metrics::to_json() const {
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
      out += std::string(first ? "" : ",") + "\"" + name + "\":{\"calls\":" +
             std::to_string(calls) + ",\"mean_latency_ms\":" + num(mean_ms) + "}";
      first = false;
    }
  }
  out += "}},\"pacing\":{\"waits\":" + std::to_string(pacing_waits()) + ",\"wait_seconds\":" +
         num(static_cast<double>(pacing_wait_ns_.load(kRelaxed)) / 1e9) +
         ",\"refused\":" + std::to_string(pacing_refused_.load(kRelaxed)) +
         "},\"tier_errors\":" + std::to_string(tier_errors());
  out += ",\"rules\":{";
  {
    std::shared_lock lock(mu_);
    bool first = true;
    for (const auto& [label, r] : rules_) {
      out += std::string(first ? "" : ",") + "\"" + label + "\":{";
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
