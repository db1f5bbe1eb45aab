// RateLimiterStats rendered as JSON and Prometheus text.
#include "callcache/rate_limiter.h"
#include "callcache/text_writer.h"
#include "render_util.h"

namespace callcache {

std::string RateLimiterStats::to_json() const {
  std::string out = "{\"tracked_keys\":" + std::to_string(tracked_keys) +
                    ",\"active_penalties\":" + std::to_string(active_penalties) + ",\"rules\":{";
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const RuleStats& r = rules[i];
    if (i) out += ',';
    text::append_json_string(out, r.name);
    out += ":{\"calls\":" + std::to_string(r.calls) + ",\"waits\":" + std::to_string(r.waits) +
           ",\"total_wait_seconds\":" + limits::seconds_number(r.total_wait) +
           ",\"max_wait_seconds\":" + limits::seconds_number(r.max_wait) +
           ",\"deadline_refusals\":" + std::to_string(r.deadline_refusals) +
           ",\"penalties\":" + std::to_string(r.penalties) + ",\"keys\":" + std::to_string(r.keys) +
           "}";
  }
  out += "}}";
  return out;
}

std::string RateLimiterStats::to_prometheus() const {
  struct Metric {
    const char* name;
    const char* type;
    const char* help;
  };
  static constexpr Metric kMetrics[] = {
      {"callcache_ratelimit_calls_total", "counter", "Admitted calls matched by the rule."},
      {"callcache_ratelimit_waits_total", "counter", "Admitted calls the rule delayed."},
      {"callcache_ratelimit_wait_seconds_total", "counter", "Sum of waits the rule imposed."},
      {"callcache_ratelimit_wait_seconds_max", "gauge", "Longest wait the rule imposed."},
      {"callcache_ratelimit_deadline_refusals_total", "counter",
       "Calls refused because the rule's wait exceeded the caller's deadline."},
      {"callcache_ratelimit_penalties_total", "counter", "Upstream back-offs applied."},
      {"callcache_ratelimit_keys", "gauge", "Keys tracked (not idle)."},
  };
  std::string out;
  for (std::size_t m = 0; m < std::size(kMetrics); ++m) {
    out += std::string("# HELP ") + kMetrics[m].name + " " + kMetrics[m].help + "\n";
    out += std::string("# TYPE ") + kMetrics[m].name + " " + kMetrics[m].type + "\n";
    for (const RuleStats& r : rules) {
      std::string value;
      switch (m) {
        case 0: value = std::to_string(r.calls); break;
        case 1: value = std::to_string(r.waits); break;
        case 2: value = limits::seconds_number(r.total_wait); break;
        case 3: value = limits::seconds_number(r.max_wait); break;
        case 4: value = std::to_string(r.deadline_refusals); break;
        case 5: value = std::to_string(r.penalties); break;
        default: value = std::to_string(r.keys); break;
      }
      out += kMetrics[m].name;
      out += "{rule=\"";
      text::append_label_value(out, r.name);
      out += "\"} " + value + "\n";
    }
  }
  out += "# HELP callcache_ratelimit_tracked_keys Keys held in memory.\n"
         "# TYPE callcache_ratelimit_tracked_keys gauge\n"
         "callcache_ratelimit_tracked_keys " + std::to_string(tracked_keys) + "\n";
  return out;
}

}  // namespace callcache
