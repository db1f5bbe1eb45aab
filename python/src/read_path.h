// Internal (Python binding): what CacheCore (cache_core.h) hands to the
// library's read path — TieredCache<PyValue> (callcache/tiered_cache.h), the
// one read path for every namespace, in its callback form for asyncio and its
// blocking form for threads. The library reads L1, then L2 (decoding with
// PyCodec), then calls the loaders below, and writes loaded values through.
// Here are only the pieces that cross between the library and Python:
//
//   PyCodec         a namespace's codec over two Python functions
//   EngineTiers     the library's Tiers over one engine and the second tier,
//                   kept alive by every load in flight
//   AsyncStarter    the callback form's loader: asks
//                   callcache._cache._start_load to run the Python loader as
//                   an asyncio task (after the library's L2 read missed)
//   Completion      the loader task's handle: set(value) / fail(exc)
//                   complete the flight (the library then writes through)
//   WaiterState     one asyncio waiter: the outcome, delivered to its future
//                   on its loop whichever thread completes the flight
//   BlockingLoader  the blocking form's loader
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
#include <utility>
#include <vector>

#include "bindings.h"
#include "callcache/cache.h"
#include "callcache/tiered_cache.h"
#include "callcache/tiers.h"

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

// One configuration's second tier, shared by its engines (scopes).
struct Tier {
  std::unique_ptr<Backend> backend;                               // null: memory only
  std::map<std::string, std::shared_ptr<const CodecFns>> codecs;  // namespaces in L2
  // storage.l2: redis with redis_coordination: the processes sharing Redis
  // (every invalidation reaches their L1s; one load per key across them).
  // Used by the process-scope engine's Tiers only.
  std::shared_ptr<TierCoordinator> coordinator;
};

// The library's Tiers over one engine (CacheCore owns one per engine):
// `l2` over the configuration's second tier (no backend: memory only) for
// the namespaces stored there and for invalidation, `memory` for the
// namespaces kept in memory only. Shared with every load the engine started:
// a load may complete after its CacheCore is gone, and its write-through
// still needs the Tiers and the backend. With `coordinated`, `l2` starts the
// tier's coordinator (a coordinator serves one Tiers: the process engine's,
// shared by every CacheCore over that engine). Any thread.
struct EngineTiers {
  std::shared_ptr<Tier> tier;  // owns the backend
  Tiers l2;
  Tiers memory;

  EngineTiers(Engine& engine, std::shared_ptr<Tier> t, bool coordinated = false)
      : tier(std::move(t)),
        l2(engine, tier->backend.get(), options(*tier, coordinated)),
        memory(engine, nullptr) {}

 private:
  static TiersOptions options(const Tier& t, bool coordinated) {
    TiersOptions o;
    if (coordinated) o.coordinator = t.coordinator;
    return o;
  }
};

// ---- Loading ------------------------------------------------------------------

// Completes one flight from Python (callcache._cache runs the loader as an
// asyncio task and calls set() or fail()). For a namespace with a second
// tier, set() encodes the value first (a value the codec cannot take fails
// the flight with a CodecError) and completes the flight with the GIL
// released: the library writes the bytes through to L2. Dropping a
// Completion unused fails the flight for its waiters. Both return false if
// the flight was already completed (a load timeout).
struct Completion {
  LoadCompletion<PyValue> done;
  Duration negative_ttl;
  std::shared_ptr<const CodecFns> codec;  // set when the namespace uses L2
  std::string ns;
  std::shared_ptr<EngineTiers> keep;

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

// The callback form's loader: starts the load of a flight whose leader is an
// asyncio caller, once the library found the key in neither tier (on the
// caller's thread; for a background refresh, on the reader's). Calls
// callcache._cache._start_load(loader, context, completion), which runs the
// loader as a task on the event loop running on this thread. Any thread:
// takes the GIL.
struct AsyncStarter {
  PyRef loader, context;
  Duration negative_ttl;
  std::shared_ptr<const CodecFns> codec;  // set when the namespace uses L2
  std::string ns;
  std::shared_ptr<EngineTiers> keep;

  void operator()(LoadCompletion<PyValue> done) const;
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
