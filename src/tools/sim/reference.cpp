#include "tools/sim/reference.h"

#include <algorithm>
#include <limits>
#include <queue>
#include <string>

namespace callcache::sim {
namespace {

constexpr std::uint32_t kNil = std::numeric_limits<std::uint32_t>::max();

std::uint64_t lru(const Trace& t, std::uint64_t cap) {
  // Intrusive doubly linked list over key ids; head = most recent.
  std::vector<std::uint32_t> prev(t.distinct, kNil), next(t.distinct, kNil);
  std::vector<bool> in(t.distinct, false);
  std::uint32_t head = kNil, tail = kNil;
  std::uint64_t size = 0, misses = 0;
  auto unlink = [&](std::uint32_t k) {
    (prev[k] == kNil ? head : next[prev[k]]) = next[k];
    (next[k] == kNil ? tail : prev[next[k]]) = prev[k];
  };
  auto push_front = [&](std::uint32_t k) {
    prev[k] = kNil;
    next[k] = head;
    (head == kNil ? tail : prev[head]) = k;
    head = k;
  };
  for (std::uint32_t k : t.requests) {
    if (in[k]) {
      if (head != k) {
        unlink(k);
        push_front(k);
      }
      continue;
    }
    ++misses;
    if (size == cap) {
      std::uint32_t victim = tail;
      unlink(victim);
      in[victim] = false;
      --size;
    }
    push_front(k);
    in[k] = true;
    ++size;
  }
  return misses;
}

std::uint64_t fifo(const Trace& t, std::uint64_t cap) {
  std::vector<bool> in(t.distinct, false);
  std::queue<std::uint32_t> q;
  std::uint64_t misses = 0;
  for (std::uint32_t k : t.requests) {
    if (in[k]) continue;
    ++misses;
    if (q.size() == cap) {
      in[q.front()] = false;
      q.pop();
    }
    q.push(k);
    in[k] = true;
  }
  return misses;
}

std::uint64_t opt(const Trace& t, std::uint64_t cap) {
  const std::vector<std::uint64_t> nu = next_use(t);
  // Max-heap of (next use, key) with lazy deletion: an entry is current iff
  // the key is cached and its recorded next use matches. Next uses are all
  // distinct, so the top current entry is the unique farthest key.
  std::vector<std::uint64_t> cur(t.distinct, 0);
  std::vector<bool> in(t.distinct, false);
  std::priority_queue<std::pair<std::uint64_t, std::uint32_t>> heap;
  std::uint64_t size = 0, misses = 0;
  for (std::size_t i = 0; i < t.requests.size(); ++i) {
    std::uint32_t k = t.requests[i];
    if (!in[k]) {
      ++misses;
      if (size == cap) {
        while (true) {
          auto [when, victim] = heap.top();
          heap.pop();
          if (in[victim] && cur[victim] == when) {
            in[victim] = false;
            --size;
            break;
          }
        }
      }
      in[k] = true;
      ++size;
    }
    cur[k] = nu[i];
    heap.emplace(nu[i], k);
    // Stale entries accumulate one per hit; rebuild when they dominate.
    if (heap.size() > 4 * cap + 1024) {
      std::vector<std::pair<std::uint64_t, std::uint32_t>> live;
      live.reserve(size);
      while (!heap.empty()) {
        auto e = heap.top();
        heap.pop();
        if (in[e.second] && cur[e.second] == e.first) live.push_back(e);
      }
      heap = std::priority_queue<std::pair<std::uint64_t, std::uint32_t>>(live.begin(), live.end());
    }
  }
  return misses;
}

}  // namespace

std::string_view reference_policy_name(ReferencePolicy p) noexcept {
  switch (p) {
    case ReferencePolicy::kOpt: return "opt";
    case ReferencePolicy::kFifo: return "fifo";
    case ReferencePolicy::kLru: return "lru-exact";
  }
  return "?";
}

Result<ReferencePolicy> parse_reference_policy(std::string_view name) {
  for (auto p : {ReferencePolicy::kOpt, ReferencePolicy::kFifo, ReferencePolicy::kLru}) {
    if (name == reference_policy_name(p)) return p;
  }
  return Status::invalid_argument("unknown reference policy '" + std::string(name) +
                                  "' (expected opt, fifo or lru-exact)");
}

std::vector<std::uint64_t> next_use(const Trace& trace) {
  const std::uint64_t n = trace.requests.size();
  std::vector<std::uint64_t> nu(n);
  std::vector<std::uint64_t> later(trace.distinct);
  for (std::uint32_t k = 0; k < trace.distinct; ++k) later[k] = n + k;
  for (std::uint64_t i = n; i-- > 0;) {
    std::uint32_t k = trace.requests[i];
    nu[i] = later[k];
    later[k] = i;
  }
  return nu;
}

std::uint64_t simulate_reference(ReferencePolicy policy, const Trace& trace,
                                 std::uint64_t capacity) {
  switch (policy) {
    case ReferencePolicy::kOpt: return opt(trace, capacity);
    case ReferencePolicy::kFifo: return fifo(trace, capacity);
    case ReferencePolicy::kLru: return lru(trace, capacity);
  }
  return 0;
}

}  // namespace callcache::sim
