// Internal: the dashboard's history — what the gateway did each second over
// the last 5 minutes and each 10 seconds over the last hour, kept in two
// fixed rings in memory and rendered as JSON for GET /stats/history.
//
// A StatsSample copies every cumulative counter at one instant (the gateway's
// Metrics, the engine's namespaces, the L2 tier). record() turns consecutive
// samples into points: the counts of one interval plus the gauges at its end.
// Each call adds a point to the 1 s ring; every 10th call adds one to the
// 10 s ring, made from the samples 10 calls apart (so its counts are exact
// and its latency percentiles come from the merged histogram of those 10 s,
// not from averaged percentiles).
//
// What a point holds (per interval):
//   requests by outcome; requests served (all but rejected) and calls saved
//   (served minus upstream calls: without the gateway every served request
//   is one upstream call); upstream calls, 429s received, 429s retried;
//   hits and reads per API ("telegram", then each generic API by name);
//   hits and lookups per engine namespace, and its entries and bytes at the
//   end; pacing waits and refusals per rate-limit rule; upstream calls and
//   latency p50/p99 per method (methods with calls only); the L2 tier's gets,
//   hits and errors, its write-behind queue depth and whether it is down.
// Hits are hit + l2_hit + coalesced + stale + negative; reads are hits +
// miss + bypass. An engine namespace's hits include coalesced waiters and
// stale hits; its lookups add its misses (an L2 hit is an L1 miss).
//
// Memory: at most kFinePoints + kCoarsePoints points (660), each a few
// hundred bytes plus 16 bytes per method that went upstream in it; the name
// tables (methods, rules, namespaces) are bounded by the configuration.
//
// Thread-safety: record() and to_json() may be called from any thread (one
// mutex guards everything).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "callcache/status.h"
#include "gateway/metrics.h"

namespace callcache::gateway {

// Every cumulative counter the history needs, at one instant.
struct StatsSample {
  std::int64_t unix_ms = 0;                    // wall clock: the page's time axis
  std::chrono::steady_clock::time_point at{};  // interval lengths
  MetricsSnapshot gateway;
  struct Namespace {
    std::string name;
    std::uint64_t hits = 0;     // L1 hits, coalesced waiters, stale and negative hits
    std::uint64_t lookups = 0;  // hits + misses
    std::uint64_t entries = 0, bytes = 0;
    std::uint64_t max_entries = 0, max_bytes = 0;  // 0 = unbounded
  };
  std::vector<Namespace> namespaces;
  struct L2 {
    std::string backend;  // "sqlite", "redis"; "" = no L2 tier
    bool down = false;    // an outage is in progress
    std::uint64_t gets = 0, hits = 0, errors = 0, pending_writes = 0;
  } l2;
};

// Which ring.
enum class HistoryWindow : std::uint8_t {
  kFine,    // 1 s points, the last 5 minutes
  kCoarse,  // 10 s points, the last hour
};

class StatsHistory {
 public:
  static constexpr std::size_t kFinePoints = 300;
  static constexpr std::size_t kCoarsePoints = 360;
  static constexpr std::size_t kCoarseEvery = 10;  // samples per coarse point

  // Adds a sample. The first one is the baseline (no point). REQUIRES:
  // samples come in time order.
  void record(StatsSample sample);

  // {"resolution_s":1,"window_s":300,"started_ms":..,"now_ms":..,"t":[..],
  //  "dt":[..],"requests":{"hit":[..],..},"served":[..],"saved":[..],
  //  "upstream":{"calls":[..],"429":[..],"retried":[..]},
  //  "apis":{"telegram":{"hits":[..],"reads":[..]},..},
  //  "namespaces":{"tg_chat":{"max_entries":N,"max_bytes":N,"hits":[..],
  //      "lookups":[..],"entries":[..],"bytes":[..]},..},
  //  "pacing":{"<rule>":{"waits":[..],"refused":[..]},..},
  //  "latency":{"<method>":{"calls":[..],"p50_ms":[..],"p99_ms":[..]},..},
  //  "l2":null|{"backend":"sqlite","down":[0|1,..],"gets":[..],"hits":[..],
  //      "errors":[..],"pending_writes":[..]}}
  // Columns are aligned with "t" (each point's end, Unix ms; "dt" its length
  // in seconds): counts per interval, gauges at its end, null where a
  // latency has no calls. Only points with t > since_ms are included.
  std::string to_json(HistoryWindow window, std::int64_t since_ms = 0) const;

  // Parses the query of GET /stats/history: window=5m|1h (default 5m),
  // since=<Unix ms> (default 0). Errors name the parameter and the value.
  struct Query {
    HistoryWindow window = HistoryWindow::kFine;
    std::int64_t since_ms = 0;
  };
  static Result<Query> parse_query(std::string_view query);

  std::size_t size(HistoryWindow window) const;

 private:
  struct NamespacePoint {
    std::uint64_t hits = 0, lookups = 0, entries = 0, bytes = 0;
  };
  struct MethodPoint {
    std::uint32_t method = 0;  // index into methods_
    std::uint32_t calls = 0;
    float p50_ms = 0, p99_ms = 0;
  };
  struct Point {
    std::int64_t unix_ms = 0;
    float seconds = 0;
    std::array<std::uint64_t, kOutcomeCount> outcomes{};
    std::uint64_t upstream_calls = 0, received_429 = 0, retried_429 = 0;
    std::vector<std::array<std::uint64_t, 2>> apis;    // hits, reads; apis_ order
    std::vector<NamespacePoint> namespaces;            // namespaces_ order
    std::vector<std::array<std::uint64_t, 2>> pacing;  // waits, refused; pacing_ order
    std::vector<MethodPoint> latency;
    bool l2_down = false;
    std::uint64_t l2_gets = 0, l2_hits = 0, l2_errors = 0, l2_pending = 0;
  };

  // REQUIRES: mu_ held.
  Point diff(const StatsSample& before, const StatsSample& after);
  static void push(std::deque<Point>& ring, Point p, std::size_t capacity);

  mutable std::mutex mu_;                   // guards everything below
  std::optional<StatsSample> previous_;     // the last sample
  std::optional<StatsSample> coarse_base_;  // the sample the next coarse point starts at
  std::size_t since_coarse_ = 0;            // samples since coarse_base_
  std::int64_t started_ms_ = 0;             // the first sample's time
  std::deque<Point> fine_, coarse_;
  // Name tables (grow only); points index into them.
  std::vector<std::string> apis_ = {"telegram"};
  std::vector<std::string> pacing_;
  std::vector<std::string> methods_;
  std::vector<StatsSample::Namespace> namespaces_;  // names and bounds
  std::string l2_backend_;
};

}  // namespace callcache::gateway
