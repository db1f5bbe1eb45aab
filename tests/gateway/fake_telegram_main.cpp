// callcache_fake_telegram_server: runs FakeTelegram as a process (benchmarks).
//   callcache_fake_telegram_server [--port N] [--threads N] [--latency-ms N]
//                                  [--chunk-delay-ms N]  (large downloads, per 64 KiB)
//                                  [--chat-interval-ms N] (429 to sends closer than N ms
//                                                          to one chat)
// Prints "listening <port>" once ready; stops on SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fake_telegram.h"

int main(int argc, char** argv) {
  callcache::gateway::FakeTelegramOptions options;
  long chunk_delay_ms = 0;
  long chat_interval_ms = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    long value = std::strtol(argv[i + 1], nullptr, 10);
    if (flag == "--port") {
      options.port = static_cast<std::uint16_t>(value);
    } else if (flag == "--threads") {
      options.threads = static_cast<unsigned>(value);
    } else if (flag == "--latency-ms") {
      options.latency = std::chrono::milliseconds(value);
    } else if (flag == "--chunk-delay-ms") {
      chunk_delay_ms = value;
    } else if (flag == "--chat-interval-ms") {
      chat_interval_ms = value;
    } else {
      std::fprintf(stderr,
                   "unknown flag %s (flags: --port --threads --latency-ms --chunk-delay-ms "
                   "--chat-interval-ms)\n",
                   argv[i]);
      return 2;
    }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // server threads inherit the mask
  auto server = callcache::gateway::FakeTelegram::start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().to_string().c_str());
    return 1;
  }
  (*server)->set_download_chunk_delay(std::chrono::milliseconds(chunk_delay_ms));
  (*server)->enforce_chat_interval(std::chrono::milliseconds(chat_interval_ms));
  std::printf("listening %u\n", static_cast<unsigned>((*server)->port()));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  (*server)->stop();
  return 0;
}
