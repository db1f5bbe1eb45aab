// Internal (Python binding): the pieces of the read path that CacheCore
// (engine_binding.cpp) hands to the library — codecs over Python functions,
// the second tier's asynchronous step, and the objects a load's leader and
// waiters use to cross between the engine and asyncio:
//
//   AsyncStarter    starts a flight's load for an asyncio leader: reads L2
//                   inline (TierStep), else asks callcache._cache._start_load
//                   to run the loader as a task
//   Completion      the loader task's handle: set(value) writes through to L2
//                   and completes the flight; fail(exc) fails it
//   WaiterState     one asyncio waiter: the outcome, delivered to its future
//                   on its loop whichever thread completes the flight
//   BlockingLoader  the loader of the blocking read path (TieredCache)
//
// TierStep is the interim asynchronous form of TieredCache's L2 step; the
// library's asynchronous TieredCache replaces it.
//
// Thread-safety and GIL rules: support.h. Every function below REQUIRES the
// GIL unless it says otherwise.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bindings.h"
#include "callcache/cache.h"
#include "callcache/tiered_cache.h"

namespace callcache::python {

// The Python the read path calls, installed by callcache._cache at import:
// _deliver(future, ok, value), _start_load(loader, context, completion), and
// the class callcache.Loaded.
void set_deliver_hook(py::handle fn);
void set_start_hook(py::handle fn);
void set_loaded_class(py::handle cls);

// ---- Codecs -----------------------------------------------------------------

// A codec's two functions (bytes <-> object), supplied by the Python layer.
struct CodecFns {
  std::string name;
  PyRef dumps;  // object -> bytes
  PyRef loads;  // bytes -> object
};

// Encodes `obj` for namespace `ns`. Raises CodecError naming the namespace,
// the type and the codec.
std::string encode_now(const CodecFns& c, const std::string& ns, py::handle obj);

// The TieredCache codec over Python functions (any thread: takes the GIL).
struct PyCodec {
  std::shared_ptr<const CodecFns> fns;
  std::string ns;

  std::string encode(const PyValue& v) const;
  Result<PyValue> decode(std::string_view bytes) const;
};

using L1 = Cache<PyValue, PyValueSize>;
using Tiered = TieredCache<PyValue, PyCodec, PyValueSize>;

// ---- Arguments ----------------------------------------------------------------

// A str (UTF-8, cached by the str) or bytes key, viewed; TypeError otherwise.
std::string_view key_view(py::handle k);
std::vector<std::string> tag_list(py::handle tags);
PutOptions put_options(py::handle ttl, py::handle tags);
LoadOptions load_options(py::handle wait_timeout);
// The value (or the exception raised) of a finished read.
py::object value_or_raise(Result<Ref<PyValue>>& r);
// What a Python loader returned: a bare value or a callcache.Loaded.
Loaded<PyValue> to_loaded(py::handle r);

// ---- The second tier shared by every cache of one configuration ---------------

struct Tier {
  std::unique_ptr<Backend> backend;                               // null: memory only
  std::map<std::string, std::shared_ptr<const CodecFns>> codecs;  // namespaces in L2
};

// The second-tier step of the asynchronous read path for one namespace:
// what TieredCache::get_or_load does around its loader (an L2 read before,
// a write-through after), done by the flight's leader without parking a
// thread. Interim: the library's asynchronous TieredCache replaces it.
struct TierStep {
  std::shared_ptr<Tier> tier;  // keeps the backend alive for late completions
  std::shared_ptr<const CodecFns> codec;
  std::string ns;
  bool shared = false;
  Duration ttl{};
  Duration refresh_ahead{};
  internal::TieredCounters counters;

  Backend& backend() const { return *tier->backend; }
  TenantId l2_tenant(TenantId t) const { return shared ? kSharedTenant : t; }
};

// Where a completed load goes besides L1: nothing, or the second tier.
struct TierWrite {
  std::shared_ptr<TierStep> step;
  TenantId tenant;
  std::string key;
};

// ---- Loading ------------------------------------------------------------------

// Completes one flight from Python (callcache._cache runs the loader as an
// asyncio task and calls set() or fail()). For a namespace with a second
// tier, set() encodes the value and writes it through first. Dropping a
// Completion unused fails the flight for its waiters. Both return false if
// the flight was already completed (a load timeout).
struct Completion {
  LoadCompletion<PyValue> done;
  Duration negative_ttl;
  std::optional<TierWrite> tier;

  bool set(py::handle value);
  bool fail(py::handle exc);
};

// One asyncio caller's wait for a flight. The flight may finish on any
// thread, before or after Python attaches its future.
class WaiterState {
 public:
  // The flight's outcome (any thread, no library lock held, GIL or not).
  void on_result(Result<Ref<PyValue>> r);
  // The outcome if it has arrived (moved out). Any thread.
  std::optional<Result<Ref<PyValue>>> take();
  // Hands the outcome to `future`, of `loop`, running on this thread.
  void attach(py::handle future, py::handle loop);

 private:
  static void deliver_here(py::handle future, Result<Ref<PyValue>>& r);
  // Any thread: takes the GIL.
  void post(Result<Ref<PyValue>> r);

  std::mutex mu_;  // guards result_, attached_ (future_, loop_, loop_thread_ are
                   // set once, before attached_)
  std::optional<Result<Ref<PyValue>>> result_;
  bool attached_ = false;
  PyRef future_, loop_;
  unsigned long loop_thread_ = 0;
};

struct Waiter {
  std::shared_ptr<WaiterState> state;
};

// Starts the load of a flight whose leader is an asyncio caller (on the
// caller's thread; for a background refresh, on the reader's). With a second
// tier, reads it first (inline: one SQLite lookup or Redis round trip, like
// the gateway's L1 misses); on an L2 hit the flight completes here, with the
// value's remaining ttl. Otherwise calls callcache._cache._start_load(loader,
// context, completion), which runs the loader as a task on the event loop
// running on this thread. Any thread: takes the GIL.
struct AsyncStarter {
  PyRef loader, context;
  Duration negative_ttl;
  std::shared_ptr<TierStep> step;  // null: L1 only
  TenantId tenant;
  std::string key;

  void operator()(LoadCompletion<PyValue> done) const;
  // True if the second tier answered (the flight is completed).
  bool from_tier(const LoadCompletion<PyValue>& done) const;
};

// Runs a Python loader on the calling thread (the blocking read path). Any
// thread: takes the GIL.
struct BlockingLoader {
  PyRef fn;
  std::shared_ptr<const CodecFns> codec;  // set when the value goes to L2
  std::string ns;
  Duration negative_ttl;
  Result<Loaded<PyValue>> operator()() const;
};

}  // namespace callcache::python
