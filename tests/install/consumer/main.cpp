#include <cstdio>

#include "callcache/cache.h"

int main() {
  auto engine = callcache::Engine::create().value();
  auto cache = callcache::Cache<int>::open(*engine, "entity").value();
  if (!cache.put(callcache::TenantId{1}, "answer", 42).ok()) return 1;
  auto hit = cache.get(callcache::TenantId{1}, "answer");
  std::printf("installed callcache works: %d\n", hit ? **hit : -1);
  return hit && **hit == 42 ? 0 : 1;
}
