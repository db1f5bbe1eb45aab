#include "replay_main.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "report.h"
#include "runner.h"
#include "scenario.h"

namespace callcache {
namespace {

constexpr const char* kUsage =
    "usage: callcache replay [options]\n"
    "  --scenario FILE   a YAML scenario (default: the built-in 'likebot')\n"
    "  --builtin NAME    a built-in scenario: likebot\n"
    "  --log FILE        replay a recorded JSON-lines call log (methods, limits and\n"
    "                    TTLs come from --scenario, or from likebot)\n"
    "  --seed N          override the scenario's seed\n"
    "  --workers N       override the scenario's worker count\n"
    "  --json            print JSON instead of tables\n"
    "  --tier-dir DIR    keep the SQLite tier file in DIR (default: a temp dir, removed)\n"
    "  --help            this text\n";

bool parse_u64(const char* s, std::uint64_t& out) {
  if (!s || !*s) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno || *end || s[0] == '-') return false;
  out = v;
  return true;
}

}  // namespace

int replay_main(int argc, char** argv) {
  std::string scenario_path, log_path, builtin, tier_dir;
  std::uint64_t seed = 0, workers = 0;
  bool has_seed = false, json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "callcache replay: %s needs a value\n%s", name, kUsage);
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--scenario" || a == "--log" || a == "--builtin" || a == "--tier-dir") {
      const char* v = value(a.c_str());
      if (!v) return 2;
      (a == "--scenario"  ? scenario_path
       : a == "--log"     ? log_path
       : a == "--builtin" ? builtin
                          : tier_dir) = v;
    } else if (a == "--seed" || a == "--workers") {
      const char* v = value(a.c_str());
      if (!v) return 2;
      std::uint64_t n = 0;
      if (!parse_u64(v, n) || (a == "--workers" && n == 0)) {
        std::fprintf(stderr, "callcache replay: %s: expected a %s number, got '%s'\n", a.c_str(),
                     a == "--workers" ? "positive" : "non-negative", v);
        return 2;
      }
      if (a == "--seed") {
        seed = n;
        has_seed = true;
      } else {
        workers = n;
      }
    } else {
      std::fprintf(stderr, "callcache replay: unknown option '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (!scenario_path.empty() && !builtin.empty()) {
    std::fprintf(stderr, "callcache replay: give --scenario or --builtin, not both\n");
    return 2;
  }
  if (!builtin.empty() && builtin != "likebot") {
    std::fprintf(stderr, "callcache replay: unknown built-in scenario '%s' (known: likebot)\n",
                 builtin.c_str());
    return 2;
  }

  replay::Scenario s;
  if (!scenario_path.empty()) {
    auto loaded = replay::load_scenario_file(scenario_path);
    if (!loaded.ok()) {
      std::fprintf(stderr, "callcache replay: %s\n", loaded.status().message().c_str());
      return 2;
    }
    s = std::move(*loaded);
  } else {
    s = replay::builtin_likebot();
  }
  if (!log_path.empty()) {
    Status st = replay::load_call_log(log_path, s);
    if (!st.ok()) {
      std::fprintf(stderr, "callcache replay: %s\n", st.message().c_str());
      return 2;
    }
    s.name += "+log:" + log_path.substr(log_path.find_last_of('/') + 1);
  }
  if (has_seed) s.seed = seed;
  if (workers) s.workload.workers = workers;

  replay::RunOptions options;
  options.tier_dir = tier_dir;
  auto report = replay::run_replay(s, options);
  if (!report.ok()) {
    std::fprintf(stderr, "callcache replay: %s\n", report.status().to_string().c_str());
    return 1;
  }
  std::string out = json ? replay::render_json(*report) : replay::render_text(*report);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace callcache
