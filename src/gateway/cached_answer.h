// Internal: how the gateway's API fronts read through the library's read
// path. A cached read is one TieredCache read-through (L1 → L2 → one
// coalesced upstream call → stored, unless an invalidation overtook it →
// stale-while-revalidate / refresh-ahead), whose value is the upstream's
// answer as the client gets it (CachedAnswer): status, content type,
// headers and body, so coalesced callers get the whole answer.
//
// A front plans the request, then calls read_through() with how to fetch
// the answer upstream and what to keep of it (the front's rules: which
// answers are stored, for how long, with which tags), built only when the
// read misses memory; the answer comes back rendered as an HttpResponse
// with the outcome for metrics and X-Callcache.
//
// Thread-safety: read_through() may run concurrently on any I/O thread.
// REQUIRES: the AnswerCache's Tiers (engine, L2) outlive every read and the
// background refreshes it starts (they run on the reading coroutine's
// executor, so destroying the io_context first is enough).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "callcache/tiered_cache.h"
#include "gateway/metrics.h"
#include "gateway/net/http_message.h"
#include "gateway/net/upstream.h"

namespace callcache::gateway {

// An upstream answer as a cached read keeps it (and hands it to coalesced
// callers).
struct CachedAnswer {
  int status = 200;
  std::string content_type;
  std::vector<Header> headers;
  std::string body;
  // The upstream could not be reached: this is the gateway's own 502 (never
  // kept; its leader's outcome is kError).
  bool upstream_failed = false;
};

// Bytes charged against max_bytes.
struct CachedAnswerSize {
  std::size_t operator()(const CachedAnswer& a) const noexcept;
};

// L2 form: "<status>\n<content type>\n<name>: <value>\n...\n\n<body>".
struct CachedAnswerCodec {
  std::string encode(const CachedAnswer& a) const;
  // kCorruption when `bytes` is not of that form.
  Result<CachedAnswer> decode(std::string_view bytes) const;
};

using AnswerCache = TieredCache<CachedAnswer, CachedAnswerCodec, CachedAnswerSize>;

// The answer as an HttpResponse, its body shared with the cache (no copy).
HttpResponse respond(Ref<CachedAnswer> answer, Outcome outcome);

// The outcome of a read-through served `served` with `answer`.
Outcome outcome_of(Served served, const CachedAnswer& answer) noexcept;

// Sends the read upstream (called again for background refreshes).
using FetchAnswer = std::function<boost::asio::awaitable<UpstreamResult>()>;
// What to keep of the upstream's result: the answer and where it is kept
// (Retain), for how long and with which tags.
using KeepAnswer = std::function<Loaded<CachedAnswer>(UpstreamResult& result)>;
// The front's error answer (a read that failed without an upstream answer:
// shutdown, a load timeout).
using ErrorAnswer = HttpResponse (*)(int status, std::string_view description);

// How a read that may need the upstream fetches and keeps its answer. Both
// are kept for background refreshes: they own what they use.
struct Fetch {
  FetchAnswer fetch;
  KeepAnswer keep;
};
// Builds the Fetch of one read; called at most once, during read_through().
using MakeFetch = std::function<Fetch()>;

struct ReadAnswer {
  HttpResponse response;
  Outcome outcome = Outcome::kMiss;
};

// One cached read of (tenant, key) through `cache`. A fresh L1 hit does not
// call `make_fetch`. REQUIRES: `make_fetch` lives until the read returns.
boost::asio::awaitable<ReadAnswer> read_through(AnswerCache& cache, TenantId tenant,
                                                std::string key, const MakeFetch& make_fetch,
                                                ErrorAnswer error);

// An upstream answer (relayed as the client gets it) as a CachedAnswer.
CachedAnswer answer_of(HttpResponse response);

}  // namespace callcache::gateway
