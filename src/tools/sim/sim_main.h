// tools/sim/sim_main.h — entry point of `callcache sim` (hit-ratio
// simulation of the engine's eviction policies on a trace).
//
// The `callcache` executable dispatches `callcache sim ARGS...` here with
// argv[0] = the subcommand name (ignored) and argv[1..] = ARGS. Prints to
// stdout (table or JSON) and stderr (notes, errors). Run `callcache sim
// --help` for the options; docs/sim.md has examples and results.
#pragma once

namespace callcache {

// Returns the process exit code: 0 success, 1 runtime error (e.g. a bad
// trace file, named with the line or byte offset), 2 usage error.
int sim_main(int argc, char** argv);

}  // namespace callcache
