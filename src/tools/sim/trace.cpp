#include "tools/sim/trace.h"

#include <charconv>
#include <cstring>
#include <memory>
#include <vector>

#include "tools/sim/byte_source.h"

namespace callcache::sim {
namespace {

// Longest text/CSV line accepted: the engine's key limit. Longer lines are
// almost always a binary file read as text.
constexpr std::size_t kMaxLine = 64 * 1024;
// Bytes read from the source at a time. 64 KiB keeps the reads' cost small
// against decoding and parsing, and the buffer cheap to allocate for the many
// short traces of tests and fuzzing. A line buffer holds a partial line of up
// to kMaxLine plus a read.
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kLineBuffer = kMaxLine + kChunk;

std::string base_name(std::string_view path) {
  auto slash = path.find_last_of('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Splits a ByteSource into lines (without the '\n'), numbering them from 1.
class LineReader {
 public:
  // The buffer is not zero-filled: only what the source wrote is read.
  explicit LineReader(ByteSource& src)
      : src_(src), buf_(std::make_unique_for_overwrite<char[]>(kLineBuffer)) {}

  // Next line into *line; false at the end. Errors: read errors, NUL bytes
  // and over-long lines (naming the line).
  Result<bool> next(std::string_view* line) {
    while (true) {
      const char* begin = buf_.get() + pos_;
      const char* nl = static_cast<const char*>(std::memchr(begin, '\n', len_ - pos_));
      if (nl) {
        ++line_no_;
        *line = std::string_view(begin, static_cast<std::size_t>(nl - begin));
        pos_ = static_cast<std::size_t>(nl - buf_.get()) + 1;
        if (Status s = check(*line); !s.ok()) return s;
        return true;
      }
      if (eof_) {
        if (pos_ == len_) return false;
        ++line_no_;
        *line = std::string_view(begin, len_ - pos_);
        pos_ = len_;
        if (Status s = check(*line); !s.ok()) return s;
        return true;
      }
      // Move the partial line to the front and refill.
      std::size_t rest = len_ - pos_;
      if (rest > kMaxLine) return too_long(line_no_ + 1);
      std::memmove(buf_.get(), begin, rest);
      pos_ = 0;
      len_ = rest;
      auto got = src_.read(buf_.get() + len_, kLineBuffer - len_);
      if (!got.ok()) return got.status();
      if (*got == 0) eof_ = true;
      len_ += *got;
    }
  }

  std::uint64_t line_no() const { return line_no_; }

 private:
  Status check(std::string_view line) const {
    if (line.size() > kMaxLine) return too_long(line_no_);
    if (line.find('\0') != std::string_view::npos) {
      return Status::corruption("'" + src_.path() + "' line " + std::to_string(line_no_) +
                                ": contains a NUL byte (a binary trace? pass --format)");
    }
    return Status();
  }
  Status too_long(std::uint64_t line_no) const {
    return Status::corruption("'" + src_.path() + "' line " + std::to_string(line_no) +
                              ": longer than " + std::to_string(kMaxLine) +
                              " bytes (a binary trace? pass --format)");
  }

  ByteSource& src_;
  std::unique_ptr<char[]> buf_;
  std::size_t pos_ = 0;
  std::size_t len_ = 0;
  bool eof_ = false;
  std::uint64_t line_no_ = 0;
};

bool reached(const Trace& t, const ReadOptions& o) {
  return o.limit != 0 && t.requests.size() >= o.limit;
}

Status read_text(ByteSource& src, const ReadOptions& options, Interner& interner, Trace& trace) {
  LineReader lines(src);
  std::string_view line;
  while (!reached(trace, options)) {
    auto more = lines.next(&line);
    if (!more.ok()) return more.status();
    if (!*more) break;
    line = trim(line);
    if (line.empty()) continue;
    trace.requests.push_back(interner.id_of_string(line));
  }
  return Status();
}

// Splits one CSV line into fields (RFC 4180 quoting within the line).
// Unquoted fields are views into `line`; quoted ones are unescaped into
// `storage`. Returns false on an unterminated quote.
bool split_csv(std::string_view line, char delim, std::vector<std::string_view>* fields,
               std::vector<std::string>* storage) {
  fields->clear();
  storage->clear();
  storage->reserve(line.size() + 1);  // keeps views stable: no reallocation
  std::size_t i = 0;
  while (true) {
    if (i < line.size() && line[i] == '"') {
      std::string& s = storage->emplace_back();
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            s.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        s.push_back(line[i++]);
      }
      if (!closed) return false;
      // Anything between the closing quote and the delimiter is kept as is.
      std::size_t end = line.find(delim, i);
      if (end == std::string_view::npos) end = line.size();
      s.append(line.substr(i, end - i));
      fields->push_back(s);
      if (end == line.size()) return true;
      i = end + 1;
    } else {
      std::size_t end = line.find(delim, i);
      if (end == std::string_view::npos) {
        fields->push_back(line.substr(i));
        return true;
      }
      fields->push_back(line.substr(i, end - i));
      i = end + 1;
    }
  }
}

std::string join_names(const std::vector<std::string_view>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ", ";
    out += '\'';
    out += trim(fields[i]);
    out += '\'';
  }
  return out;
}

Status read_csv(ByteSource& src, const ReadOptions& options, Interner& interner, Trace& trace) {
  const std::string& col = options.csv_column;
  std::size_t index = 0;
  bool by_name = true;
  if (!col.empty()) {
    auto [p, ec] = std::from_chars(col.data(), col.data() + col.size(), index);
    by_name = ec != std::errc() || p != col.data() + col.size();
  }
  if (col.empty()) return Status::invalid_argument("csv column must not be empty");
  if (!by_name && index == 0) {
    return Status::invalid_argument("csv column index is 1-based: 0 is not a column");
  }
  if (!by_name) --index;
  bool header = options.csv_header.value_or(by_name);
  if (by_name && !header) {
    return Status::invalid_argument("csv column '" + col +
                                    "' is a name, which needs a header row (drop --no-csv-header)");
  }
  char delim = options.csv_delimiter.value_or(src.path().ends_with(".tsv") ||
                                                      src.path().ends_with(".tsv.xz") ||
                                                      src.path().ends_with(".tsv.zst")
                                                  ? '\t'
                                                  : ',');
  LineReader lines(src);
  std::string_view line;
  std::vector<std::string_view> fields;
  std::vector<std::string> storage;
  auto where = [&] { return "'" + src.path() + "' line " + std::to_string(lines.line_no()); };
  bool header_seen = !header;
  while (!reached(trace, options)) {
    auto more = lines.next(&line);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (trim(line).empty()) continue;
    if (!split_csv(line, delim, &fields, &storage)) {
      return Status::corruption(where() + ": unterminated quoted field");
    }
    if (!header_seen) {
      header_seen = true;
      if (by_name) {
        bool found = false;
        for (std::size_t i = 0; i < fields.size(); ++i) {
          if (trim(fields[i]) == col) {
            index = i;
            found = true;
            break;
          }
        }
        if (!found) {
          return Status::invalid_argument(where() + ": no column named '" + col +
                                          "' in the header (columns: " + join_names(fields) + ")");
        }
      }
      continue;
    }
    if (index >= fields.size()) {
      return Status::corruption(where() + ": has " + std::to_string(fields.size()) +
                                " column(s); the key is column " + std::to_string(index + 1));
    }
    std::string_view key = trim(fields[index]);
    if (key.empty())
      return Status::corruption(where() + ": the key (column " + std::to_string(index + 1) +
                                ") is empty");
    trace.requests.push_back(interner.id_of_string(key));
  }
  if (!header_seen) return Status::invalid_argument("'" + src.path() + "': no header row");
  return Status();
}

std::uint64_t load_le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Reads fixed-size records; `key_of` extracts the key from one record.
template <class KeyOf>
Status read_records(ByteSource& src, std::size_t record, const char* what,
                    const ReadOptions& options, Interner& interner, Trace& trace, KeyOf key_of) {
  const std::size_t size = kChunk - kChunk % record;
  auto buf =
      std::make_unique_for_overwrite<char[]>(size);  // not zero-filled: only read bytes are used
  std::uint64_t offset = 0;
  while (!reached(trace, options)) {
    auto got = read_full(src, buf.get(), size);
    if (!got.ok()) return got.status();
    std::size_t n = *got;
    std::size_t whole = n - n % record;
    for (std::size_t i = 0; i < whole && !reached(trace, options); i += record) {
      trace.requests.push_back(
          interner.id_of_int(key_of(reinterpret_cast<const unsigned char*>(buf.get() + i))));
    }
    if (whole != n) {
      return Status::corruption("'" + src.path() + "': truncated " + what +
                                " record at byte offset " + std::to_string(offset + whole) + " (" +
                                std::to_string(n - whole) + " trailing bytes; records are " +
                                std::to_string(record) + " bytes)");
    }
    offset += n;
    if (n < size) break;
  }
  return Status();
}

}  // namespace

std::uint32_t Interner::id_of_int(std::uint64_t key) {
  auto [it, inserted] = ints_.try_emplace(key, next_);
  if (inserted) ++next_;
  return it->second;
}

std::uint32_t Interner::id_of_string(std::string_view key) {
  auto it = strings_.find(key);
  if (it != strings_.end()) return it->second;
  strings_.emplace(std::string(key), next_);
  return next_++;
}

Trace densify(std::string name, const std::vector<std::uint64_t>& raw_keys) {
  Interner interner;
  Trace t;
  t.name = std::move(name);
  t.requests.reserve(raw_keys.size());
  for (std::uint64_t k : raw_keys) t.requests.push_back(interner.id_of_int(k));
  t.distinct = interner.size();
  return t;
}

std::uint64_t count_one_hit_keys(const Trace& trace) {
  std::vector<std::uint8_t> seen(trace.distinct, 0);
  for (std::uint32_t id : trace.requests) {
    if (seen[id] < 2) ++seen[id];
  }
  std::uint64_t n = 0;
  for (std::uint8_t s : seen) n += s == 1;
  return n;
}

std::string_view trace_format_name(TraceFormat f) noexcept {
  switch (f) {
    case TraceFormat::kAuto:
      return "auto";
    case TraceFormat::kText:
      return "text";
    case TraceFormat::kCsv:
      return "csv";
    case TraceFormat::kOracleGeneral:
      return "oracle";
    case TraceFormat::kCache2k:
      return "cache2k";
  }
  return "?";
}

Result<TraceFormat> parse_trace_format(std::string_view name) {
  if (name == "auto") return TraceFormat::kAuto;
  if (name == "text" || name == "txt") return TraceFormat::kText;
  if (name == "csv") return TraceFormat::kCsv;
  if (name == "oracle" || name == "oracleGeneral") return TraceFormat::kOracleGeneral;
  if (name == "cache2k") return TraceFormat::kCache2k;
  return Status::invalid_argument("unknown trace format '" + std::string(name) +
                                  "' (expected auto, text, csv, oracle or cache2k)");
}

Result<TraceFormat> detect_trace_format(std::string_view path) {
  std::string name = base_name(path);
  std::string_view n = name;
  if (n.ends_with(".xz"))
    n.remove_suffix(3);
  else if (n.ends_with(".zst"))
    n.remove_suffix(4);
  if (n.find("oracleGeneral") != std::string_view::npos || n.ends_with(".bin")) {
    return TraceFormat::kOracleGeneral;
  }
  if (n.ends_with(".trace")) return TraceFormat::kCache2k;
  if (n.ends_with(".csv") || n.ends_with(".tsv")) return TraceFormat::kCsv;
  if (n.ends_with(".txt") || n.ends_with(".keys")) return TraceFormat::kText;
  return Status::invalid_argument("cannot tell the format of '" + std::string(path) +
                                  "' from its name; pass --format text|csv|oracle|cache2k");
}

Result<Trace> read_trace(const std::string& path, const ReadOptions& options) {
  TraceFormat format = options.format;
  if (format == TraceFormat::kAuto) {
    auto f = detect_trace_format(path);
    if (!f.ok()) return f.status();
    format = *f;
  }
  auto src = open_byte_source(path);
  if (!src.ok()) return src.status();
  return read_trace(**src, format, options);
}

Result<Trace> read_trace(ByteSource& source, TraceFormat format, const ReadOptions& options) {
  Trace trace;
  trace.name = base_name(source.path());
  Interner interner;
  Status s;
  switch (format) {
    case TraceFormat::kText:
      s = read_text(source, options, interner, trace);
      break;
    case TraceFormat::kCsv:
      s = read_csv(source, options, interner, trace);
      break;
    case TraceFormat::kOracleGeneral:
      s = read_records(source, 24, "oracleGeneral", options, interner, trace,
                       [](const unsigned char* r) { return load_le(r + 4, 8); });
      break;
    case TraceFormat::kCache2k:
      s = read_records(source, 4, "cache2k", options, interner, trace, [](const unsigned char* r) {
        return (std::uint64_t{r[0]} << 24) | (std::uint64_t{r[1]} << 16) |
               (std::uint64_t{r[2]} << 8) | r[3];
      });
      break;
    case TraceFormat::kAuto:
      return Status::invalid_argument("read_trace: the format of '" + source.path() +
                                      "' must be given");
  }
  if (!s.ok()) return s;
  if (trace.requests.empty()) {
    return Status::invalid_argument("'" + source.path() + "': the trace has no requests (read as " +
                                    std::string(trace_format_name(format)) + ")");
  }
  trace.distinct = interner.size();
  return trace;
}

}  // namespace callcache::sim
