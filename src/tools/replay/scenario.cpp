#include "scenario.h"

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "yaml_reader.h"

namespace callcache::replay {

using std::chrono::milliseconds;
using std::chrono::seconds;

const char* per_name(Per p) {
  switch (p) {
    case Per::kAccount:
      return "account";
    case Per::kGroup:
      return "group";
    case Per::kAccountGroup:
      return "account_group";
    case Per::kObject:
      return "object";
    case Per::kGlobal:
      return "global";
  }
  return "?";
}

std::string Scenario::group_name(std::uint64_t g) const {
  return group_prefix + std::to_string(g + 1);
}

std::string Scenario::item_name(std::uint64_t g, std::uint64_t i) const {
  return group_name(g) + "/" + item_prefix + std::to_string(g * items_per_group + i + 1);
}

std::vector<LimitRule> telegram_user_limits() {
  return {
      {Per::kAccount, "get_entity", seconds(3), 1},
      {Per::kAccount, "get_messages", milliseconds(300), 1},
      {Per::kAccount, "send_reaction", milliseconds(500), 1},
      {Per::kAccount, "default", milliseconds(200), 1},
      {Per::kAccount, "any", std::chrono::microseconds(33334), 30},
      {Per::kGroup, "send_reaction", milliseconds(100), 5},
  };
}

std::vector<LimitRule> telegram_bot_limits() {
  return {
      {Per::kAccount, "any", std::chrono::microseconds(33334), 30},
      {Per::kAccountGroup, "sendMessage", seconds(1), 1},
      {Per::kGroup, "sendMessage", seconds(3), 20},
  };
}

std::vector<LimitRule> seeds_global_limits() {
  return {
      {Per::kGlobal, "get_entity", seconds(3), 1},
      {Per::kGlobal, "get_messages", milliseconds(300), 1},
      {Per::kGlobal, "send_reaction", milliseconds(500), 1},
      {Per::kGlobal, "default", milliseconds(200), 1},
  };
}

Scenario builtin_likebot() {
  Scenario s;
  s.name = "likebot";
  s.seed = 42;
  s.account_kind = AccountKind::kUser;
  for (int a = 1; a <= 10; ++a) s.accounts.push_back("account" + std::to_string(a));
  s.groups = 5;
  s.items_per_group = 10;
  s.namespaces["entity"] = {"entity", seconds(300), true};
  s.namespaces["input_peer"] = {"input_peer", seconds(300), false};
  s.namespaces["message"] = {"message", seconds(60), true};
  s.methods["get_entity"] = {"get_entity", "entity", Target::kGroup, milliseconds(180), 0.35};
  s.methods["get_input_entity"] = {"get_input_entity", "input_peer", Target::kGroup,
                                   milliseconds(120), 0.3};
  s.methods["get_messages"] = {"get_messages", "message", Target::kItem, milliseconds(150), 0.3};
  s.methods["view"] = {"view", "", Target::kItem, milliseconds(100), 0.3};
  s.methods["send_reaction"] = {"send_reaction", "", Target::kItem, milliseconds(200), 0.35};
  s.workload.all_pairs = true;
  s.workload.order = "rotated";
  s.workload.steps = {"get_entity", "get_input_entity", "get_messages", "view", "send_reaction"};
  s.workload.workers = 10;
  s.upstream_limits = telegram_user_limits();
  s.pacing = telegram_user_limits();
  s.seeds_limiter = seeds_global_limits();
  return s;
}

namespace {

// Reads a list of rules, or a preset name, at `path`.
void read_rules(config::MapReader& r, std::string_view key, const Scenario& s,
                const std::vector<LimitRule>* same_as, std::vector<LimitRule>& out) {
  YAML::Node n = r.child(key);
  if (!n || n.IsNull()) return;
  if (n.IsScalar()) {
    const std::string& name = n.Scalar();
    if (name == "telegram_user")
      out = telegram_user_limits();
    else if (name == "telegram_bot")
      out = telegram_bot_limits();
    else if (name == "seeds")
      out = seeds_global_limits();
    else if (name == "none")
      out.clear();
    else if (name == "upstream" && same_as)
      out = *same_as;
    else
      r.fail(key, "expected a list of rules or one of telegram_user, telegram_bot, seeds, none" +
                      std::string(same_as ? ", upstream" : "") + ", got '" + name + "'");
    return;
  }
  if (!n.IsSequence()) return r.fail(key, "expected a list of rules or a preset name");
  out.clear();
  for (std::size_t i = 0; i < n.size(); ++i) {
    config::MapReader rr(n[i], r.path_of(key) + "[" + std::to_string(i) + "]");
    LimitRule rule;
    rr.choice("per", rule.per,
              {{"account", Per::kAccount},
               {"group", Per::kGroup},
               {"account_group", Per::kAccountGroup},
               {"object", Per::kObject},
               {"global", Per::kGlobal}});
    rr.string("method", rule.method);
    rr.duration("interval", rule.interval, /*allow_zero=*/false);
    rr.count("burst", rule.burst, /*allow_zero=*/false);
    if (rr.error().ok()) {
      if (!rr.has("method"))
        rr.fail("method", "is required");
      else if (!rr.has("interval"))
        rr.fail("interval", "is required");
      else if (rule.method != "default" && rule.method != "any" && !s.methods.count(rule.method))
        rr.fail("method", "unknown method '" + rule.method +
                              "' (declare it under methods, or use "
                              "'default' or 'any')");
    }
    r.merge(rr.finish());
    out.push_back(rule);
  }
}

}  // namespace

Result<Scenario> parse_scenario(const std::string& yaml_text, const std::string& origin) {
  auto doc = config::load_string(yaml_text);
  if (!doc.ok()) return Status::invalid_argument(origin + ": " + doc.status().message());
  Scenario s;
  config::MapReader root(*doc, "");
  root.string("name", s.name);
  root.count("seed", s.seed);

  config::MapReader acc = root.map("accounts");
  acc.choice("kind", s.account_kind, {{"user", AccountKind::kUser}, {"bot", AccountKind::kBot}});
  std::uint64_t count = 0;
  std::string prefix = s.account_kind == AccountKind::kBot ? "bot" : "account";
  acc.count("count", count);
  if (count > kMaxAccounts) {
    acc.fail("count", "at most " + std::to_string(kMaxAccounts) + " accounts, got '" +
                          std::to_string(count) + "'");
  }
  acc.string("prefix", prefix);
  // (string_list on an absent key reports an error: ask only when present.)
  if (acc.has("names")) acc.string_list("names", s.accounts);
  if (acc.error().ok()) {
    if (!s.accounts.empty() && acc.has("count")) acc.fail("count", "give either count or names");
    for (std::uint64_t a = 1; a <= count; ++a) s.accounts.push_back(prefix + std::to_string(a));
  }
  root.merge(acc.finish());

  config::MapReader obj = root.map("objects");
  obj.count("groups", s.groups);
  obj.count("items_per_group", s.items_per_group);
  obj.string("group_prefix", s.group_prefix);
  obj.string("item_prefix", s.item_prefix);
  root.merge(obj.finish());

  config::MapReader nss = root.map("namespaces");
  for (const std::string& name : nss.keys()) {
    config::MapReader nr = nss.map(name);
    NamespaceDef d{name, std::chrono::seconds(300), false};
    nr.duration("ttl", d.ttl, /*allow_zero=*/false);
    nr.boolean("shared", d.shared);
    root.merge(nr.finish());
    s.namespaces[name] = d;
  }
  root.merge(nss.finish());

  config::MapReader ms = root.map("methods");
  for (const std::string& name : ms.keys()) {
    config::MapReader mr = ms.map(name);
    MethodDef m{name, "", Target::kItem, std::chrono::milliseconds(100), 0.3};
    mr.string("namespace", m.ns);
    mr.choice("target", m.target, {{"group", Target::kGroup}, {"item", Target::kItem}});
    mr.duration("latency", m.latency_median, /*allow_zero=*/false);
    mr.number("sigma", m.latency_sigma, 0.0, 3.0);
    if (mr.error().ok() && !m.ns.empty() && !s.namespaces.count(m.ns))
      mr.fail("namespace", "unknown namespace '" + m.ns + "' (declare it under namespaces)");
    root.merge(mr.finish());
    s.methods[name] = m;
  }
  root.merge(ms.finish());

  config::MapReader wl = root.map("workload");
  if (wl.has("tasks")) {
    YAML::Node t = wl.child("tasks");
    if (t.IsScalar() && t.Scalar() == "all_pairs") {
      s.workload.all_pairs = true;
    } else {
      s.workload.all_pairs = false;
      wl.count("tasks", s.workload.tasks, /*allow_zero=*/false);
    }
  }
  wl.number("zipf", s.workload.zipf, 0.0, 5.0);
  wl.choice("order", s.workload.order,
            {{"rotated", std::string("rotated")}, {"same", std::string("same")}});
  if (wl.has("steps")) wl.string_list("steps", s.workload.steps);
  wl.count("workers", s.workload.workers, /*allow_zero=*/false);
  if (wl.error().ok()) {
    for (const auto& step : s.workload.steps) {
      if (!s.methods.count(step)) {
        wl.fail("steps", "unknown method '" + step + "' (declare it under methods)");
        break;
      }
    }
  }
  root.merge(wl.finish());

  config::MapReader lim = root.map("limits");
  s.upstream_limits =
      s.account_kind == AccountKind::kBot ? telegram_bot_limits() : telegram_user_limits();
  read_rules(lim, "upstream", s, nullptr, s.upstream_limits);
  s.pacing = s.upstream_limits;
  read_rules(lim, "pacing", s, &s.upstream_limits, s.pacing);
  s.seeds_limiter = seeds_global_limits();
  read_rules(lim, "seeds", s, nullptr, s.seeds_limiter);
  for (std::size_t i = 0; i < s.pacing.size(); ++i) {
    if (s.pacing[i].per == Per::kObject) {
      lim.fail("pacing", "rule " + std::to_string(i) +
                             " is per: object, which client pacing cannot key by (give pacing "
                             "rules per account, group, account_group or global)");
      break;
    }
  }
  root.merge(lim.finish());

  Status st = root.finish();
  if (!st.ok()) return Status::invalid_argument(origin + ": " + st.message());
  st = validate_scenario(s);
  if (!st.ok()) return Status::invalid_argument(origin + ": " + st.message());
  return s;
}

Result<Scenario> load_scenario_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot open scenario file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_scenario(ss.str(), path);  // malformed YAML is reported with its line
}

Status validate_scenario(const Scenario& s) {
  if (s.name.empty()) return Status::invalid_argument("name: is required");
  if (s.methods.empty()) return Status::invalid_argument("methods: declare at least one method");
  if (s.log.empty()) {
    if (s.accounts.empty()) return Status::invalid_argument("accounts: give count or names");
    if (s.groups == 0) return Status::invalid_argument("objects.groups: must be greater than zero");
    if (s.items_per_group == 0)
      return Status::invalid_argument("objects.items_per_group: must be greater than zero");
    if (s.workload.steps.empty())
      return Status::invalid_argument("workload.steps: list the methods each task calls");
    if (!s.workload.all_pairs && s.workload.tasks == 0)
      return Status::invalid_argument("workload.tasks: 'all_pairs' or a number > 0");
  }
  if (s.accounts.size() > kMaxAccounts) {
    return Status::invalid_argument("accounts: at most " + std::to_string(kMaxAccounts) +
                                    " accounts, got " + std::to_string(s.accounts.size()));
  }
  if (s.items_per_group != 0 && s.groups > kMaxObjects / s.items_per_group) {
    return Status::invalid_argument("objects: at most " + std::to_string(kMaxObjects) +
                                    " objects (groups x items_per_group)");
  }
  const std::uint64_t objects = s.groups * s.items_per_group;
  std::uint64_t tasks = s.workload.tasks;
  if (s.workload.all_pairs) {
    const bool over = objects != 0 && s.accounts.size() > kMaxTasks / objects;
    tasks = over ? kMaxTasks + 1 : s.accounts.size() * objects;
  }
  if (s.log.empty() && tasks > kMaxTasks) {
    return Status::invalid_argument("workload.tasks: at most " + std::to_string(kMaxTasks) +
                                    " tasks (all_pairs: accounts x objects)");
  }
  std::set<std::string> seen;
  for (const auto& a : s.accounts) {
    if (!seen.insert(a).second)
      return Status::invalid_argument("accounts: duplicate name '" + a + "'");
  }
  return Status();
}

}  // namespace callcache::replay
