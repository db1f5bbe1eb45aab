// Internal: number formatting for the limits' stats as JSON and Prometheus
// text (strings go through callcache/text_writer.h, the one escaper).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "callcache/clock.h"

namespace callcache::limits {

// Seconds as a decimal number with enough digits for nanoseconds.
inline std::string seconds_number(Duration d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace callcache::limits
