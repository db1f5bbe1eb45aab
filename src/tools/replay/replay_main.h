// `callcache replay` — deterministic, virtual-time replay of a workload
// against a simulated upstream; prints how many upstream calls each client
// design makes (docs/replay.md).
#pragma once

namespace callcache {

// Entry point of the subcommand. argv[0] is the subcommand's name ("replay");
// the options follow. Returns the process exit code: 0 on success, 1 when
// the replay fails, 2 on a usage error or a bad scenario/log file.
int replay_main(int argc, char** argv);

}  // namespace callcache
