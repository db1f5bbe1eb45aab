// `callcache`: one executable, one subcommand per tool.
//   callcache serve   [options]   the gateway (Telegram Bot API / HTTP rules)
//   callcache replay  [options]   upstream calls saved on a workload, per design
//   callcache sim     [options]   hit ratio of each eviction policy on a trace
//   callcache version
#include <cstdio>
#include <cstring>
#include <string_view>

#include "gateway/app/gateway.h"
#include "replay/replay_main.h"
#include "sim/sim_main.h"

namespace {

int usage(std::FILE* out) {
  std::fprintf(out,
               "usage: callcache <command> [options]\n\n"
               "commands:\n"
               "  serve    run the caching gateway in front of the Telegram Bot API or any HTTP API\n"
               "  replay   replay a workload against a simulated upstream; print calls saved per design\n"
               "  sim      simulate eviction policies on a cache trace; print miss ratios\n"
               "  version  print the version\n\n"
               "'callcache <command> --help' describes a command's options.\n");
  return out == stderr ? 2 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(stderr);
  std::string_view cmd = argv[1];
  // Each command sees itself as argv[0].
  int sub_argc = argc - 1;
  char** sub_argv = argv + 1;
  if (cmd == "serve") return callcache::gateway::serve_main(sub_argc, sub_argv);
  if (cmd == "replay") return callcache::replay_main(sub_argc, sub_argv);
  if (cmd == "sim") return callcache::sim_main(sub_argc, sub_argv);
  if (cmd == "version" || cmd == "--version") {
    std::printf("callcache %s\n", CALLCACHE_VERSION);
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") return usage(stdout);
  std::fprintf(stderr, "callcache: unknown command '%s'\n\n", argv[1]);
  return usage(stderr);
}
