#include "runner.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <tuple>

#include "callcache/sqlite_backend.h"
#include "rng.h"

namespace callcache::replay {
namespace {

struct Job {
  Duration at{};  // open loop only: when the job starts
  std::vector<std::shared_ptr<const StepCall>> steps;
};

struct Plan {
  std::vector<Job> jobs;
  bool open_loop = false;  // a recorded log: jobs start at `at`, no worker bound
};

std::int64_t chat_id_of(std::uint64_t group_index) {
  return -(1'000'000'000'000LL + static_cast<std::int64_t>(group_index) + 1);
}

std::shared_ptr<const StepCall> make_step(const Scenario& s, const std::string& account,
                                          const MethodDef& m, const std::string& group,
                                          const std::string& item, std::int64_t chat) {
  auto c = std::make_shared<StepCall>();
  c->account = account;
  c->method = &m;
  c->group = group;
  c->object = m.target == Target::kGroup ? group : item;
  c->chat_id = chat;
  (void)s;
  return c;
}

Plan build_plan(const Scenario& s) {
  Plan p;
  if (!s.log.empty()) {
    p.open_loop = true;
    std::map<std::string, std::uint64_t> groups;
    for (const LogCall& lc : s.log) {
      std::string group = lc.object.substr(0, lc.object.find('/'));
      auto [it, fresh] = groups.try_emplace(group, groups.size());
      Job j;
      j.at = lc.t;
      j.steps.push_back(make_step(s, lc.account, s.methods.at(lc.method), group, lc.object,
                                  chat_id_of(it->second)));
      p.jobs.push_back(std::move(j));
    }
    return p;
  }
  const std::uint64_t items = s.groups * s.items_per_group;
  auto add = [&](const std::string& account, std::uint64_t item) {
    std::uint64_t g = item / s.items_per_group;
    std::string group = s.group_name(g);
    std::string name = s.item_name(g, item % s.items_per_group);
    Job j;
    for (const std::string& step : s.workload.steps)
      j.steps.push_back(make_step(s, account, s.methods.at(step), group, name, chat_id_of(g)));
    p.jobs.push_back(std::move(j));
  };
  if (s.workload.all_pairs) {
    // Round-major: round r gives every account its r-th item, so the first
    // `workers` jobs belong to different accounts.
    for (std::uint64_t r = 0; r < items; ++r) {
      for (std::size_t a = 0; a < s.accounts.size(); ++a) {
        std::uint64_t offset =
            s.workload.order == "rotated" ? (a % s.groups) * s.items_per_group : 0;
        add(s.accounts[a], (r + offset) % items);
      }
    }
  } else {
    Rng rng(s.seed ^ 0x9e3779b97f4a7c15ULL);
    ZipfSampler zipf(items, s.workload.zipf);
    for (std::uint64_t t = 0; t < s.workload.tasks; ++t) {
      const std::string& account = s.accounts[rng.below(s.accounts.size())];
      add(account, zipf.draw(rng));
    }
  }
  return p;
}

Floor compute_floor(const Scenario& s, const Plan& p) {
  Floor f;
  std::set<std::tuple<std::string, std::string, std::string>> seen;
  for (const auto& [name, d] : s.namespaces) {
    f.namespaces[name].shared = d.shared;
    f.namespaces[name].ttl = d.ttl;
  }
  for (const Job& j : p.jobs) {
    for (const auto& c : j.steps) {
      const std::string& ns = c->method->ns;
      if (ns.empty()) {
        ++f.actions[c->method->name];
        ++f.action_total;
        continue;
      }
      bool shared = s.namespaces.at(ns).shared;
      if (seen.emplace(ns, shared ? std::string() : c->account, c->object).second)
        ++f.namespaces[ns].objects;
    }
  }
  for (const auto& [_, n] : f.namespaces) f.first_run += n.objects;
  f.first_run += f.action_total;
  f.rerun = f.action_total;
  return f;
}

using DesignFactory = std::function<Result<std::unique_ptr<Design>>(const DesignEnv&, Backend*)>;
using TierFactory = std::function<Result<std::unique_ptr<Backend>>(const Clock&, Scheduler&)>;

// Drives one design through the plan in its own virtual time line.
class Driver {
 public:
  Driver(const Plan& plan, Design& design, ManualScheduler& sched)
      : plan_(plan), design_(design), sched_(sched) {}

  Status run(TimePoint start, std::uint64_t workers) {
    remaining_ = plan_.jobs.size();
    last_done_ = start;
    if (plan_.open_loop) {
      for (std::size_t j = 0; j < plan_.jobs.size(); ++j)
        sched_.schedule_at(start + plan_.jobs[j].at, [this, j] { run_step(j, 0, [] {}); });
    } else {
      for (std::uint64_t w = 0; w < workers; ++w) sched_.schedule_at(start, [this] { next_job(); });
    }
    const TimePoint limit = start + std::chrono::hours(24 * 30);
    while (remaining_ > 0) {
      TimePoint next = sched_.next_deadline();
      if (next == TimePoint::max())
        return Status::internal("the replay stalled with " + std::to_string(remaining_) +
                                " tasks unfinished");
      if (next > limit) return Status::deadline_exceeded("the replay ran past 30 virtual days");
      sched_.advance(next > sched_.clock().now() ? next - sched_.clock().now() : Duration::zero());
    }
    return Status();
  }

  TimePoint last_done() const { return last_done_; }
  std::uint64_t steps() const { return steps_; }

 private:
  void next_job() {
    if (next_ >= plan_.jobs.size()) return;
    std::size_t j = next_++;
    run_step(j, 0, [this] { next_job(); });
  }
  void run_step(std::size_t j, std::size_t k, std::function<void()> after) {
    const Job& job = plan_.jobs[j];
    if (k == job.steps.size()) {
      --remaining_;
      last_done_ = std::max(last_done_, sched_.clock().now());
      after();
      return;
    }
    design_.step(job.steps[k], [this, j, k, after = std::move(after)]() mutable {
      ++steps_;
      run_step(j, k + 1, std::move(after));
    });
  }

  const Plan& plan_;
  Design& design_;
  ManualScheduler& sched_;
  std::size_t next_ = 0;
  std::uint64_t remaining_ = 0;
  std::uint64_t steps_ = 0;
  TimePoint last_done_{};
};

Result<ModeResult> run_mode(const Scenario& s, const Plan& plan, int mode, std::string title,
                            TimePoint start, const DesignFactory& make_design,
                            const TierFactory& make_tier) {
  ManualClock clock(start);
  ManualScheduler sched(clock);
  SimUpstream upstream(s, sched, s.seed);
  std::unique_ptr<Backend> tier;
  if (make_tier) {
    auto t = make_tier(clock, sched);
    if (!t.ok()) return t.status();
    tier = std::move(*t);
  }
  DesignEnv env{&s, &clock, &sched, &upstream};
  auto design = make_design(env, tier.get());
  if (!design.ok()) return design.status();
  Driver driver(plan, **design, sched);
  Status st = driver.run(start, s.workload.workers);
  if (!st.ok()) return Status(st.code(), "mode " + std::to_string(mode) + ": " + st.message());
  st = (*design)->finish();
  if (!st.ok()) return Status(st.code(), "mode " + std::to_string(mode) + ": " + st.message());

  ModeResult r;
  r.mode = mode;
  r.title = std::move(title);
  r.methods = upstream.counters();
  for (const auto& [name, m] : s.methods) r.methods.try_emplace(name);
  r.calls = upstream.total_calls();
  r.floods = upstream.total_floods();
  r.namespaces = (*design)->namespace_counters();
  for (const auto& [name, _] : s.namespaces) r.namespaces.try_emplace(name);
  for (const auto& [_, n] : r.namespaces) r.coalesced += n.coalesced;
  r.virtual_time = driver.last_done() - start;
  r.steps = driver.steps();
  return r;
}

// A temporary directory removed on scope exit (also on error paths).
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "callcache-replay-XXXXXX").string();
    if (char* p = ::mkdtemp(tmpl.data())) path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

Result<ReplayReport> run_replay(const Scenario& s, const RunOptions& options) {
  Status st = validate_scenario(s);
  if (!st.ok()) return st;
  Plan plan = build_plan(s);
  ReplayReport rep;
  rep.scenario = s.name;
  rep.seed = s.seed;
  rep.accounts = s.accounts.size();
  rep.from_log = !s.log.empty();
  rep.groups = s.groups;
  rep.items = s.groups * s.items_per_group;
  rep.tasks = plan.jobs.size();
  rep.steps_per_task = rep.from_log ? 1 : s.workload.steps.size();
  rep.workers = rep.from_log ? 0 : s.workload.workers;
  rep.floor = compute_floor(s, plan);

  TempDir temp;
  std::string dir = options.tier_dir.empty() ? temp.path() : options.tier_dir;
  if (dir.empty()) return Status::io_error("cannot create a temporary directory for the tier");
  const std::string db = (std::filesystem::path(dir) / "replay-tier.sqlite3").string();
  if (!options.tier_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove(db, ec);  // mode 3 is a first run: start from an empty tier
    std::filesystem::remove(db + "-wal", ec);
    std::filesystem::remove(db + "-shm", ec);
  }
  TierFactory sqlite = [db](const Clock& clock, Scheduler& sched) {
    SqliteOptions o;
    o.path = db;
    o.clock = &clock;
    o.scheduler = &sched;
    o.purge_interval = Duration::zero();
    return open_sqlite_backend(std::move(o));
  };

  const TimePoint t0(std::chrono::seconds(1));
  struct Spec {
    int mode;
    const char* title;
    DesignFactory design;
    bool tier;
  };
  const Spec specs[] = {
      {1, "no cache", [](const DesignEnv& e, Backend*) { return make_no_cache_design(e); }, false},
      {2, "seeds: task cache + global limiter",
       [](const DesignEnv& e, Backend*) { return make_seeds_design(e); }, false},
      {3, "callcache first run",
       [](const DesignEnv& e, Backend* t) { return make_callcache_design(e, t); }, true},
      {4, "callcache re-run (SQLite tier)",
       [](const DesignEnv& e, Backend* t) { return make_callcache_design(e, t); }, true},
  };
  TimePoint restart = t0;
  for (const Spec& spec : specs) {
    TimePoint start = spec.mode == 4 ? restart : t0;
    auto r = run_mode(s, plan, spec.mode, spec.title, start, spec.design,
                      spec.tier ? sqlite : TierFactory());
    if (!r.ok()) return r.status();
    if (spec.mode == 3) restart = t0 + r->virtual_time;
    rep.modes.push_back(std::move(*r));
  }
  return rep;
}

}  // namespace callcache::replay
