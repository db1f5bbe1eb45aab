#include "gateway/admin/admin_handler.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>

#include "gateway/admin/dashboard_assets.h"
#include "gateway/logic/plan.h"
#include "gateway/logic/request.h"

namespace callcache::gateway {
namespace {

// The dashboard's files load nothing from elsewhere; data comes from this
// listener only.
constexpr std::string_view kDashboardPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

HttpResponse json_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

bool is_hex16(std::string_view s) {
  return s.size() == 16 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

using Digest = std::array<unsigned char, 32>;

Digest sha256(std::string_view a, std::string_view b) {
  Digest out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int n = 0;
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx, a.data(), a.size()) == 1 &&
            EVP_DigestUpdate(ctx, b.data(), b.size()) == 1 &&
            EVP_DigestFinal_ex(ctx, out.data(), &n) == 1 && n == out.size();
  EVP_MD_CTX_free(ctx);
  if (!ok) out.fill(0xff);  // never equal to a real digest of the other side
  return out;
}

}  // namespace

bool admin_token_matches(std::string_view authorization, std::string_view token) {
  const Digest got = sha256(authorization, {});
  const Digest want = sha256("Bearer ", token);
  // A failed digest on both sides must not compare equal.
  Digest failed;
  failed.fill(0xff);
  return CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0 &&
         CRYPTO_memcmp(want.data(), failed.data(), want.size()) != 0;
}

boost::asio::awaitable<HttpResponse> AdminHandler::handle(HttpRequest request) {
  co_return respond(request);
}

std::string AdminHandler::metrics_text() {
  std::string out = deps_.metrics->to_prometheus();
  out += deps_.engine->stats().to_prometheus();
  if (deps_.limiter) out += deps_.limiter->stats().to_prometheus();
  if (deps_.connections) {
    out +=
        "# HELP callcache_gateway_connections Open client connections.\n"
        "# TYPE callcache_gateway_connections gauge\n"
        "callcache_gateway_connections " +
        std::to_string(deps_.connections()) + "\n";
  }
  if (Backend* l2 = deps_.tiers ? deps_.tiers->l2() : nullptr) {
    BackendStats b = l2->stats();
    out +=
        "# HELP callcache_gateway_l2_operations_total L2 tier operations.\n"
        "# TYPE callcache_gateway_l2_operations_total counter\n";
    auto line = [&](const char* op, std::uint64_t v) {
      out += std::string("callcache_gateway_l2_operations_total{op=\"") + op + "\"} " +
             std::to_string(v) + "\n";
    };
    line("get", b.gets);
    line("hit", b.hits);
    line("put", b.puts);
    line("delete", b.deletes);
    line("error", b.errors);
  }
  if (deps_.tiers && deps_.tiers->coordinator()) {
    // Coordination with the other gateways sharing Redis.
    out += coordination_prometheus(deps_.tiers->stats(), "callcache_gateway_coordination_total");
    out +=
        "# HELP callcache_gateway_subscribed Whether the invalidation subscription is up.\n"
        "# TYPE callcache_gateway_subscribed gauge\n"
        "callcache_gateway_subscribed " +
        std::string(deps_.tiers->coordinator()->subscribed() ? "1" : "0") + "\n";
  }
  return out;
}

std::string AdminHandler::stats_json() {
  std::string out = "{\"gateway\":" + deps_.metrics->to_json();
  out += ",\"engine\":" + deps_.engine->stats().to_json();
  out += ",\"pacing\":" + (deps_.limiter ? deps_.limiter->stats().to_json() : std::string("null"));
  out += ",\"server\":{\"connections\":" +
         std::to_string(deps_.connections ? deps_.connections() : 0) +
         ",\"busy\":" + std::to_string(deps_.busy ? deps_.busy() : 0) + "}";
  if (Backend* l2 = deps_.tiers ? deps_.tiers->l2() : nullptr) {
    BackendStats b = l2->stats();
    out += ",\"l2\":{\"backend\":\"" + std::string(l2->name()) +
           "\",\"gets\":" + std::to_string(b.gets) + ",\"hits\":" + std::to_string(b.hits) +
           ",\"puts\":" + std::to_string(b.puts) + ",\"errors\":" + std::to_string(b.errors) +
           ",\"pending_writes\":" + std::to_string(b.pending_writes) + "}";
  } else {
    out += ",\"l2\":null";
  }
  out += "}";
  return out;
}

HttpResponse AdminHandler::invalidate(std::string_view query) {
  auto params = logic::parse_query(query);
  if (!params.ok()) return json_response(400, logic::error_json(params.status()));
  std::string tenant_text, ns, key, method;
  bool have_tenant = false;
  TenantId tenant;
  for (auto& [name, value] : *params) {
    if (name == "tenant") {
      if (!is_hex16(value)) {
        return json_response(400,
                             logic::error_json(400, "tenant: expected 16 lowercase hex digits"));
      }
      tenant = TenantId{std::stoull(value, nullptr, 16)};
      have_tenant = true;
    } else if (name == "bot_token") {
      tenant = tenant_from_secret(value, deps_.tenant_key);
      have_tenant = true;
    } else if (name == "namespace") {
      ns = value;
    } else if (name == "key") {
      key = value;
    } else if (name == "method") {
      method = value;
    } else {
      return json_response(
          400, logic::error_json(400, "unknown parameter '" + name +
                                          "' (tenant, bot_token, namespace, key, method)"));
    }
  }
  Tiers& tiers = *deps_.tiers;
  std::string done;
  if (have_tenant && !ns.empty() && !key.empty()) {
    Status s = tiers.invalidate(ns, tenant, key);
    if (!s.ok()) return json_response(404, logic::error_json(404, s.message()));
    done = "\"key\"";
  } else if (have_tenant && !method.empty() && ns.empty() && key.empty()) {
    // Method names are case-insensitive: the tag carries the preset's spelling.
    const logic::ReadMethod* read =
        deps_.preset ? deps_.preset->find_read(logic::ascii_lower(method)) : nullptr;
    std::uint64_t n = tiers.invalidate_tag(logic::method_tag(tenant, read ? read->name : method));
    done = "\"method\",\"dropped\":" + std::to_string(n);
  } else if (have_tenant && ns.empty() && key.empty()) {
    std::uint64_t n = tiers.invalidate_tenant(tenant);
    done = "\"tenant\",\"dropped\":" + std::to_string(n);
  } else if (!have_tenant && !ns.empty() && key.empty() && method.empty()) {
    Status s = tiers.invalidate_namespace(ns);
    if (!s.ok()) return json_response(404, logic::error_json(404, s.message()));
    done = "\"namespace\"";
  } else {
    return json_response(
        400, logic::error_json(400,
                               "expected tenant (or bot_token) [+ namespace + key | + method], "
                               "or namespace alone"));
  }
  return json_response(200, "{\"ok\":true,\"invalidated\":" + done + "}");
}

HttpResponse AdminHandler::respond(const HttpRequest& request) {
  auto [path, query] = logic::split_target(request.target);
  HttpResponse r;
  r.log_target = std::string(path);  // never the query: it may hold a bot token
  r.outcome = "admin";
  const bool get = request.method == "GET" || request.method == "HEAD";
  // The dashboard's files and whether a token is needed: no data, no token.
  if (get) {
    if (const DashboardAsset* asset = find_dashboard_asset(path)) {
      r.content_type = std::string(asset->content_type);
      r.body = std::string(asset->body);
      r.headers.push_back({"Content-Security-Policy", std::string(kDashboardPolicy)});
      r.headers.push_back({"X-Content-Type-Options", "nosniff"});
      r.headers.push_back({"Referrer-Policy", "no-referrer"});
      r.headers.push_back({"Cache-Control", "no-cache"});
      return r;
    }
    if (path == "/auth") {
      r.body = std::string("{\"token_required\":") +
               (deps_.admin_token.empty() ? "false" : "true") + "}";
      return r;
    }
  }
  if (!deps_.admin_token.empty()) {
    if (!admin_token_matches(request.header("authorization"), deps_.admin_token)) {
      r.status = 401;
      r.body = logic::error_json(401, "Unauthorized: admin token required");
      r.headers.push_back({"WWW-Authenticate", "Bearer"});
      return r;
    }
  }
  if (path == "/metrics" && get) {
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_text();
  } else if (path == "/stats" && get) {
    r.body = stats_json();
  } else if (path == "/stats/history" && get && deps_.history) {
    auto q = StatsHistory::parse_query(query);
    if (!q.ok()) return json_response(400, logic::error_json(400, q.status().message()));
    r.body = deps_.history->to_json(q->window, q->since_ms);
  } else if (path == "/healthz" && get) {
    r.body = "{\"ok\":true}";
  } else if (path == "/readyz" && get) {
    bool stopping = deps_.stopping && deps_.stopping->load();
    std::string l2 = "none";
    if (Backend* b = deps_.tiers ? deps_.tiers->l2() : nullptr) {
      l2 = b->health().ok() ? "ok" : "degraded";
    }
    r.status = stopping ? 503 : 200;
    r.body = std::string("{\"ok\":") + (stopping ? "false" : "true") + ",\"l2\":\"" + l2 + "\"}";
  } else if (path == "/invalidate") {
    if (request.method != "POST") {
      r.status = 405;
      r.body = logic::error_json(405, "Method Not Allowed: use POST");
      r.headers.push_back({"Allow", "POST"});
      return r;
    }
    HttpResponse inv = invalidate(query);
    inv.log_target = r.log_target;
    inv.outcome = r.outcome;
    return inv;
  } else {
    r.status = 404;
    r.body = logic::error_json(404,
                               "Not Found: admin routes are / (the dashboard), /metrics, "
                               "/stats, /stats/history, /healthz, /readyz, /auth, "
                               "POST /invalidate");
  }
  return r;
}

}  // namespace callcache::gateway
