// callcache_demo: a small workload against the engine that prints what the
// cache did — many accounts reading the same skewed set of objects, the
// pattern callcache is built for.
//   build/release/examples/callcache_demo [--prometheus]
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "callcache/cache.h"

int main(int argc, char** argv) {
  bool prometheus = argc > 1 && std::strcmp(argv[1], "--prometheus") == 0;
  auto engine = callcache::Engine::create();  // the seeds' namespaces and TTLs
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().to_string().c_str());
    return 1;
  }
  auto entities = callcache::Cache<std::string>::open(**engine, "entity").value();
  auto messages = callcache::Cache<std::string>::open(**engine, "message").value();

  std::vector<callcache::TenantId> accounts;
  for (int i = 0; i < 10; ++i) accounts.push_back(callcache::tenant_from_secret("+1555000" + std::to_string(i)));

  std::mt19937 rng(1);
  std::uniform_int_distribution<int> channel(0, 19), post(0, 999);
  int upstream_calls = 0, requests = 0;
  for (int round = 0; round < 20000; ++round) {
    auto account = accounts[static_cast<std::size_t>(round % 10)];
    std::string ch = "@channel" + std::to_string(channel(rng) * channel(rng) / 20);
    ++requests;
    if (!entities.get(account, ch)) {
      ++upstream_calls;
      (void)entities.put(account, ch, "{\"id\":1,\"title\":\"" + ch + "\"}");
    }
    std::string msg = ch + "/" + std::to_string(post(rng) % 50);
    ++requests;
    if (!messages.get(account, msg)) {
      ++upstream_calls;
      (void)messages.put(account, msg, std::string(200, 'm'));
    }
  }
  if (prometheus) {
    std::printf("%s", (**engine).stats().to_prometheus().c_str());
  } else {
    std::printf("requests: %d, upstream calls: %d (%.1f%% saved)\n", requests, upstream_calls,
                100.0 * (requests - upstream_calls) / requests);
    std::printf("%s\n", (**engine).stats().to_json().c_str());
  }
  return 0;
}
