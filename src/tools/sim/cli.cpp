#include "tools/sim/cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <thread>

#include "tools/sim/generators.h"
#include "tools/sim/progress.h"
#include "tools/sim/reference.h"
#include "tools/sim/report.h"
#include "tools/sim/trace.h"

namespace callcache::sim {
namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    std::string item = s.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

Result<std::vector<std::uint64_t>> parse_sizes(const std::string& list) {
  std::vector<std::uint64_t> sizes;
  for (const std::string& item : split(list)) {
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || p != item.data() + item.size() || v == 0) {
      return Status::invalid_argument("--sizes: '" + item +
                                      "' is not a cache size (an integer > 0)");
    }
    sizes.push_back(v);
  }
  if (sizes.empty()) return Status::invalid_argument("--sizes: no sizes given");
  return sizes;
}

Result<std::vector<double>> parse_fractions(const std::string& list) {
  std::vector<double> out;
  for (const std::string& item : split(list)) {
    std::string num = item;
    double scale = 1;
    if (!num.empty() && num.back() == '%') {
      num.pop_back();
      scale = 0.01;
    }
    double v = 0;
    std::size_t used = 0;
    try {
      v = std::stod(num, &used);
    } catch (...) {
      used = 0;
    }
    v *= scale;
    if (used == 0 || used != num.size() || !std::isfinite(v) || v <= 0 || v > 10) {
      return Status::invalid_argument("--fractions: '" + item +
                                      "' is not a fraction of the distinct keys (e.g. 0.01 or 1%)");
    }
    out.push_back(v);
  }
  if (out.empty()) return Status::invalid_argument("--fractions: no fractions given");
  return out;
}

struct Args {
  std::string trace_path;
  std::string format = "auto";
  std::string csv_column = "1";
  bool csv_header = false, no_csv_header = false;
  std::string csv_delimiter;
  std::uint64_t limit = 0;
  std::string generate;
  std::uint64_t requests = 1'000'000;
  std::uint32_t keys = 100'000;
  double alpha = 0.9;
  std::uint32_t scan_length = 5'000;
  std::uint64_t scan_every = 20'000;
  std::uint64_t seed = 1;
  std::string sizes, fractions;
  std::string policies = "all";
  std::string reference = "opt,fifo";
  bool json = false;
  bool markdown = false;
  std::string chart;
  unsigned threads = 0;  // 0 = one per hardware thread
  std::string progress = "auto";
};

Result<Trace> load_trace(const Args& a) {
  if (!a.generate.empty()) {
    ZipfOptions z{a.requests, a.keys, a.alpha, a.seed};
    if (a.generate == "zipf") return generate_zipf(z);
    if (a.generate == "scan") return generate_scan(ScanOptions{z, a.scan_length, a.scan_every});
    if (a.generate == "loop") return generate_loop(LoopOptions{a.requests, a.keys});
    return Status::invalid_argument("--generate: unknown generator '" + a.generate +
                                    "' (expected zipf, scan or loop)");
  }
  ReadOptions o;
  auto f = parse_trace_format(a.format);
  if (!f.ok()) return Status::invalid_argument("--format: " + f.status().message());
  o.format = *f;
  o.csv_column = a.csv_column;
  if (a.csv_header) o.csv_header = true;
  if (a.no_csv_header) o.csv_header = false;
  if (!a.csv_delimiter.empty()) {
    std::string d = a.csv_delimiter == "\\t" || a.csv_delimiter == "tab" ? "\t" : a.csv_delimiter;
    if (d.size() != 1) {
      return Status::invalid_argument("--csv-delimiter must be one character (or 'tab'), not '" +
                                      a.csv_delimiter + "'");
    }
    o.csv_delimiter = d[0];
  }
  o.limit = a.limit;
  return read_trace(a.trace_path, o);
}

Result<std::vector<PolicyRun>> select_policies(const Args& a, std::vector<PolicyRun> engine) {
  std::vector<PolicyRun> out;
  if (a.policies == "all") {
    out = std::move(engine);
  } else if (a.policies != "none") {
    for (const std::string& name : split(a.policies)) {
      bool found = false;
      for (auto& p : engine) {
        if (p.name == name) {
          out.push_back(p);
          found = true;
        }
      }
      if (!found) {
        std::string known;
        for (auto& p : engine) known += (known.empty() ? "" : ", ") + p.name;
        return Status::invalid_argument("--policies: '" + name +
                                        "' is not an engine policy (known: " + known + ")");
      }
    }
  }
  if (a.reference != "none") {
    for (const std::string& name : split(a.reference)) {
      if (auto spec = parse_reference(name); !spec.ok()) {
        return Status::invalid_argument("--reference: " + spec.status().message());
      }
      out.push_back(reference_run(name));
    }
  }
  if (out.empty()) return Status::invalid_argument("no policy to simulate");
  return out;
}

}  // namespace

int run_sim_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                std::vector<PolicyRun> engine_policies, bool err_is_terminal) {
  Args a;
  std::string engine_names;
  for (auto& p : engine_policies) engine_names += (engine_names.empty() ? "" : ",") + p.name;
  CLI::App app(
      "Hit-ratio simulation: replays a trace through every engine eviction policy at several "
      "cache sizes (the real engine, single-threaded, one shard) and prints the miss ratios, "
      "with reference points computed by the simulator (OPT = Belady's offline optimum).",
      "callcache sim");
  app.add_option("trace", a.trace_path,
                 "trace file: text (one key per line), csv, oracleGeneral (libCacheSim binary) "
                 "or cache2k (32-bit big-endian keys); .xz and .zst are decompressed");
  app.add_option("--format", a.format,
                 "trace format: auto (from the file name), text, csv, "
                 "oracle, cache2k")
      ->capture_default_str();
  app.add_option("--csv-column", a.csv_column, "csv key column: 1-based index or header name")
      ->capture_default_str();
  auto* hdr = app.add_flag("--csv-header", a.csv_header, "the first csv row is a header");
  app.add_flag("--no-csv-header", a.no_csv_header, "the first csv row is data")->excludes(hdr);
  app.add_option("--csv-delimiter", a.csv_delimiter,
                 "csv field separator (default ',', "
                 "tab for .tsv; 'tab' for a tab)");
  app.add_option("--limit", a.limit, "use only the first N requests (0 = all)");
  auto* gen = app.add_option("--generate", a.generate,
                             "synthetic trace instead of a file: zipf, scan (zipf with one-time "
                             "scans) or loop (cyclic)");
  app.add_option("--requests", a.requests, "synthetic: requests")->capture_default_str();
  app.add_option("--keys", a.keys, "synthetic: keys in the zipf (or loop) key space")
      ->capture_default_str();
  app.add_option("--alpha", a.alpha, "synthetic: zipf skew")->capture_default_str();
  app.add_option("--scan-length", a.scan_length, "scan: keys per one-time scan")
      ->capture_default_str();
  app.add_option("--scan-every", a.scan_every, "scan: zipf requests between scans")
      ->capture_default_str();
  app.add_option("--seed", a.seed, "synthetic: random seed")->capture_default_str();
  auto* sizes = app.add_option("--sizes", a.sizes, "cache sizes in entries, e.g. 100,1000,10000");
  app.add_option("--fractions", a.fractions,
                 "cache sizes as fractions of the distinct keys, e.g. 0.01,5% (default "
                 "0.1%,0.5%,1%,2%,5%,10%,20%)")
      ->excludes(sizes);
  app.add_option(
         "--policies", a.policies,
         "engine policies to run, comma-separated, or all / none (engine: " + engine_names + ")")
      ->capture_default_str();
  app.add_option("--reference", a.reference,
                 "reference points computed by the simulator: opt, fifo, lru-exact, "
                 "s3fifo-ref[:small=F][:ghost=F][:promote=N][:maxfreq=N], "
                 "wtinylfu-ref[:window=F][:protected=F], or none")
      ->capture_default_str();
  auto* json_flag = app.add_flag("--json", a.json, "print JSON instead of the table");
  app.add_flag("--markdown", a.markdown, "print the table as Markdown")->excludes(json_flag);
  app.add_option("--chart", a.chart,
                 "write PREFIX.dat and PREFIX.gp, and render PREFIX.svg / PREFIX.png with gnuplot");
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  app.add_option("--threads", a.threads,
                 "worker threads for the (policy, size) runs; 0 = one per hardware thread (" +
                     std::to_string(cores) + " here); results do not depend on it")
      ->check(CLI::Range(0u, 256u))
      ->capture_default_str();
  app.add_option("--progress", a.progress,
                 "progress bar on stderr: auto (when stderr is a terminal and the run takes over a "
                 "second), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  gen->check(CLI::IsMember({"zipf", "scan", "loop"}));

  try {
    app.parse(argc, argv);
    if (a.trace_path.empty() == a.generate.empty()) {
      throw CLI::ValidationError("give either a trace file or --generate zipf|scan|loop");
    }
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e, out, err);
    return rc == 0 ? 0 : 2;
  }

  auto policies = select_policies(a, std::move(engine_policies));
  if (!policies.ok()) {
    err << "callcache sim: " << policies.status().message() << "\n";
    return 2;
  }
  std::vector<std::uint64_t> size_list;
  std::vector<double> fractions = default_fractions();
  if (!a.sizes.empty()) {
    auto s = parse_sizes(a.sizes);
    if (!s.ok()) {
      err << "callcache sim: " << s.status().message() << "\n";
      return 2;
    }
    size_list = *s;
  } else if (!a.fractions.empty()) {
    auto f = parse_fractions(a.fractions);
    if (!f.ok()) {
      err << "callcache sim: " << f.status().message() << "\n";
      return 2;
    }
    fractions = *f;
  }

  auto trace = load_trace(a);
  if (!trace.ok()) {
    err << "callcache sim: " << trace.status().to_string() << "\n";
    return trace.status().code() == Code::kInvalidArgument && !a.generate.empty() ? 2 : 1;
  }
  if (size_list.empty()) size_list = sizes_from_fractions(trace->distinct, fractions);
  std::sort(size_list.begin(), size_list.end());
  size_list.erase(std::unique(size_list.begin(), size_list.end()), size_list.end());

  const bool show = a.progress == "on" || (a.progress == "auto" && err_is_terminal);
  Progress progress(err, show, policies->size() * size_list.size());
  auto results = run_matrix(*trace, size_list, *policies, a.threads ? a.threads : cores,
                            [&progress](std::size_t done) { progress.advance(done); });
  progress.finish();
  if (!results.ok()) {
    err << "callcache sim: " << results.status().to_string() << "\n";
    return 1;
  }
  if (a.json) {
    out << format_json(*results);
  } else if (a.markdown) {
    out << format_markdown(*results);
  } else {
    out << format_table(*results);
  }
  if (!a.chart.empty()) {
    out.flush();  // the table before anything gnuplot prints
    auto chart = write_chart(*results, a.chart);
    if (!chart.ok()) {
      err << "callcache sim: chart: " << chart.status().to_string() << "\n";
      return 1;
    }
    std::ostream& note = a.json || a.markdown ? err : out;
    note << "chart data: " << chart->dat << ", script: " << chart->gp;
    if (!chart->svg.empty()) note << ", svg: " << chart->svg;
    if (!chart->png.empty()) note << ", png: " << chart->png;
    note << "\n";
    if (!chart->note.empty()) err << "callcache sim: note: " << chart->note << "\n";
  }
  return 0;
}

}  // namespace callcache::sim
