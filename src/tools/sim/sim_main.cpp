#include "tools/sim/sim_main.h"

#include <unistd.h>

#include <iostream>

#include "tools/sim/cli.h"
#include "tools/sim/engine_policies.h"

namespace callcache {

int sim_main(int argc, char** argv) {
  return sim::run_sim_cli(argc, argv, std::cout, std::cerr, sim::engine_policy_runs(),
                          isatty(STDERR_FILENO) == 1);
}

}  // namespace callcache
