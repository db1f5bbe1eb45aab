#include "tools/sim/simulate.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

#include "tools/sim/reference.h"

namespace callcache::sim {
namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

PolicyRun reference_run(std::string_view name) {
  ReferenceSpec spec = parse_reference(name).value();
  PolicyRun r;
  r.name = std::string(name);
  switch (spec.policy) {
    case ReferencePolicy::kOpt:
      r.label = "OPT (ref, offline)";
      break;
    case ReferencePolicy::kFifo:
      r.label = "FIFO (ref)";
      break;
    case ReferencePolicy::kLru:
      r.label = "exact LRU (ref)";
      break;
    case ReferencePolicy::kS3Fifo: {
      char buf[160];
      std::snprintf(buf, sizeof buf, "S3-FIFO (ref, small=%g ghost=%g promote=%d maxfreq=%d",
                    spec.s3fifo.small, spec.s3fifo.ghost, spec.s3fifo.promote,
                    spec.s3fifo.max_freq);
      r.label = buf;
      if (spec.s3fifo.min_small) {
        std::snprintf(buf, sizeof buf, " minsmall=%llu smallcap=%g",
                      static_cast<unsigned long long>(spec.s3fifo.min_small),
                      spec.s3fifo.small_cap);
        r.label += buf;
      }
      r.label += ")";
      break;
    }
    case ReferencePolicy::kWTinyLfu: {
      char buf[96];
      std::snprintf(buf, sizeof buf, "W-TinyLFU (ref, window=%g protected=%g)",
                    spec.wtinylfu.window, spec.wtinylfu.protected_share);
      r.label = buf;
      break;
    }
  }
  r.engine = false;
  r.misses = [spec](const Trace& t, std::uint64_t size) -> Result<std::uint64_t> {
    return simulate_reference(spec, t, size);
  };
  return r;
}

int SimResults::best_engine(std::size_t s) const {
  int best = -1;
  for (std::size_t p = 0; p < policies.size(); ++p) {
    if (!policies[p].engine) continue;
    if (best < 0 || policies[p].misses[s] < policies[static_cast<std::size_t>(best)].misses[s]) {
      best = static_cast<int>(p);
    }
  }
  return best;
}

int SimResults::default_policy() const {
  for (std::size_t p = 0; p < policies.size(); ++p) {
    if (policies[p].is_default) return static_cast<int>(p);
  }
  return -1;
}

int SimResults::find(std::string_view name) const {
  for (std::size_t p = 0; p < policies.size(); ++p) {
    if (policies[p].name == name) return static_cast<int>(p);
  }
  return -1;
}

std::vector<double> default_fractions() { return {0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2}; }

std::vector<std::uint64_t> sizes_from_fractions(std::uint32_t distinct,
                                                const std::vector<double>& fractions) {
  std::vector<std::uint64_t> sizes;
  for (double f : fractions) {
    double v = std::round(f * static_cast<double>(distinct));
    sizes.push_back(v < 1 ? 1 : static_cast<std::uint64_t>(v));
  }
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  return sizes;
}

Result<SimResults> run_matrix(const Trace& trace, std::vector<std::uint64_t> sizes,
                              const std::vector<PolicyRun>& policies, unsigned threads,
                              const std::function<void(std::size_t)>& on_done) {
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  SimResults r;
  r.trace_name = trace.name;
  r.requests = trace.requests.size();
  r.distinct = trace.distinct;
  r.one_hit_keys = count_one_hit_keys(trace);
  r.sizes = sizes;
  for (const PolicyRun& p : policies) {
    SimResults::Column c;
    c.name = p.name;
    c.label = p.label;
    c.engine = p.engine;
    c.is_default = p.is_default;
    c.misses.assign(sizes.size(), 0);
    r.policies.push_back(std::move(c));
  }
  const std::size_t jobs = policies.size() * sizes.size();
  std::vector<double> cpu(jobs, 0);
  std::vector<Status> errors(jobs);
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> completed{0};
  auto worker = [&] {
    for (std::size_t j; (j = next.fetch_add(1)) < jobs;) {
      std::size_t p = j / sizes.size(), s = j % sizes.size();
      double t0 = thread_cpu_seconds();
      auto m = policies[p].misses(trace, sizes[s]);
      cpu[j] = thread_cpu_seconds() - t0;
      if (!m.ok()) {
        errors[j] =
            Status(m.status().code(), "policy " + policies[p].name + " at size " +
                                          std::to_string(sizes[s]) + ": " + m.status().message());
        continue;
      }
      r.policies[p].misses[s] = *m;
      const std::size_t done = completed.fetch_add(1) + 1;
      if (on_done) on_done(done);
    }
  };
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(jobs)));
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (std::size_t j = 0; j < jobs; ++j) {
    if (!errors[j].ok()) return errors[j];
    r.policies[j / sizes.size()].cpu_seconds += cpu[j];
  }
  return r;
}

}  // namespace callcache::sim
