// Fuzz target: `callcache replay`'s inputs (tools/replay/scenario.h) — a
// scenario file (YAML) and a recorded call log (JSON lines). The input is a
// scenario, a line "===", then a call log; without "===" it is a scenario
// alone, or, when it starts with '{', a call log for the built-in likebot
// scenario.
//
// Properties: errors name their origin (the file, and the line of a log); a
// scenario that parses validates; a log that parses is in time order, names
// declared methods only, and lists its accounts once each, in order of
// first appearance.
#include <cstdint>
#include <set>
#include <string>

#include "fuzz_check.h"
#include "tools/replay/scenario.h"

namespace callcache::replay {
namespace {

void check_log(std::string_view text, Scenario s) {
  Status st = parse_call_log(std::string(text), "calls.jsonl", s);
  if (!st.ok()) {
    FUZZ_CHECK(st.message().starts_with("calls.jsonl"));
    return;
  }
  FUZZ_CHECK(!s.log.empty());
  std::set<std::string> accounts;
  std::vector<std::string> order;
  Duration last{};
  for (const LogCall& c : s.log) {
    FUZZ_CHECK(c.t >= last);
    last = c.t;
    FUZZ_CHECK(s.methods.count(c.method) == 1);
    if (accounts.insert(c.account).second) order.push_back(c.account);
  }
  FUZZ_CHECK(order == s.accounts);
  FUZZ_CHECK(validate_scenario(s).ok());
}

}  // namespace
}  // namespace callcache::replay

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callcache::replay;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t sep = input.find("\n===\n");
  if (sep == std::string_view::npos && input.starts_with('{')) {
    check_log(input, builtin_likebot());
    return 0;
  }
  auto scenario = parse_scenario(std::string(input.substr(0, sep)), "scenario.yaml");
  if (!scenario.ok()) {
    FUZZ_CHECK(scenario.status().message().starts_with("scenario.yaml: "));
    return 0;
  }
  FUZZ_CHECK(validate_scenario(*scenario).ok());
  if (sep != std::string_view::npos) check_log(input.substr(sep + 5), std::move(*scenario));
  return 0;
}
