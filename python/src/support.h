// Internal (Python binding): what every part of the extension shares —
// Python references that may be dropped on any thread, the cached value type,
// and the mapping from Status to Python exceptions.
//
// The GIL rule of the whole binding: no thread ever waits for the GIL while it
// holds a lock of the library. The library destroys values and runs callbacks
// on its own threads (the expiry sweep, eviction inside an insert, a load
// timeout), so:
//   - a Python reference held by C++ (PyRef, PyValue) never calls Py_DECREF
//     where it is destroyed: the reference goes to a "graveyard" that Python
//     threads empty (release_later / drain_released), outside every lock;
//   - callbacks that need the GIL run where the library promises no lock is
//     held (flight waiters, scheduler tasks, lock grants);
//   - calls that may wait on a library thread (engine shutdown, blocking
//     loads, Redis round trips) release the GIL first.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "callcache/clock.h"
#include "callcache/status.h"

namespace callcache::python {

namespace py = pybind11;

// ---- Deferred reference drops ----------------------------------------------

namespace detail {
extern std::atomic<bool> g_graveyard_nonempty;
}  // namespace detail

// Drops one strong reference to `obj` later, on a Python thread holding the
// GIL. Callable from any thread, with or without the GIL, under any lock.
void release_later(PyObject* obj) noexcept;

// Drops every reference queued by release_later. REQUIRES: the GIL.
void drain_released();

// Cheap check at the end of a binding call. REQUIRES: the GIL.
inline void maybe_drain() {
  if (detail::g_graveyard_nonempty.load(std::memory_order_relaxed)) drain_released();
}

// Called once when the interpreter starts finalizing: later releases are
// leaked instead of scheduled (the interpreter may be gone when they run).
void python_is_finalizing() noexcept;
bool python_alive() noexcept;

// A strong reference to a Python object that C++ code may copy, move and
// destroy on any thread without the GIL (copies share one reference).
class PyRef {
 public:
  PyRef() = default;
  // REQUIRES: the GIL.
  explicit PyRef(py::handle obj);
  // The object (a new reference). REQUIRES: the GIL and !empty().
  py::object get() const { return py::reinterpret_borrow<py::object>(holder_->obj); }
  PyObject* ptr() const noexcept { return holder_ ? holder_->obj : nullptr; }
  bool empty() const noexcept { return !holder_; }

 private:
  struct Holder {
    PyObject* obj;
    ~Holder() { release_later(obj); }
  };
  std::shared_ptr<Holder> holder_;
};

// ---- The cached value --------------------------------------------------------

// One Python object in an engine entry. Moved (never copied) by the engine;
// destroyed on any thread (the reference is released later). `encoded` holds
// the value's codec bytes between the load that produced it and the write to
// the second tier, so a value is encoded once, on a thread with the GIL.
struct PyValue {
  PyObject* obj = nullptr;
  std::size_t charge = 0;
  mutable std::string encoded;
  mutable bool has_encoded = false;

  PyValue() = default;
  // Takes a new reference to `o` and measures it. REQUIRES: the GIL.
  explicit PyValue(py::handle o);
  PyValue(PyValue&& o) noexcept
      : obj(std::exchange(o.obj, nullptr)),
        charge(o.charge),
        encoded(std::move(o.encoded)),
        has_encoded(o.has_encoded) {}
  PyValue& operator=(PyValue&& o) noexcept {
    std::swap(obj, o.obj);
    charge = o.charge;
    encoded = std::move(o.encoded);
    has_encoded = o.has_encoded;
    return *this;
  }
  // Copies share the object (one more reference). REQUIRES: the GIL.
  PyValue(const PyValue& o) : obj(o.obj), charge(o.charge) { Py_XINCREF(obj); }
  PyValue& operator=(const PyValue&) = delete;
  ~PyValue() {
    if (obj) release_later(obj);
  }

  // The object (a new reference). REQUIRES: the GIL.
  py::object object() const { return py::reinterpret_borrow<py::object>(obj); }
};

// Charge against max_bytes: the size measured when the value was stored.
struct PyValueSize {
  std::size_t operator()(const PyValue& v) const noexcept { return v.charge; }
};

// Bytes a Python object is charged: len() for bytes and str, else its
// shallow sys.getsizeof(). REQUIRES: the GIL.
std::size_t charge_of(py::handle o);

// ---- Time --------------------------------------------------------------------

// Seconds (int or float, >= 0) to a Duration; TypeError/ValueError naming
// `what` otherwise. REQUIRES: the GIL.
Duration to_duration(py::handle seconds, const char* what);
inline double to_seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// ---- Errors ------------------------------------------------------------------

// Installs the Python exception classes (a dict: code name -> class), done
// once by the pure-Python layer at import.
void set_exception_classes(py::dict classes);

// The Python exception for a Status: the loader's own exception when the
// Status carries one (see exception_to_status), else an instance of the class
// registered for the code. REQUIRES: the GIL and !s.ok().
py::object exception_for(const Status& s);

// Raises exception_for(s). REQUIRES: the GIL and !s.ok().
[[noreturn]] void raise_status(const Status& s);

// Throws a ValueError / TypeError built from `s` when !s.ok() (bad arguments
// and configuration). REQUIRES: the GIL.
void check(const Status& s);

// Turns a loader's exception into the Status that travels through a flight
// to every waiter. The exception object is kept for at least `keep` (the
// namespace's negative_ttl), so that every waiter — and every caller served
// the remembered failure — raises the very same object. REQUIRES: the GIL.
Status exception_to_status(py::handle exc, Duration keep);

// As exception_to_status, for the error being handled (error_already_set).
Status current_exception_to_status(py::error_already_set& e, Duration keep);

}  // namespace callcache::python
