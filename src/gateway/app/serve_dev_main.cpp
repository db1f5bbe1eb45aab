// callcache_serve_dev: `callcache serve` as its own executable, for manual
// runs, the Python client test and the benchmarks.
#include "gateway/app/gateway.h"

int main(int argc, char** argv) { return callcache::gateway::serve_main(argc, argv); }
