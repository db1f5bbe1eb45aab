// The recorded-log format: JSON lines, one call each, in time order:
//   {"t": 12.5, "account": "alice", "method": "get_messages", "object": "durov/1234"}
// `t` is seconds since the log's start; blank lines and lines starting with
// '#' are skipped.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "scenario.h"

namespace callcache::replay {

Status parse_call_log(const std::string& text, const std::string& origin, Scenario& s) {
  std::istringstream in(text);
  std::string line;
  std::size_t n = 0;
  Duration last{};
  std::vector<LogCall> calls;
  std::set<std::string> accounts;
  std::vector<std::string> account_order;
  while (std::getline(in, line)) {
    ++n;
    std::size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const std::string where = origin + ":" + std::to_string(n) + ": ";
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::invalid_argument(where + "not a JSON object: " + line);
    if (!j.is_object()) return Status::invalid_argument(where + "expected a JSON object");
    for (const auto& [k, v] : j.items()) {
      if (k != "t" && k != "account" && k != "method" && k != "object")
        return Status::invalid_argument(where + "unknown field '" + k +
                                        "' (expected t, account, method, object)");
    }
    LogCall c;
    c.line = n;
    if (!j.contains("t") || !j["t"].is_number())
      return Status::invalid_argument(where + "'t': expected a number of seconds");
    double t = j["t"].get<double>();
    if (!std::isfinite(t) || t < 0 || t > 1e7)
      return Status::invalid_argument(where + "'t': expected seconds in [0, 1e7]");
    c.t = Duration(static_cast<std::int64_t>(std::llround(t * 1e9)));
    if (c.t < last)
      return Status::invalid_argument(where + "'t': lines must be in time order (" +
                                      std::to_string(t) + " comes after a later call)");
    last = c.t;
    for (const char* field : {"account", "method", "object"}) {
      if (!j.contains(field) || !j[field].is_string() || j[field].get<std::string>().empty())
        return Status::invalid_argument(where + "'" + field + "': expected a non-empty string");
    }
    c.account = j["account"].get<std::string>();
    c.method = j["method"].get<std::string>();
    c.object = j["object"].get<std::string>();
    if (!s.methods.count(c.method))
      return Status::invalid_argument(where + "'method': unknown method '" + c.method +
                                      "' (declare it in the scenario's methods)");
    if (accounts.insert(c.account).second) account_order.push_back(c.account);
    calls.push_back(std::move(c));
  }
  if (calls.empty()) return Status::invalid_argument(origin + ": the log has no calls");
  s.log = std::move(calls);
  s.accounts = std::move(account_order);
  return Status();
}

Status load_call_log(const std::string& path, Scenario& s) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot open call log '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_call_log(ss.str(), path, s);
}

}  // namespace callcache::replay
