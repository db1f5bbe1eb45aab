#include "gateway/single_flight.h"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>

namespace callcache::gateway {
namespace {
// Resumes a waiter on its own executor, never inline.
void resume(SingleFlight::Handler handler, SharedResponse answer) {
  auto ex = boost::asio::get_associated_executor(handler);
  boost::asio::post(ex, [h = std::move(handler), a = std::move(answer)]() mutable {
    std::move(h)(std::move(a));
  });
}
}  // namespace

bool SingleFlight::try_lead(const std::string& key) {
  std::lock_guard lock(mu_);
  return flights_.try_emplace(key).second;
}

void SingleFlight::join(const std::string& key, Handler handler) {
  {
    std::lock_guard lock(mu_);
    auto it = flights_.find(key);
    if (it != flights_.end()) {
      it->second.push_back(std::move(handler));
      ++coalesced_;
      return;
    }
  }
  // The flight is over: resume the caller (not inline: on its executor).
  resume(std::move(handler), SharedResponse());
}

void SingleFlight::complete(const std::string& key, SharedResponse answer) {
  std::vector<Handler> waiters;
  {
    std::lock_guard lock(mu_);
    auto it = flights_.find(key);
    if (it == flights_.end()) return;
    waiters = std::move(it->second);
    flights_.erase(it);
  }
  for (auto& h : waiters) resume(std::move(h), answer);
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
