// Fuzz target: the YAML configuration readers — `callcache serve`'s whole
// file (gateway/app/config.h: server, admin, gateway, storage, telegram,
// namespaces, apis with their rules), the engine sections
// (callcache/config.h), scope settings, rate limits and account locks,
// storage, the Telegram preset overrides — and the scalar parsers under them
// (durations, sizes, listen addresses, Redis URLs). The input is a config
// file.
//
// Properties: no exception escapes; every error has a message naming where
// ("<key path>: why", or the line of a YAML syntax error); reading the same
// document twice gives the same outcome; parsed durations are not negative.
#include "callcache/config.h"

#include <cstdint>
#include <string>
#include <string_view>

#include "callcache/redis_backend.h"
#include "config/scope_config.h"
#include "config/yaml_reader.h"
#include "fuzz_check.h"
#include "gateway/app/config.h"
#include "gateway/logic/preset.h"
#include "limits/limits_config.h"
#include "tiers/storage_config.h"

namespace callcache {
namespace {

void check_error(const Status& s) {
  if (s.ok()) return;
  FUZZ_CHECK(s.message().find(": ") != std::string::npos);
}

template <class T>
void check(const Result<T>& r) {
  if (!r.ok()) check_error(r.status());
}

// The section `key` of the root, or a null node (a missing key gives an
// invalid node, which throws when asked anything but whether it is valid).
YAML::Node section(const YAML::Node& root, const char* key) {
  if (!root.IsMap()) return YAML::Node();
  YAML::Node n = root[key];
  return n ? n : YAML::Node();
}

void check_scalars(std::string_view text) {
  const std::string line(text.substr(0, text.find('\n')));
  auto d = config::parse_duration(line);
  if (d.ok()) FUZZ_CHECK(d->count() >= 0);
  (void)config::parse_bytes(line);
  check(gateway::parse_listen(line, "server.listen"));
  RedisOptions redis;
  if (parse_redis_url(line, redis).ok()) {
    FUZZ_CHECK(!redis.host.empty() && redis.port > 0 && redis.port <= 65535 && redis.db >= 0);
  }
}

}  // namespace
}  // namespace callcache

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callcache;
  const std::string text(reinterpret_cast<const char*>(data), size);
  check_scalars(text);
  check(parse_engine_config(text));
  auto doc = config::load_string(text);
  if (!doc.ok()) {
    FUZZ_CHECK(!doc.status().message().empty());
    return 0;
  }
  const YAML::Node& root = *doc;
  auto gateway = gateway::parse_config(root);
  check(gateway);
  auto again = gateway::parse_config(root);
  FUZZ_CHECK(again.ok() == gateway.ok());
  if (!gateway.ok()) FUZZ_CHECK(again.status().message() == gateway.status().message());
  // The preset overrides as the gateway applies them (but never a preset
  // file named by the input: the fuzzer would read arbitrary files).
  const YAML::Node telegram = section(root, "telegram");
  if (gateway.ok() && !(telegram.IsMap() && section(telegram, "preset"))) {
    check(gateway::logic::load_telegram_preset(telegram));
  }
  check(config::parse_scope_settings(root));
  check(config::parse_rate_limits(section(root, "rate_limits")));
  check(config::parse_account_locks(section(root, "account_locks")));
  check(tiers::parse_storage_config(section(root, "storage")));
  return 0;
}
