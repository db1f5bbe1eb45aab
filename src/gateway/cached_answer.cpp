// The gateway's cached reads on the library's read path (TieredCache).
#include "gateway/cached_answer.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <memory>

#include "callcache/asio_cache.h"

namespace callcache::gateway {
namespace {

namespace net = boost::asio;

// A load's upstream call, on its own coroutine: the flight does not depend
// on the connection of the caller that started it.
net::awaitable<void> fetch_and_complete(FetchAnswer fetch, KeepAnswer keep,
                                        LoadCompletion<CachedAnswer> done) {
  UpstreamResult u = co_await fetch();
  done(Result<Loaded<CachedAnswer>>(keep(u)));
}

}  // namespace

HttpResponse respond(Ref<CachedAnswer> answer, Outcome outcome) {
  HttpResponse r;
  r.status = answer->status;
  r.content_type = answer->content_type;
  r.headers = answer->headers;
  auto holder = std::make_shared<Ref<CachedAnswer>>(std::move(answer));
  r.shared_body = std::shared_ptr<const std::string>(holder, &(*holder)->body);
  r.outcome = outcome_name(outcome);
  return r;
}

Outcome outcome_of(Served served, const CachedAnswer& answer) noexcept {
  switch (served) {
    case Served::kHit:
      return Outcome::kHit;
    case Served::kStale:
      return Outcome::kStale;
    case Served::kNegative:
      return Outcome::kNegative;
    case Served::kSecondTier:
      return Outcome::kL2Hit;
    case Served::kCoalesced:
      return Outcome::kCoalesced;
    case Served::kLoaded:
      break;
  }
  return answer.upstream_failed ? Outcome::kError : Outcome::kMiss;
}

CachedAnswer answer_of(HttpResponse response) {
  CachedAnswer a;
  a.status = response.status;
  a.content_type = std::move(response.content_type);
  a.headers = std::move(response.headers);
  a.body = response.shared_body ? *response.shared_body : std::move(response.body);
  return a;
}

net::awaitable<ReadAnswer> read_through(AnswerCache& cache, TenantId tenant, std::string key,
                                        const MakeFetch& make_fetch, ErrorAnswer error) {
  ReadAnswer out;
  if (auto hit = cache.hit(tenant, key)) {  // the common case: nothing else to build
    out.outcome = Outcome::kHit;
    out.response = respond(std::move(*hit), out.outcome);
    co_return out;
  }
  auto ex = co_await net::this_coro::executor;
  auto loader = [ex, f = make_fetch()](LoadCompletion<CachedAnswer> done) {
    net::co_spawn(ex, fetch_and_complete(f.fetch, f.keep, std::move(done)), net::detached);
  };
  ServedResult<CachedAnswer> got =
      co_await co_get_or_load_served(cache, tenant, std::move(key), std::move(loader));
  if (!got.first.ok()) {
    out.outcome = Outcome::kError;
    out.response = error(502, "Bad Gateway: " + got.first.status().message());
    out.response.outcome = outcome_name(Outcome::kError);
    co_return out;
  }
  out.outcome = outcome_of(got.second, **got.first);
  out.response = respond(std::move(*got.first), out.outcome);
  co_return out;
}

}  // namespace callcache::gateway
