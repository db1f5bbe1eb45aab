// Counters of the flow primitives rendered as JSON and Prometheus text
// (hand-written: the toolkit links no JSON library; label values are escaped
// by callcache/text_writer.h).
#include <initializer_list>
#include <utility>

#include "callcache/bounded_queue.h"
#include "callcache/seen_set.h"
#include "callcache/state_store.h"
#include "callcache/text_writer.h"

namespace callcache {
namespace {

using Fields = std::initializer_list<std::pair<const char*, std::uint64_t>>;

std::string json_object(Fields fields, const char* extra = nullptr) {
  std::string out = "{";
  for (const auto& [name, value] : fields) {
    if (out.size() > 1) out += ',';
    out += '"';
    out += name;
    out += "\":" + std::to_string(value);
  }
  if (extra) out += extra;
  out += '}';
  return out;
}

// One gauge/counter line per field: <prefix>_<field>{<label>="<name>"} value.
std::string prometheus(const char* prefix, const char* label, std::string_view name, Fields fields) {
  const std::string escaped = text::label_value(name);
  std::string out;
  for (const auto& [field, value] : fields) {
    out += std::string(prefix) + "_" + field + "{" + label + "=\"" + escaped + "\"} " +
           std::to_string(value) + "\n";
  }
  return out;
}

}  // namespace

std::string BoundedQueueStats::to_json() const {
  return json_object({{"enqueued", enqueued},
                      {"dequeued", dequeued},
                      {"dropped_newest", dropped_newest},
                      {"dropped_oldest", dropped_oldest},
                      {"rejected", rejected},
                      {"timed_out", timed_out},
                      {"refused_closed", refused_closed},
                      {"high_water", high_water},
                      {"depth", depth},
                      {"capacity", capacity}},
                     closed ? ",\"closed\":true" : ",\"closed\":false");
}

std::string BoundedQueueStats::to_prometheus(std::string_view name) const {
  return prometheus("callcache_queue", "queue", name,
                    {{"enqueued_total", enqueued},
                     {"dequeued_total", dequeued},
                     {"dropped_newest_total", dropped_newest},
                     {"dropped_oldest_total", dropped_oldest},
                     {"rejected_total", rejected},
                     {"timed_out_total", timed_out},
                     {"refused_closed_total", refused_closed},
                     {"high_water", high_water},
                     {"depth", depth},
                     {"capacity", capacity}});
}

std::string SeenSetStats::to_json() const {
  return json_object({{"inserted", inserted},
                      {"duplicates", duplicates},
                      {"evicted", evicted},
                      {"expired", expired},
                      {"size", size},
                      {"capacity", capacity}});
}

std::string SeenSetStats::to_prometheus(std::string_view name) const {
  return prometheus("callcache_seen", "set", name,
                    {{"inserted_total", inserted},
                     {"duplicates_total", duplicates},
                     {"evicted_total", evicted},
                     {"expired_total", expired},
                     {"size", size},
                     {"capacity", capacity}});
}

std::string StateStoreStats::to_json() const {
  return json_object({{"active", active},
                      {"created", created},
                      {"updated", updated},
                      {"expired", expired},
                      {"refusals", refusals},
                      {"erased", erased},
                      {"sweeps", sweeps},
                      {"capacity", capacity}});
}

std::string StateStoreStats::to_prometheus(std::string_view name) const {
  return prometheus("callcache_state", "store", name,
                    {{"active", active},
                     {"created_total", created},
                     {"updated_total", updated},
                     {"expired_total", expired},
                     {"refusals_total", refusals},
                     {"erased_total", erased},
                     {"sweeps_total", sweeps},
                     {"capacity", capacity}});
}

}  // namespace callcache
