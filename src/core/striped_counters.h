// Internal: the engine's StripedCounters (callcache/striped_counters.h) with
// the lane lookup inlined: the lane is the thread's reader record (reclaim.h),
// the same index this_thread_lane() returns, read with one TLS load on the
// hit path.
#pragma once

#include <cstddef>

#include "callcache/striped_counters.h"
#include "reclaim.h"

namespace callcache::internal {

inline std::size_t reader_lane() noexcept { return my_reader_record().index; }

template <std::size_t N>
using StripedCounters = callcache::StripedCounters<N, &reader_lane>;

}  // namespace callcache::internal
