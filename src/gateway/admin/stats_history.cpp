// StatsHistory (stats_history.h): two rings of interval points and their
// column-oriented JSON.
#include "gateway/admin/stats_history.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "gateway/logic/request.h"

namespace callcache::gateway {
namespace {

constexpr std::size_t kHit = static_cast<std::size_t>(Outcome::kHit);
constexpr std::size_t kL2Hit = static_cast<std::size_t>(Outcome::kL2Hit);
constexpr std::size_t kMiss = static_cast<std::size_t>(Outcome::kMiss);
constexpr std::size_t kCoalesced = static_cast<std::size_t>(Outcome::kCoalesced);
constexpr std::size_t kStale = static_cast<std::size_t>(Outcome::kStale);
constexpr std::size_t kNegative = static_cast<std::size_t>(Outcome::kNegative);
constexpr std::size_t kBypass = static_cast<std::size_t>(Outcome::kBypass);
constexpr std::size_t kRejected = static_cast<std::size_t>(Outcome::kRejected);

// after - before, 0 if a counter went backwards (it never should).
std::uint64_t delta(std::uint64_t before, std::uint64_t after) {
  return after > before ? after - before : 0;
}

using Outcomes = std::array<std::uint64_t, kOutcomeCount>;

std::uint64_t hits_of(const Outcomes& o) {
  return o[kHit] + o[kL2Hit] + o[kCoalesced] + o[kStale] + o[kNegative];
}
std::uint64_t reads_of(const Outcomes& o) { return hits_of(o) + o[kMiss] + o[kBypass]; }

std::size_t index_of(std::vector<std::string>& table, std::string_view name) {
  auto it = std::find(table.begin(), table.end(), name);
  if (it != table.end()) return static_cast<std::size_t>(it - table.begin());
  table.emplace_back(name);
  return table.size() - 1;
}

// Outcome counts per API: "telegram" is everything not counted by a generic
// API rule ("<api>:<rule>").
std::vector<std::pair<std::string_view, Outcomes>> per_api(const MetricsSnapshot& m) {
  std::vector<std::pair<std::string_view, Outcomes>> out;
  out.emplace_back("telegram", m.outcomes);
  for (const auto& rule : m.rules) {
    std::string_view api = std::string_view(rule.label).substr(0, rule.label.find(':'));
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& a) { return a.first == api; });
    if (it == out.end()) {
      out.emplace_back(api, Outcomes{});
      it = out.end() - 1;
    }
    for (std::size_t i = 0; i < kOutcomeCount; ++i) {
      it->second[i] += rule.outcomes[i];
      // Counters are read one by one: never let telegram go below zero.
      out[0].second[i] -= std::min(out[0].second[i], rule.outcomes[i]);
    }
  }
  return out;
}

void append_number(std::string& out, double v) {
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%.4g", v);
  out.append(buf, static_cast<std::size_t>(n));
}

void append_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

// "[v(p0),v(p1),...]" over the selected points.
template <typename Points, typename F>
void append_column(std::string& out, const Points& points, F value) {
  out += '[';
  bool first = true;
  for (const auto* p : points) {
    if (!first) out += ',';
    first = false;
    value(out, *p);
  }
  out += ']';
}

}  // namespace

void StatsHistory::push(std::deque<Point>& ring, Point p, std::size_t capacity) {
  ring.push_back(std::move(p));
  while (ring.size() > capacity) ring.pop_front();
}

StatsHistory::Point StatsHistory::diff(const StatsSample& before, const StatsSample& after) {
  Point p;
  p.unix_ms = after.unix_ms;
  p.seconds = std::chrono::duration<float>(after.at - before.at).count();
  const MetricsSnapshot& a = after.gateway;
  const MetricsSnapshot& b = before.gateway;
  for (std::size_t i = 0; i < kOutcomeCount; ++i)
    p.outcomes[i] = delta(b.outcomes[i], a.outcomes[i]);
  p.upstream_calls = delta(b.upstream_calls, a.upstream_calls);
  p.received_429 = delta(b.received_429, a.received_429);
  p.retried_429 = delta(b.retried_429, a.retried_429);

  auto apis_after = per_api(a);
  auto apis_before = per_api(b);
  for (const auto& [api, outcomes] : apis_after) {
    std::size_t i = index_of(apis_, api);
    if (p.apis.size() <= i) p.apis.resize(i + 1);
    Outcomes was{};
    for (const auto& [name, o] : apis_before) {
      if (name == api) was = o;
    }
    p.apis[i] = {delta(hits_of(was), hits_of(outcomes)), delta(reads_of(was), reads_of(outcomes))};
  }

  for (const auto& rule : a.pacing) {
    std::size_t i = index_of(pacing_, rule.name);
    if (p.pacing.size() <= i) p.pacing.resize(i + 1);
    std::uint64_t waits = 0, refused = 0;
    for (const auto& r : b.pacing) {
      if (r.name == rule.name) waits = r.waits, refused = r.refused;
    }
    p.pacing[i] = {delta(waits, rule.waits), delta(refused, rule.refused)};
  }

  // Both method tables are sorted by name.
  auto bm = b.methods.begin();
  for (const auto& m : a.methods) {
    while (bm != b.methods.end() && bm->name < m.name) ++bm;
    const bool known = bm != b.methods.end() && bm->name == m.name;
    if (delta(known ? bm->calls : 0, m.calls) == 0) continue;
    LatencyCounts counts = m.latency;
    if (known) {
      for (std::size_t k = 0; k < counts.size(); ++k) counts[k] = delta(bm->latency[k], counts[k]);
    }
    MethodPoint mp;
    mp.method = static_cast<std::uint32_t>(index_of(methods_, m.name));
    mp.calls = static_cast<std::uint32_t>(delta(known ? bm->calls : 0, m.calls));
    mp.p50_ms = static_cast<float>(latency_quantile_ms(counts, 0.5));
    mp.p99_ms = static_cast<float>(latency_quantile_ms(counts, 0.99));
    p.latency.push_back(mp);
  }

  for (const auto& ns : after.namespaces) {
    auto it = std::find_if(namespaces_.begin(), namespaces_.end(),
                           [&](const auto& n) { return n.name == ns.name; });
    if (it == namespaces_.end()) it = namespaces_.insert(namespaces_.end(), ns);
    it->max_entries = ns.max_entries;
    it->max_bytes = ns.max_bytes;
    const auto i = static_cast<std::size_t>(it - namespaces_.begin());
    if (p.namespaces.size() <= i) p.namespaces.resize(i + 1);
    NamespacePoint& np = p.namespaces[i];
    for (const auto& was : before.namespaces) {
      if (was.name != ns.name) continue;
      np.hits = delta(was.hits, ns.hits);
      np.lookups = delta(was.lookups, ns.lookups);
    }
    np.entries = ns.entries;
    np.bytes = ns.bytes;
  }

  if (!after.l2.backend.empty()) l2_backend_ = after.l2.backend;
  p.l2_down = after.l2.down;
  p.l2_gets = delta(before.l2.gets, after.l2.gets);
  p.l2_hits = delta(before.l2.hits, after.l2.hits);
  p.l2_errors = delta(before.l2.errors, after.l2.errors);
  p.l2_pending = after.l2.pending_writes;
  return p;
}

void StatsHistory::record(StatsSample sample) {
  std::lock_guard lock(mu_);
  if (!previous_) {
    started_ms_ = sample.unix_ms;
    coarse_base_ = sample;
    previous_ = std::move(sample);
    return;
  }
  push(fine_, diff(*previous_, sample), kFinePoints);
  if (++since_coarse_ == kCoarseEvery) {
    push(coarse_, diff(*coarse_base_, sample), kCoarsePoints);
    coarse_base_ = sample;
    since_coarse_ = 0;
  }
  previous_ = std::move(sample);
}

std::size_t StatsHistory::size(HistoryWindow window) const {
  std::lock_guard lock(mu_);
  return window == HistoryWindow::kFine ? fine_.size() : coarse_.size();
}

Result<StatsHistory::Query> StatsHistory::parse_query(std::string_view query) {
  auto params = logic::parse_query(query);
  if (!params.ok()) return params.status();
  Query q;
  for (const auto& [name, value] : *params) {
    if (name == "window") {
      if (value == "5m") {
        q.window = HistoryWindow::kFine;
      } else if (value == "1h") {
        q.window = HistoryWindow::kCoarse;
      } else {
        return Status::invalid_argument("window: expected 5m or 1h, got '" + value + "'");
      }
    } else if (name == "since") {
      auto r = std::from_chars(value.data(), value.data() + value.size(), q.since_ms);
      if (r.ec != std::errc() || r.ptr != value.data() + value.size() || q.since_ms < 0) {
        return Status::invalid_argument("since: expected Unix time in milliseconds, got '" + value +
                                        "'");
      }
    } else {
      return Status::invalid_argument("unknown parameter '" + name + "' (window, since)");
    }
  }
  return q;
}

std::string StatsHistory::to_json(HistoryWindow window, std::int64_t since_ms) const {
  std::lock_guard lock(mu_);
  const std::deque<Point>& ring = window == HistoryWindow::kFine ? fine_ : coarse_;
  std::vector<const Point*> points;
  for (const Point& p : ring) {
    if (p.unix_ms > since_ms) points.push_back(&p);
  }
  const bool fine = window == HistoryWindow::kFine;
  std::string out;
  out.reserve(1024 + points.size() * 512);
  out += "{\"resolution_s\":";
  out += fine ? "1" : "10";
  out += ",\"window_s\":";
  out += fine ? "300" : "3600";
  out += ",\"started_ms\":" + std::to_string(started_ms_) +
         ",\"now_ms\":" + std::to_string(previous_ ? previous_->unix_ms : 0);
  auto column = [&](const char* key, auto value) {
    out += ",\"";
    out += key;
    out += "\":";
    append_column(out, points, value);
  };
  auto integer = [](std::string& o, std::uint64_t v) { o += std::to_string(v); };
  column("t", [&](std::string& o, const Point& p) { o += std::to_string(p.unix_ms); });
  column("dt", [&](std::string& o, const Point& p) { append_number(o, p.seconds); });

  out += ",\"requests\":{";
  for (std::size_t i = 0; i < kOutcomeCount; ++i) {
    if (i) out += ',';
    append_string(out, outcome_name(static_cast<Outcome>(i)));
    out += ':';
    append_column(out, points, [&](std::string& o, const Point& p) { integer(o, p.outcomes[i]); });
  }
  out += '}';
  auto served = [](const Point& p) {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < kOutcomeCount; ++i) n += i == kRejected ? 0 : p.outcomes[i];
    return n;
  };
  column("served", [&](std::string& o, const Point& p) { integer(o, served(p)); });
  column("saved", [&](std::string& o, const Point& p) {
    o += std::to_string(static_cast<std::int64_t>(served(p)) -
                        static_cast<std::int64_t>(p.upstream_calls));
  });
  out += ",\"upstream\":{\"calls\":";
  append_column(out, points, [&](std::string& o, const Point& p) { integer(o, p.upstream_calls); });
  out += ",\"429\":";
  append_column(out, points, [&](std::string& o, const Point& p) { integer(o, p.received_429); });
  out += ",\"retried\":";
  append_column(out, points, [&](std::string& o, const Point& p) { integer(o, p.retried_429); });
  out += '}';

  // A table entry a point predates (its vector is shorter) counts 0.
  auto pair_at = [](const std::vector<std::array<std::uint64_t, 2>>& v, std::size_t i,
                    std::size_t k) { return i < v.size() ? v[i][k] : 0; };
  out += ",\"apis\":{";
  for (std::size_t i = 0; i < apis_.size(); ++i) {
    if (i) out += ',';
    append_string(out, apis_[i]);
    out += ":{\"hits\":";
    append_column(out, points,
                  [&](std::string& o, const Point& p) { integer(o, pair_at(p.apis, i, 0)); });
    out += ",\"reads\":";
    append_column(out, points,
                  [&](std::string& o, const Point& p) { integer(o, pair_at(p.apis, i, 1)); });
    out += '}';
  }
  out += "},\"namespaces\":{";
  for (std::size_t i = 0; i < namespaces_.size(); ++i) {
    const auto& ns = namespaces_[i];
    if (i) out += ',';
    append_string(out, ns.name);
    out += ":{\"max_entries\":" + std::to_string(ns.max_entries) +
           ",\"max_bytes\":" + std::to_string(ns.max_bytes);
    auto field = [&](const char* key, std::uint64_t NamespacePoint::*member) {
      out += ",\"";
      out += key;
      out += "\":";
      append_column(out, points, [&](std::string& o, const Point& p) {
        integer(o, i < p.namespaces.size() ? p.namespaces[i].*member : 0);
      });
    };
    field("hits", &NamespacePoint::hits);
    field("lookups", &NamespacePoint::lookups);
    field("entries", &NamespacePoint::entries);
    field("bytes", &NamespacePoint::bytes);
    out += '}';
  }
  out += "},\"pacing\":{";
  for (std::size_t i = 0; i < pacing_.size(); ++i) {
    if (i) out += ',';
    append_string(out, pacing_[i]);
    out += ":{\"waits\":";
    append_column(out, points,
                  [&](std::string& o, const Point& p) { integer(o, pair_at(p.pacing, i, 0)); });
    out += ",\"refused\":";
    append_column(out, points,
                  [&](std::string& o, const Point& p) { integer(o, pair_at(p.pacing, i, 1)); });
    out += '}';
  }
  out += "},\"latency\":{";
  // Only the methods that went upstream in the selected points.
  std::vector<bool> used(methods_.size(), false);
  for (const Point* p : points) {
    for (const auto& m : p->latency) used[m.method] = true;
  }
  bool first = true;
  for (std::size_t i = 0; i < methods_.size(); ++i) {
    if (!used[i]) continue;
    if (!first) out += ',';
    first = false;
    auto find = [i](const Point& p) -> const MethodPoint* {
      for (const auto& m : p.latency) {
        if (m.method == i) return &m;
      }
      return nullptr;
    };
    append_string(out, methods_[i]);
    out += ":{\"calls\":";
    append_column(out, points, [&](std::string& o, const Point& p) {
      const MethodPoint* m = find(p);
      integer(o, m ? m->calls : 0);
    });
    for (bool p99 : {false, true}) {
      out += p99 ? ",\"p99_ms\":" : ",\"p50_ms\":";
      append_column(out, points, [&](std::string& o, const Point& p) {
        const MethodPoint* m = find(p);
        if (m) {
          append_number(o, p99 ? m->p99_ms : m->p50_ms);
        } else {
          o += "null";
        }
      });
    }
    out += '}';
  }
  out += '}';
  if (l2_backend_.empty()) {
    out += ",\"l2\":null";
  } else {
    out += ",\"l2\":{\"backend\":";
    append_string(out, l2_backend_);
    column("down", [&](std::string& o, const Point& p) { o += p.l2_down ? '1' : '0'; });
    column("gets", [&](std::string& o, const Point& p) { integer(o, p.l2_gets); });
    column("hits", [&](std::string& o, const Point& p) { integer(o, p.l2_hits); });
    column("errors", [&](std::string& o, const Point& p) { integer(o, p.l2_errors); });
    column("pending_writes", [&](std::string& o, const Point& p) { integer(o, p.l2_pending); });
    out += '}';
  }
  out += '}';
  return out;
}

}  // namespace callcache::gateway
