// Fuzz target: `callcache sim`'s trace readers (tools/sim/trace.h) over the
// byte sources that decompress them (tools/sim/byte_source.h: plain, xz,
// zstd). The first input byte chooses how the rest is read — the format,
// the name's suffix (".xz", ".zst", ".tsv") and the CSV options — and the
// rest is the file, read from memory (fmemopen).
//
// Properties: errors name the file; a trace that reads holds at least one
// request, at most `limit` when one is set, and dense ids (every id below
// `distinct`, every id below `distinct` used); binary formats read exactly
// one request per whole record.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "tools/sim/byte_source.h"
#include "tools/sim/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace callcache::sim;
  if (size < 2) return 0;
  const std::uint8_t how = data[0];
  ++data;
  --size;
  constexpr TraceFormat kFormats[] = {TraceFormat::kText, TraceFormat::kCsv,
                                      TraceFormat::kOracleGeneral, TraceFormat::kCache2k};
  const TraceFormat format = kFormats[how & 3];
  static const char* const kNames[] = {"fuzz.trace", "fuzz.trace.xz", "fuzz.trace.zst", "fuzz.tsv"};
  const std::string name = kNames[(how >> 2) & 3];
  ReadOptions options;
  options.csv_column = (how & 16) ? "key" : "2";
  if (how & 32) options.csv_header = !options.csv_header.value_or(false);
  if (how & 64) options.limit = 3;

  std::FILE* f = fmemopen(const_cast<std::uint8_t*>(data), size, "rb");
  FUZZ_CHECK(f != nullptr);
  auto source = open_byte_source(f, name);
  if (!source.ok()) {
    FUZZ_CHECK(source.status().message().find(name) != std::string::npos);
    return 0;
  }
  auto trace = read_trace(**source, format, options);
  if (!trace.ok()) {
    FUZZ_CHECK(trace.status().message().find(name) != std::string::npos ||
               trace.status().message().starts_with("csv column"));
    return 0;
  }
  FUZZ_CHECK(!trace->requests.empty());
  if (options.limit) FUZZ_CHECK(trace->requests.size() <= options.limit);
  std::vector<bool> used(trace->distinct, false);
  for (std::uint32_t id : trace->requests) {
    FUZZ_CHECK(id < trace->distinct);
    used[id] = true;
  }
  for (bool u : used) FUZZ_CHECK(u);
  if ((*source)->compression() == Compression::kNone && !options.limit) {
    if (format == TraceFormat::kOracleGeneral) FUZZ_CHECK(trace->requests.size() == size / 24);
    if (format == TraceFormat::kCache2k) FUZZ_CHECK(trace->requests.size() == size / 4);
  }
  return 0;
}
