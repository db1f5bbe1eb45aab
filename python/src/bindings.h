// Internal (Python binding): the pieces of the extension module `_native`,
// each registered by its own translation unit.
//
//   engine_binding.cpp   Config, Runtime (scopes + second tier), and the
//                        classes CacheCore (cache_core.h: one engine's
//                        get/put/invalidate, the read path, statistics),
//                        Completion and Waiter (read_path.h)
//   toolkit_binding.cpp  VirtualClock, RateLimiter, AccountLocks,
//                        BoundedQueue, SeenSet, StateStore
//
// Thread-safety and GIL rules: support.h.
#pragma once

#include <memory>

#include "callcache/clock.h"
#include "support.h"

namespace callcache::python {

// A virtual time line (a ManualClock and its ManualScheduler) that an
// engine, its limiter and its locks can share: nothing moves until Python
// advances it (callcache.testing drives it from an asyncio event loop).
struct VirtualClock {
  explicit VirtualClock(TimePoint start) : clock(start), scheduler(clock) {}
  ManualClock clock;
  ManualScheduler scheduler;
};

// Releases the GIL for its scope when the calling thread holds it and the
// interpreter is not finalizing (then nothing can be waiting for it).
class ReleaseGil {
 public:
  ReleaseGil() {
    if (python_alive() && PyGILState_Check()) state_ = PyEval_SaveThread();
  }
  ~ReleaseGil() {
    if (state_) PyEval_RestoreThread(state_);
  }
  ReleaseGil(const ReleaseGil&) = delete;
  ReleaseGil& operator=(const ReleaseGil&) = delete;

 private:
  PyThreadState* state_ = nullptr;
};

void bind_engine(py::module_& m);
void bind_toolkit(py::module_& m);

// Shuts down every engine the module created (their entries are released
// while the interpreter is still alive). Called at interpreter exit.
void shutdown_all_engines();

}  // namespace callcache::python
