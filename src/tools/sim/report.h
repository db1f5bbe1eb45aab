// tools/sim/report.h — renders simulation results: a text table, JSON, and a
// gnuplot chart of miss ratio vs cache size (one line per policy).
//
// Thread-safety: pure functions, except write_chart (writes files, runs
// gnuplot as a child process).
#pragma once

#include <string>
#include <vector>

#include "callcache/status.h"
#include "tools/sim/simulate.h"

namespace callcache::sim {

// The table: one row per size, one column per policy (engine policies first,
// then the reference points, labelled as such), the best engine policy per
// size marked '*', and the default policy's relative gap to the best engine
// policy and to LRU, with a verdict against the 1% target.
std::string format_table(const SimResults& r);

// The same table in Markdown (best engine policy in bold; no CPU times, so
// the output is deterministic), for docs.
std::string format_markdown(const SimResults& r);

// The same as JSON (see docs/sim.md for the schema).
std::string format_json(const SimResults& r);

// Relative difference (a - b) / b, 0 when b == 0.
double relative_gap(std::uint64_t a, std::uint64_t b);

struct ChartFiles {
  std::string dat, gp;   // always written
  std::string svg, png;  // empty when not produced
  std::string note;      // why something was not produced (gnuplot absent, no pngcairo)
};

// Writes `<prefix>.dat` and `<prefix>.gp`, then runs gnuplot (if on PATH) to
// render `<prefix>.svg` and, if gnuplot has the pngcairo terminal,
// `<prefix>.png`. The .gp file refers to the .dat by base name and gnuplot
// runs in their directory, so both may be committed and re-run anywhere.
// Errors: kIoError (cannot write), kInternal (gnuplot failed).
Result<ChartFiles> write_chart(const SimResults& r, const std::string& prefix);

// Path of an executable on $PATH, or "" if absent.
std::string find_on_path(const std::string& program);

}  // namespace callcache::sim
