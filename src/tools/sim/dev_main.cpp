// callcache_sim_dev: `callcache sim` as a stand-alone program, for
// developing the simulator without the full `callcache` executable.
#include "tools/sim/sim_main.h"

int main(int argc, char** argv) { return callcache::sim_main(argc, argv); }
