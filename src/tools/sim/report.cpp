#include "tools/sim/report.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace callcache::sim {
namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string percent(double v, int digits) { return fixed(v * 100, digits) + "%"; }

std::string signed_percent(double v) { return (v >= 0 ? "+" : "") + percent(v, 2); }

std::string with_commas(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// Right-aligns every column to its widest cell; "|" cells separate groups.
std::string render(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c) line += "  ";
      line += std::string(width[c] - row[c].size(), ' ') + row[c];
    }
    out += line + "\n";
  }
  return out;
}

std::string dir_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

std::string base_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

std::string gnuplot_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Runs `program arg` with working directory `dir`; returns the exit status.
int run_in(const std::string& dir, const std::string& program, const std::string& arg) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(127);
    ::execlp(program.c_str(), program.c_str(), arg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

double relative_gap(std::uint64_t a, std::uint64_t b) {
  if (b == 0) return 0;
  return (static_cast<double>(a) - static_cast<double>(b)) / static_cast<double>(b);
}

namespace {

std::string render_markdown(const std::vector<std::vector<std::string>>& rows) {
  std::string out;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    out += "|";
    for (const auto& c : rows[i]) out += " " + c + " |";
    out += "\n";
    if (i == 0) {
      out += "|";
      for (std::size_t c = 0; c < rows[0].size(); ++c) out += "---:|";
      out += "\n";
    }
  }
  return out;
}

std::string format_grid(const SimResults& r, bool md) {
  std::ostringstream out;
  out << "trace: " << r.trace_name << " — " << with_commas(r.requests) << " requests, "
      << with_commas(r.distinct) << " distinct keys, " << with_commas(r.one_hit_keys)
      << " requested once ("
      << percent(r.distinct ? static_cast<double>(r.one_hit_keys) / r.distinct : 0, 1) << ")\n";
  out << "miss ratio by cache size (entries); lower is better; " << (md ? "bold" : "*")
      << " = best engine policy at that size\n\n";

  const int def = r.default_policy();
  const int lru = r.find("lru");
  bool any_ref = false;
  for (const auto& p : r.policies) any_ref |= !p.engine;

  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head = {"size", "% keys"};
  for (const auto& p : r.policies) {
    if (p.engine) head.push_back(p.label);
  }
  if (any_ref && !md) head.push_back("|");
  for (const auto& p : r.policies) {
    if (!p.engine) head.push_back(p.label);
  }
  if (def >= 0) {
    if (!md) head.push_back("|");
    head.push_back("default vs best");
    head.push_back("within 1%");
    if (lru >= 0 && lru != def) head.push_back("default vs lru");
  }
  rows.push_back(head);

  std::size_t met = 0;
  double worst = 0;
  std::size_t worst_at = 0;
  for (std::size_t s = 0; s < r.sizes.size(); ++s) {
    const int best = r.best_engine(s);
    std::vector<std::string> row = {with_commas(r.sizes[s]),
                                    percent(static_cast<double>(r.sizes[s]) / r.distinct, 2)};
    for (std::size_t p = 0; p < r.policies.size(); ++p) {
      if (!r.policies[p].engine) continue;
      bool is_best = best >= 0 && r.policies[p].misses[s] ==
                                      r.policies[static_cast<std::size_t>(best)].misses[s];
      std::string cell = fixed(r.miss_ratio(p, s), 4);
      if (is_best) cell = md ? "**" + cell + "**" : "*" + cell;
      row.push_back(std::move(cell));
    }
    if (any_ref && !md) row.push_back("|");
    for (std::size_t p = 0; p < r.policies.size(); ++p) {
      if (!r.policies[p].engine) row.push_back(fixed(r.miss_ratio(p, s), 4));
    }
    if (def >= 0) {
      const auto& d = r.policies[static_cast<std::size_t>(def)].misses[s];
      double gap = relative_gap(d, r.policies[static_cast<std::size_t>(best)].misses[s]);
      if (!md) row.push_back("|");
      row.push_back(signed_percent(gap));
      bool ok = gap <= 0.01;
      met += ok;
      if (gap > worst) {
        worst = gap;
        worst_at = s;
      }
      row.push_back(ok ? "yes" : "NO");
      if (lru >= 0 && lru != def) {
        row.push_back(
            signed_percent(relative_gap(d, r.policies[static_cast<std::size_t>(lru)].misses[s])));
      }
    }
    rows.push_back(row);
  }
  out << (md ? render_markdown(rows) : render(rows)) << "\n";
  if (def >= 0) {
    const auto& d = r.policies[static_cast<std::size_t>(def)];
    out << "default policy " << d.name << ": within 1% of the best engine policy at " << met
        << " of " << r.sizes.size() << " sizes";
    if (met < r.sizes.size()) {
      out << "; worst gap " << signed_percent(worst) << " at size "
          << with_commas(r.sizes[worst_at]);
    }
    out << "\n";
  }
  out << "gaps are relative: (default - other) / other; reference columns are computed by the "
         "simulator, not the engine\n";
  if (!md) {
    out << "cpu seconds:";
    for (const auto& p : r.policies) out << " " << p.name << " " << fixed(p.cpu_seconds, 2);
    out << "\n";
  }
  return out.str();
}

}  // namespace

std::string format_table(const SimResults& r) { return format_grid(r, false); }

std::string format_markdown(const SimResults& r) { return format_grid(r, true); }

std::string format_json(const SimResults& r) {
  using nlohmann::json;
  json j;
  j["trace"] = {{"name", r.trace_name},
                {"requests", r.requests},
                {"distinct_keys", r.distinct},
                {"one_hit_keys", r.one_hit_keys}};
  j["sizes"] = r.sizes;
  json pols = json::array();
  for (std::size_t p = 0; p < r.policies.size(); ++p) {
    const auto& c = r.policies[p];
    json ratios = json::array();
    for (std::size_t s = 0; s < r.sizes.size(); ++s) ratios.push_back(r.miss_ratio(p, s));
    pols.push_back({{"name", c.name},
                    {"label", c.label},
                    {"engine_policy", c.engine},
                    {"default", c.is_default},
                    {"misses", c.misses},
                    {"miss_ratio", ratios},
                    {"cpu_seconds", c.cpu_seconds}});
  }
  j["policies"] = pols;
  json best = json::array();
  for (std::size_t s = 0; s < r.sizes.size(); ++s) {
    int b = r.best_engine(s);
    best.push_back(b < 0 ? json(nullptr) : json(r.policies[static_cast<std::size_t>(b)].name));
  }
  j["best_engine_policy"] = best;
  const int def = r.default_policy();
  if (def >= 0) {
    const auto& d = r.policies[static_cast<std::size_t>(def)];
    json gaps = json::array(), met = json::array();
    for (std::size_t s = 0; s < r.sizes.size(); ++s) {
      double g = relative_gap(d.misses[s],
                              r.policies[static_cast<std::size_t>(r.best_engine(s))].misses[s]);
      gaps.push_back(g);
      met.push_back(g <= 0.01);
    }
    j["default_policy"] = d.name;
    j["default_gap_to_best"] = gaps;
    j["default_within_1_percent"] = met;
  }
  return j.dump(2) + "\n";
}

std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  std::string_view rest = path;
  while (true) {
    auto colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    std::string candidate(dir.empty() ? std::string_view(".") : dir);
    candidate += '/';
    candidate += program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) return "";
    rest.remove_prefix(colon + 1);
  }
}

Result<ChartFiles> write_chart(const SimResults& r, const std::string& prefix) {
  ChartFiles f;
  f.dat = prefix + ".dat";
  f.gp = prefix + ".gp";
  const std::string base = base_of(prefix);
  {
    std::ofstream dat(f.dat);
    if (!dat) return Status::io_error("cannot write '" + f.dat + "': " + std::strerror(errno));
    dat << "# miss ratio vs cache size; trace " << r.trace_name << ", " << r.requests
        << " requests, " << r.distinct << " distinct keys\n# size\tfraction_of_keys";
    for (const auto& p : r.policies) dat << "\t" << p.name;
    dat << "\n";
    for (std::size_t s = 0; s < r.sizes.size(); ++s) {
      dat << r.sizes[s] << "\t" << fixed(static_cast<double>(r.sizes[s]) / r.distinct, 6);
      for (std::size_t p = 0; p < r.policies.size(); ++p)
        dat << "\t" << fixed(r.miss_ratio(p, s), 6);
      dat << "\n";
    }
    if (!dat.flush()) return Status::io_error("cannot write '" + f.dat + "'");
  }
  {
    std::ofstream gp(f.gp);
    if (!gp) return Status::io_error("cannot write '" + f.gp + "': " + std::strerror(errno));
    gp << "# Miss ratio vs cache size, one line per policy (callcache sim).\n"
       << "# Re-render with: gnuplot " << base << ".gp  (in this directory)\n"
       << "set title "
       << gnuplot_quote("callcache sim: " + r.trace_name + "\n" + with_commas(r.requests) +
                        " requests, " + with_commas(r.distinct) + " distinct keys")
       << " noenhanced\n"
       << "set xlabel \"cache size (entries, log scale)\"\n"
       << "set ylabel \"miss ratio\"\n"
       << "set logscale x\nset grid\nset key top right noenhanced\n"
       << "set yrange [0:*]\n";
    if (!r.sizes.empty()) {
      // A little room either side of the data instead of whole decades.
      gp << "set xrange [" << fixed(static_cast<double>(r.sizes.front()) / 1.25, 3) << ":"
         << fixed(static_cast<double>(r.sizes.back()) * 1.25, 3) << "]\n";
    }
    gp << "set terminal svg size 800,500 dynamic font \"sans,12\" background rgb \"white\"\n"
       << "set output " << gnuplot_quote(base + ".svg") << "\n";
    gp << "plot ";
    int engine_i = 0;
    for (std::size_t p = 0; p < r.policies.size(); ++p) {
      const auto& c = r.policies[p];
      if (p) gp << ", \\\n     ";
      gp << gnuplot_quote(base + ".dat") << " using 1:" << p + 3 << " with linespoints title "
         << gnuplot_quote(c.label);
      if (c.engine) {
        gp << " lw 2 pt 7 lc " << ++engine_i;
      } else {
        gp << " lw 1 dt 2 pt 6 lc rgb \"#" << (c.name == "opt" ? "444444" : "999999") << "\"";
      }
    }
    gp << "\n"
       << "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
       << "  set terminal pngcairo size 800,500 font \"sans,10\"\n"
       << "  set output " << gnuplot_quote(base + ".png") << "\n  replot\n}\n"
       << "set output\n";
    if (!gp.flush()) return Status::io_error("cannot write '" + f.gp + "'");
  }
  if (find_on_path("gnuplot").empty()) {
    f.note = "gnuplot not found on PATH: wrote " + f.dat + " and " + f.gp +
             " but no chart (install gnuplot-nox, then run: gnuplot " + base + ".gp)";
    return f;
  }
  std::remove((prefix + ".svg").c_str());
  std::remove((prefix + ".png").c_str());
  int rc = run_in(dir_of(prefix), "gnuplot", base + ".gp");
  if (rc != 0) {
    return Status::internal("gnuplot failed (exit " + std::to_string(rc) + ") on '" + f.gp + "'");
  }
  if (file_exists(prefix + ".svg")) f.svg = prefix + ".svg";
  if (file_exists(prefix + ".png")) {
    f.png = prefix + ".png";
  } else {
    f.note = "gnuplot has no pngcairo terminal: wrote the SVG only";
  }
  return f;
}

}  // namespace callcache::sim
