// callcache_replay_dev: `callcache replay` as a stand-alone executable, for
// development (the `callcache` executable dispatches to the same replay_main).
#include "replay_main.h"

int main(int argc, char** argv) { return callcache::replay_main(argc, argv); }
