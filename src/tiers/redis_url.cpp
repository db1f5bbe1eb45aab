// parse_redis_url (callcache/redis_backend.h): configuration text, apart from
// the backend so that configuration readers need no Redis client.
#include <algorithm>
#include <charconv>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "callcache/redis_backend.h"

namespace callcache {

namespace {

// "host[:port]" with `default_port`; false if malformed.
bool parse_host_port(std::string_view hostport, int default_port, std::string& host, int& port) {
  host = std::string(hostport);
  port = default_port;
  if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = std::string(hostport.substr(0, colon));
    std::string_view p = hostport.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || ptr != p.data() + p.size() || port <= 0 || port > 65535) return false;
  }
  return !host.empty();
}

}  // namespace

Status parse_redis_url(std::string_view url, RedisOptions& out) {
  auto bad = [&](std::string why) {
    return Status::invalid_argument("redis url '" + std::string(url) + "': " + why);
  };
  constexpr std::string_view kScheme = "redis://";
  constexpr std::string_view kSentinel = "redis-sentinel://";
  const bool sentinel = url.starts_with(kSentinel);
  if (!sentinel && !url.starts_with(kScheme)) {
    return bad("expected redis://host:port/db or redis-sentinel://host:port,.../master/db");
  }
  std::string_view rest = url.substr(sentinel ? kSentinel.size() : kScheme.size());
  if (rest.find('@') != std::string_view::npos) {
    return bad(
        "credentials in the URL are not allowed; name an environment variable in "
        "redis_password_env");
  }
  std::string_view hostport = rest.substr(0, rest.find('/'));
  std::string_view path = rest.size() > hostport.size() ? rest.substr(hostport.size() + 1) : "";
  std::vector<std::pair<std::string, int>> sentinels;
  std::string master;
  std::string host;
  int port = 6379;
  if (sentinel) {
    while (!hostport.empty()) {
      std::string_view one = hostport.substr(0, hostport.find(','));
      std::string h;
      int p = 0;
      if (!parse_host_port(one, 26379, h, p)) {
        return bad("sentinel '" + std::string(one) + "' must be host[:port] with port 1..65535");
      }
      sentinels.emplace_back(std::move(h), p);
      hostport.remove_prefix(std::min(hostport.size(), one.size() + 1));
    }
    if (sentinels.empty()) return bad("missing sentinel host");
    master = std::string(path.substr(0, path.find('/')));
    if (master.empty()) return bad("missing the master's name (redis-sentinel://hosts/master/db)");
    path.remove_prefix(std::min(path.size(), master.size() + 1));
  } else {
    if (hostport.empty() || hostport.front() == ':') return bad("missing host");
    if (!parse_host_port(hostport, 6379, host, port)) return bad("port must be 1..65535");
  }
  int dbn = 0;
  if (!path.empty()) {
    auto [ptr, ec] = std::from_chars(path.data(), path.data() + path.size(), dbn);
    if (ec != std::errc() || ptr != path.data() + path.size() || dbn < 0) {
      return bad("database must be a non-negative integer");
    }
  }
  if (sentinel) {
    out.sentinels = std::move(sentinels);
    out.sentinel_master = std::move(master);
  } else {
    out.host = std::move(host);
    out.port = port;
    out.sentinels.clear();
    out.sentinel_master.clear();
  }
  out.db = dbn;
  return Status();
}

}  // namespace callcache
