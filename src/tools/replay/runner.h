// Internal (replay): runs a scenario under every design, each in its own
// virtual time line, and collects what each did.
//
//   mode 1  no cache (the seeds' limiter)
//   mode 2  the seeds' design: task-scoped cache, single global limiter
//   mode 3  callcache, first run: process scope, single flight, per-account
//           and per-chat pacing, SQLite tier written through
//   mode 4  callcache, re-run right after a restart: a fresh engine over the
//           SQLite file mode 3 wrote (the restart happens when run 3 ends;
//           entries keep the TTL they had left)
//
// Deterministic: the same scenario and seed give the same ReplayReport.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "designs.h"
#include "scenario.h"
#include "upstream.h"

namespace callcache::replay {

struct ModeResult {
  int mode = 0;
  std::string title;
  std::map<std::string, MethodCounters> methods;  // upstream calls by method
  std::uint64_t calls = 0;                        // all upstream calls
  std::uint64_t floods = 0;                       // FLOOD_WAIT / 429 received
  std::map<std::string, NamespaceCounters> namespaces;
  std::uint64_t coalesced = 0;
  Duration virtual_time{};  // first task start to last task end
  std::uint64_t steps = 0;  // steps completed
};

// The least number of upstream calls any design could make.
struct Floor {
  struct Ns {
    bool shared = false;
    std::uint64_t objects = 0;  // distinct (object, scope) pairs the workload reads
    Duration ttl{};             // the floor holds for runs shorter than this
  };
  std::map<std::string, Ns> namespaces;
  std::map<std::string, std::uint64_t> actions;  // non-cacheable calls by method
  std::uint64_t action_total = 0;
  std::uint64_t first_run = 0;  // sum of namespaces' objects + action_total
  std::uint64_t rerun = 0;      // action_total (a re-run within every TTL)
};

struct ReplayReport {
  std::string scenario;
  std::uint64_t seed = 0;
  std::uint64_t accounts = 0, groups = 0, items = 0, tasks = 0, steps_per_task = 0, workers = 0;
  bool from_log = false;
  Floor floor;
  std::vector<ModeResult> modes;
};

struct RunOptions {
  // Directory for the SQLite tier's file; empty = a fresh temporary
  // directory, removed when the run ends.
  std::string tier_dir;
};

// Runs all four modes. Errors: a design that cannot be built (bad pacing
// rules), a tier that cannot be opened, or a run that stalls.
Result<ReplayReport> run_replay(const Scenario& scenario, const RunOptions& options = {});

}  // namespace callcache::replay
