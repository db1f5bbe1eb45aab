#include "report.h"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace callcache::replay {
namespace {

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

double to_seconds(Duration d) { return static_cast<double>(d.count()) / 1e9; }

double hit_rate(const NamespaceCounters& n) {
  return n.requests
             ? 100.0 * static_cast<double>(n.requests - n.loads) / static_cast<double>(n.requests)
             : 0.0;
}

const ModeResult* find_mode(const ReplayReport& r, int mode) {
  for (const auto& m : r.modes)
    if (m.mode == mode) return &m;
  return nullptr;
}

std::string saved(std::uint64_t base, std::uint64_t ours) {
  if (base == 0) return "n/a";
  double pct =
      100.0 * (static_cast<double>(base) - static_cast<double>(ours)) / static_cast<double>(base);
  return fmt("%" PRId64 " (%.1f%%)",
             static_cast<std::int64_t>(base) - static_cast<std::int64_t>(ours), pct);
}

}  // namespace

std::string verdict(const ReplayReport& r) {
  const ModeResult* m1 = find_mode(r, 1);
  const ModeResult* m2 = find_mode(r, 2);
  const ModeResult* m3 = find_mode(r, 3);
  const ModeResult* m4 = find_mode(r, 4);
  if (!m1 || !m2 || !m3 || !m4) return "verdict: incomplete run";
  double speed =
      to_seconds(m2->virtual_time) > 0 ? to_seconds(m3->virtual_time) / to_seconds(m2->virtual_time) : 0.0;
  return fmt("verdict: callcache first run: %" PRIu64
             " calls, saves %s vs no cache and %s vs the "
             "seeds, in %.2fx the seeds' time; re-run: %" PRIu64
             " calls, saves %s vs no cache and "
             "%s vs the seeds",
             m3->calls, saved(m1->calls, m3->calls).c_str(), saved(m2->calls, m3->calls).c_str(),
             speed, m4->calls, saved(m1->calls, m4->calls).c_str(),
             saved(m2->calls, m4->calls).c_str());
}

std::string render_text(const ReplayReport& r) {
  std::string o;
  o += fmt("callcache replay: scenario '%s', seed %" PRIu64 "\n", r.scenario.c_str(), r.seed);
  if (r.from_log)
    o += fmt("  recorded log: %" PRIu64 " calls by %" PRIu64 " accounts\n", r.tasks, r.accounts);
  else
    o += fmt("  %" PRIu64 " accounts, %" PRIu64 " channels, %" PRIu64 " posts; %" PRIu64
             " tasks x %" PRIu64 " steps; %" PRIu64 " workers\n",
             r.accounts, r.groups, r.items, r.tasks, r.steps_per_task, r.workers);

  o += "\nfloor (fewest upstream calls any design can make):\n";
  for (const auto& [name, n] : r.floor.namespaces)
    o += fmt("  %-14s %-12s %6" PRIu64 "  (one call per distinct object%s)\n", name.c_str(),
             n.shared ? "shared" : "per account", n.objects, n.shared ? "" : " per account");
  std::string acts;
  for (const auto& [m, n] : r.floor.actions)
    acts += (acts.empty() ? "" : " + ") + fmt("%" PRIu64 " %s", n, m.c_str());
  o += fmt("  %-14s %-12s %6" PRIu64 "  (%s: never cacheable)\n", "actions", "",
           r.floor.action_total, acts.c_str());
  o += fmt("  first run: %" PRIu64 "    re-run within every TTL: %" PRIu64 "\n", r.floor.first_run,
           r.floor.rerun);

  for (const ModeResult& m : r.modes) {
    o += fmt("\n== mode %d: %s ==\n", m.mode, m.title.c_str());
    o += fmt("  %-20s %8s %12s\n", "method", "calls", "flood_waits");
    for (const auto& [name, c] : m.methods)
      o += fmt("  %-20s %8" PRIu64 " %12" PRIu64 "\n", name.c_str(), c.calls, c.floods);
    o += fmt("  %-20s %8" PRIu64 " %12" PRIu64 "\n", "total", m.calls, m.floods);
    if (m.mode != 1) {
      o += fmt("  %-14s %9s %7s %8s %10s %6s %9s\n", "namespace", "requests", "hits", "l2_hits",
               "coalesced", "loads", "hit_rate");
      for (const auto& [name, n] : m.namespaces)
        o += fmt("  %-14s %9" PRIu64 " %7" PRIu64 " %8" PRIu64 " %10" PRIu64 " %6" PRIu64
                 " %8.1f%%\n",
                 name.c_str(), n.requests, n.hits, n.l2_hits, n.coalesced, n.loads, hit_rate(n));
    }
    // Explain every namespace that went upstream more often than the floor allows.
    for (const auto& [name, n] : m.namespaces) {
      if (m.mode == 1) break;
      const Floor::Ns& fl = r.floor.namespaces.at(name);
      std::uint64_t allowed = m.mode == 4 ? 0 : fl.objects;
      if (n.loads <= allowed) continue;
      o += fmt("  note: %s went upstream %" PRIu64 " times for %" PRIu64 " objects: %" PRIu64
               " while the same key was already being fetched (no single flight), %" PRIu64
               " after the entry expired (ttl %.0f s)\n",
               name.c_str(), n.loads, fl.objects, n.duplicates, n.reloads, to_seconds(fl.ttl));
    }
    std::uint64_t floor = m.mode == 4 ? r.floor.rerun : r.floor.first_run;
    o += fmt("  coalesced calls: %" PRIu64 "   floods/429s: %" PRIu64
             "   virtual time: %.2f s   vs floor (%" PRIu64 "): %+" PRId64 "\n",
             m.coalesced, m.floods, to_seconds(m.virtual_time), floor,
             static_cast<std::int64_t>(m.calls) - static_cast<std::int64_t>(floor));
  }

  o += "\n== summary ==\n";
  o += fmt("  %-38s %7s %7s %7s %10s %12s\n", "mode", "calls", "floor", "floods", "coalesced",
           "virtual time");
  for (const ModeResult& m : r.modes) {
    std::uint64_t floor = m.mode == 4 ? r.floor.rerun : r.floor.first_run;
    o += fmt("  %d %-36s %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %10" PRIu64 " %10.2f s\n", m.mode,
             m.title.c_str(), m.calls, floor, m.floods, m.coalesced, to_seconds(m.virtual_time));
  }
  o += verdict(r) + "\n";
  return o;
}

std::string render_json(const ReplayReport& r) {
  using nlohmann::json;
  json j;
  j["scenario"] = r.scenario;
  j["seed"] = r.seed;
  j["from_log"] = r.from_log;
  j["accounts"] = r.accounts;
  j["groups"] = r.groups;
  j["items"] = r.items;
  j["tasks"] = r.tasks;
  j["steps_per_task"] = r.steps_per_task;
  j["workers"] = r.workers;
  json f;
  for (const auto& [name, n] : r.floor.namespaces)
    f["namespaces"][name] = {
        {"shared", n.shared}, {"objects", n.objects}, {"ttl_s", to_seconds(n.ttl)}};
  f["actions"] = r.floor.actions;
  f["action_total"] = r.floor.action_total;
  f["first_run"] = r.floor.first_run;
  f["rerun"] = r.floor.rerun;
  j["floor"] = f;
  json modes = json::array();
  for (const ModeResult& m : r.modes) {
    json jm;
    jm["mode"] = m.mode;
    jm["title"] = m.title;
    for (const auto& [name, c] : m.methods)
      jm["methods"][name] = {{"calls", c.calls}, {"floods", c.floods}};
    jm["calls"] = m.calls;
    jm["floods"] = m.floods;
    jm["coalesced"] = m.coalesced;
    for (const auto& [name, n] : m.namespaces)
      jm["namespaces"][name] = {{"requests", n.requests}, {"hits", n.hits},
                                {"l2_hits", n.l2_hits},   {"coalesced", n.coalesced},
                                {"loads", n.loads},       {"duplicates", n.duplicates},
                                {"reloads", n.reloads},   {"hit_rate", hit_rate(n) / 100.0}};
    jm["virtual_time_s"] = to_seconds(m.virtual_time);
    jm["floor"] = m.mode == 4 ? r.floor.rerun : r.floor.first_run;
    modes.push_back(jm);
  }
  j["modes"] = modes;
  j["verdict"] = verdict(r);
  return j.dump(2) + "\n";
}

}  // namespace callcache::replay
