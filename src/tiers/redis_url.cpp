// parse_redis_url (callcache/redis_backend.h): configuration text, apart from
// the backend so that configuration readers need no Redis client.
#include <charconv>
#include <string>
#include <string_view>

#include "callcache/redis_backend.h"

namespace callcache {

Status parse_redis_url(std::string_view url, RedisOptions& out) {
  auto bad = [&](std::string why) {
    return Status::invalid_argument("redis url '" + std::string(url) + "': " + why);
  };
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) return bad("expected redis://host:port/db");
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find('@') != std::string_view::npos) {
    return bad(
        "credentials in the URL are not allowed; name an environment variable in "
        "redis_password_env");
  }
  std::string_view hostport = rest.substr(0, rest.find('/'));
  std::string_view db = rest.size() > hostport.size() ? rest.substr(hostport.size() + 1) : "";
  std::string_view host = hostport;
  int port = 6379;
  if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    std::string_view p = hostport.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || ptr != p.data() + p.size() || port <= 0 || port > 65535) {
      return bad("port must be 1..65535");
    }
  }
  if (host.empty()) return bad("missing host");
  int dbn = 0;
  if (!db.empty()) {
    auto [ptr, ec] = std::from_chars(db.data(), db.data() + db.size(), dbn);
    if (ec != std::errc() || ptr != db.data() + db.size() || dbn < 0) {
      return bad("database must be a non-negative integer");
    }
  }
  out.host = std::string(host);
  out.port = port;
  out.db = dbn;
  return Status();
}

}  // namespace callcache
