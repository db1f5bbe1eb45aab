// Internal: tiny hand-written JSON and Prometheus text helpers for the
// toolkit's stats (the core toolkit links no JSON library).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "callcache/clock.h"

namespace callcache::limits {

// Appends `s` as a JSON string literal (quotes included).
inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

// Appends `s` escaped for a Prometheus label value (without quotes).
inline void append_label_value(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

// Seconds as a decimal number with enough digits for nanoseconds.
inline std::string seconds_number(Duration d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace callcache::limits
