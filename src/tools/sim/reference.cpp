#include "tools/sim/reference.h"

#include <algorithm>
#include <limits>
#include <queue>
#include <string>

namespace callcache::sim {
namespace {

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
    case ReferencePolicy::kOpt:
      return "opt";
    case ReferencePolicy::kFifo:
      return "fifo";
    case ReferencePolicy::kLru:
      return "lru-exact";
    case ReferencePolicy::kS3Fifo:
      return "s3fifo-ref";
    case ReferencePolicy::kWTinyLfu:
      return "wtinylfu-ref";
  }
  return "?";
}

Result<ReferenceSpec> parse_reference(std::string_view name) {
  std::string_view head = name.substr(0, name.find(':'));
  ReferenceSpec spec;
  bool found = false;
  for (auto p : {ReferencePolicy::kOpt, ReferencePolicy::kFifo, ReferencePolicy::kLru,
                 ReferencePolicy::kS3Fifo, ReferencePolicy::kWTinyLfu}) {
    if (head == reference_policy_name(p)) {
      spec.policy = p;
      found = true;
    }
  }
  if (!found) {
    return Status::invalid_argument(
        "unknown reference policy '" + std::string(name) +
        "' (expected opt, fifo, lru-exact, s3fifo-ref[:small=F]"
        "[:ghost=F][:promote=N][:maxfreq=N][:minsmall=N][:smallcap=F] or "
        "wtinylfu-ref[:window=F][:protected=F])");
  }
  std::string_view rest = name.substr(head.size());
  if (!rest.empty() && spec.policy != ReferencePolicy::kS3Fifo &&
      spec.policy != ReferencePolicy::kWTinyLfu) {
    return Status::invalid_argument("reference policy '" + std::string(head) +
                                    "' takes no parameters: '" + std::string(name) + "'");
  }
  while (!rest.empty()) {
    rest.remove_prefix(1);  // ':'
    std::string_view part = rest.substr(0, rest.find(':'));
    rest.remove_prefix(part.size());
    auto eq = part.find('=');
    std::string key(part.substr(0, eq));
    std::string value(eq == std::string_view::npos ? "" : part.substr(eq + 1));
    double v = 0;
    std::size_t used = 0;
    try {
      v = std::stod(value, &used);
    } catch (...) {
      used = 0;
    }
    auto bad = [&] {
      if (spec.policy == ReferencePolicy::kWTinyLfu) {
        return Status::invalid_argument("wtinylfu-ref: bad parameter '" + std::string(part) +
                                        "' (window=F in (0,1], protected=F in [0,1])");
      }
      return Status::invalid_argument("s3fifo-ref: bad parameter '" + std::string(part) +
                                      "' (small=F in (0,1), ghost=F >= 0, promote=N >= 1, "
                                      "maxfreq=N >= 1, minsmall=N >= 0, smallcap=F in (0,1))");
    };
    if (used == 0 || used != value.size()) return bad();
    if (spec.policy == ReferencePolicy::kWTinyLfu) {
      if (key == "window" && v > 0 && v <= 1) {
        spec.wtinylfu.window = v;
      } else if (key == "protected" && v >= 0 && v <= 1) {
        spec.wtinylfu.protected_share = v;
      } else {
        return bad();
      }
      continue;
    }
    if (key == "small" && v > 0 && v < 1) {
      spec.s3fifo.small = v;
    } else if (key == "ghost" && v >= 0 && v <= 100) {
      spec.s3fifo.ghost = v;
    } else if (key == "promote" && v >= 1 && v <= 100 && v == static_cast<int>(v)) {
      spec.s3fifo.promote = static_cast<int>(v);
    } else if (key == "maxfreq" && v >= 1 && v <= 100 && v == static_cast<int>(v)) {
      spec.s3fifo.max_freq = static_cast<int>(v);
    } else if (key == "minsmall" && v >= 0 && v <= 1e9 &&
               v == static_cast<double>(static_cast<std::uint64_t>(v))) {
      spec.s3fifo.min_small = static_cast<std::uint64_t>(v);
    } else if (key == "smallcap" && v > 0 && v < 1) {
      spec.s3fifo.small_cap = v;
    } else {
      return bad();
    }
  }
  return spec;
}

Result<ReferencePolicy> parse_reference_policy(std::string_view name) {
  auto spec = parse_reference(name);
  if (!spec.ok()) return spec.status();
  return spec->policy;
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

std::uint64_t simulate_reference(const ReferenceSpec& spec, const Trace& trace,
                                 std::uint64_t capacity) {
  switch (spec.policy) {
    case ReferencePolicy::kS3Fifo:
      return simulate_s3fifo(trace, capacity, spec.s3fifo);
    case ReferencePolicy::kWTinyLfu:
      return simulate_wtinylfu(trace, capacity, spec.wtinylfu);
    case ReferencePolicy::kOpt:
      return opt(trace, capacity);
    case ReferencePolicy::kFifo:
      return fifo(trace, capacity);
    case ReferencePolicy::kLru:
      return lru(trace, capacity);
  }
  return 0;
}

}  // namespace callcache::sim
