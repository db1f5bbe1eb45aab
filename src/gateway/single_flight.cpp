#include "gateway/single_flight.h"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>

namespace callcache::gateway {

HttpResponse shared_answer(const SharedResponse& shared, const char* outcome) {
  HttpResponse r;
  r.status = shared->status;
  r.headers = shared->headers;
  r.content_type = shared->content_type;
  r.shared_body = shared->shared_body
                      ? shared->shared_body
                      : std::shared_ptr<const std::string>(shared, &shared->body);
  r.outcome = outcome;
  return r;
}
namespace {
// Resumes a waiter on its own executor, never inline.
void resume(SingleFlight::Waiter waiter, SharedResponse answer) {
  boost::asio::post(waiter.executor, [h = std::move(waiter.handler), a = std::move(answer)]() mutable {
    std::move(h)(std::move(a));
  });
}
}  // namespace

bool SingleFlight::try_lead(const std::string& key) {
  std::lock_guard lock(mu_);
  return flights_.try_emplace(key).second;
}

void SingleFlight::join(const std::string& key, Waiter waiter) {
  {
    std::lock_guard lock(mu_);
    auto it = flights_.find(key);
    if (it != flights_.end()) {
      it->second.push_back(std::move(waiter));
      ++coalesced_;
      return;
    }
  }
  // The flight is over: resume the caller (not inline: on its executor).
  resume(std::move(waiter), SharedResponse());
}

void SingleFlight::complete(const std::string& key, SharedResponse answer) {
  std::vector<Waiter> waiters;
  {
    std::lock_guard lock(mu_);
    auto it = flights_.find(key);
    if (it == flights_.end()) return;
    waiters = std::move(it->second);
    flights_.erase(it);
  }
  for (auto& w : waiters) resume(std::move(w), answer);
}

std::size_t SingleFlight::running() const {
  std::lock_guard lock(mu_);
  return flights_.size();
}

std::uint64_t SingleFlight::coalesced() const {
  std::lock_guard lock(mu_);
  return coalesced_;
}

FlightGuard::~FlightGuard() {
  if (!done_) {
    flights_.complete(key_, std::make_shared<const HttpResponse>(
                                bot_api_error(502, "Bad Gateway: the upstream call was abandoned")));
  }
}

void FlightGuard::complete(SharedResponse answer) {
  done_ = true;
  flights_.complete(key_, std::move(answer));
}

}  // namespace callcache::gateway
