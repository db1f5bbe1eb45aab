// eventually(): waits, in real time and bounded, until a condition holds.
// For tests that wait on another thread, process or server (a subscription,
// a failover, a coalesced caller arriving), never to let time pass: tests in
// virtual time move a ManualClock instead.
//
// Header-only; every test target has tests/ on its include path (cc_test).
#pragma once

#include <chrono>
#include <thread>

namespace callcache::testing {

// Polls `done` every `poll` until it returns true (true) or `limit` has
// passed (then one last look decides).
template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds limit = std::chrono::seconds(5),
                std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(poll);
  }
  return done();
}

}  // namespace callcache::testing
