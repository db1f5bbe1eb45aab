// tools/sim/simulate.h — runs every policy at every cache size on one trace.
//
// A policy is anything that counts the misses of a trace at a size: the
// engine's policies (engine_policies.h drives the real engine) and the
// simulator's own reference points (reference.h). Each (policy, size) run is
// independent and single-threaded, so results are deterministic whatever
// the number of worker threads.
//
// Thread-safety: run_matrix() may use worker threads internally; PolicyRun
// functions must be safe to call concurrently on the same (const) trace.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "callcache/status.h"
#include "tools/sim/trace.h"

namespace callcache::sim {

struct PolicyRun {
  std::string name;   // short id used in flags and JSON ("lru", "s3fifo", "opt")
  std::string label;  // for tables and charts ("S3-FIFO", "OPT (reference)")
  // An engine policy (a candidate for "best") or a reference point.
  bool engine = true;
  // The engine's default policy (NamespacePolicy{}.eviction).
  bool is_default = false;
  // Misses on the trace at a size in entries.
  std::function<Result<std::uint64_t>(const Trace&, std::uint64_t size)> misses;
};

// The simulator's reference points as PolicyRuns (engine = false).
// REQUIRES: parse_reference(name).ok().
PolicyRun reference_run(std::string_view name);

struct SimResults {
  std::string trace_name;
  std::uint64_t requests = 0;
  std::uint32_t distinct = 0;
  std::uint64_t one_hit_keys = 0;
  std::vector<std::uint64_t> sizes;  // ascending
  struct Column {
    std::string name, label;
    bool engine = true;
    bool is_default = false;
    std::vector<std::uint64_t> misses;  // per size
    double cpu_seconds = 0;             // summed over sizes
  };
  std::vector<Column> policies;

  double miss_ratio(std::size_t policy, std::size_t size) const {
    return static_cast<double>(policies[policy].misses[size]) / static_cast<double>(requests);
  }
  // The engine policy with the fewest misses at size index `s` (first in
  // list order on ties), or -1 if there is no engine policy.
  int best_engine(std::size_t s) const;
  // Index of the default engine policy, or -1.
  int default_policy() const;
  // Index of the policy named `name`, or -1.
  int find(std::string_view name) const;
};

// Cache sizes (entries) as fractions of the distinct-key count, rounded,
// at least 1, de-duplicated and sorted.
std::vector<std::uint64_t> sizes_from_fractions(std::uint32_t distinct,
                                                const std::vector<double>& fractions);

// The default fractions: 0.1%, 0.5%, 1%, 2%, 5%, 10%, 20% of distinct keys.
std::vector<double> default_fractions();

// Runs every policy at every size. `threads` >= 1 worker threads share the
// (policy, size) runs; `on_done(n)`, if given, is called (from any worker
// thread) each time a run completes, with the number completed so far.
// Fails with the first policy error (naming the policy and size).
// REQUIRES: sizes non-empty, each > 0.
Result<SimResults> run_matrix(const Trace& trace, std::vector<std::uint64_t> sizes,
                              const std::vector<PolicyRun>& policies, unsigned threads = 1,
                              const std::function<void(std::size_t)>& on_done = {});

}  // namespace callcache::sim
