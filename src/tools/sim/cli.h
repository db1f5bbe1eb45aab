// tools/sim/cli.h — the `callcache sim` command line, apart from the engine
// so it can be tested with any set of policies.
//
// Thread-safety: run_sim_cli() is not reentrant with respect to the output
// streams it is given; otherwise self-contained.
#pragma once

#include <ostream>
#include <vector>

#include "tools/sim/simulate.h"

namespace callcache::sim {

// Parses `args` (args[0] is the command name and is ignored), reads or
// generates the trace, runs `engine_policies` plus the requested reference
// points at every size, and prints the table (or JSON) to `out`; notes and
// errors go to `err`, and with --progress auto (the default) a progress bar
// when `err_is_terminal` and the run takes over a second. Returns 0 on
// success, 1 on a runtime error (bad trace file, failed policy, chart not
// written), 2 on a usage error.
int run_sim_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                std::vector<PolicyRun> engine_policies, bool err_is_terminal = false);

}  // namespace callcache::sim
