#include "support.h"

#include <chrono>
#include <cmath>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace callcache::python {

// ---- Graveyard ----------------------------------------------------------------

namespace detail {
std::atomic<bool> g_graveyard_nonempty{false};
}  // namespace detail

namespace {

std::atomic<bool> g_alive{true};
std::atomic<bool> g_drain_scheduled{false};
// Leaked on purpose: library threads may release references during static
// destruction, after this file's statics would be gone.
std::mutex& graveyard_mu = *new std::mutex;
std::vector<PyObject*>& graveyard = *new std::vector<PyObject*>;  // guarded by graveyard_mu

int drain_pending_call(void*) {
  g_drain_scheduled.store(false, std::memory_order_release);
  drain_released();
  return 0;
}

}  // namespace

void release_later(PyObject* obj) noexcept {
  if (!obj || !g_alive.load(std::memory_order_acquire)) return;  // finalizing: leak
  {
    std::lock_guard lock(graveyard_mu);
    graveyard.push_back(obj);
  }
  detail::g_graveyard_nonempty.store(true, std::memory_order_release);
  // A Python thread drains at the end of its binding call; a library thread
  // (sweep, eviction, timer) asks the interpreter to drain soon.
  if (!PyGILState_Check() && !g_drain_scheduled.exchange(true, std::memory_order_acq_rel)) {
    if (Py_AddPendingCall(drain_pending_call, nullptr) != 0) {
      g_drain_scheduled.store(false, std::memory_order_release);  // queue full: next one retries
    }
  }
}

void drain_released() {
  // Dropping a reference may run __del__, which may release more: loop.
  for (int round = 0; round < 16; ++round) {
    std::vector<PyObject*> batch;
    {
      std::lock_guard lock(graveyard_mu);
      batch.swap(graveyard);
      detail::g_graveyard_nonempty.store(false, std::memory_order_release);
    }
    if (batch.empty()) return;
    for (PyObject* o : batch) Py_DECREF(o);
  }
}

void python_is_finalizing() noexcept { g_alive.store(false, std::memory_order_release); }
bool python_alive() noexcept { return g_alive.load(std::memory_order_acquire); }

PyRef::PyRef(py::handle obj) : holder_(new Holder{obj.inc_ref().ptr()}) {}

// ---- Values ---------------------------------------------------------------------

std::size_t charge_of(py::handle o) {
  PyObject* p = o.ptr();
  if (PyBytes_Check(p)) return static_cast<std::size_t>(PyBytes_GET_SIZE(p));
  if (PyUnicode_Check(p)) {
    return static_cast<std::size_t>(PyUnicode_GET_LENGTH(p)) * PyUnicode_KIND(p);
  }
  if (PyByteArray_Check(p)) return static_cast<std::size_t>(PyByteArray_GET_SIZE(p));
  std::size_t n = _PySys_GetSizeOf(p);
  if (n == static_cast<std::size_t>(-1)) {
    PyErr_Clear();
    n = static_cast<std::size_t>(Py_TYPE(p)->tp_basicsize);
  }
  return n;
}

PyValue::PyValue(py::handle o) : obj(o.inc_ref().ptr()), charge(charge_of(o)) {}

// ---- Time ------------------------------------------------------------------------

Duration to_duration(py::handle seconds, const char* what) {
  PyObject* p = seconds.ptr();
  double s;
  if (PyFloat_Check(p) || PyLong_Check(p)) {
    s = PyFloat_AsDouble(p);
    if (s == -1.0 && PyErr_Occurred()) throw py::error_already_set();
  } else if (py::hasattr(seconds, "total_seconds")) {  // datetime.timedelta
    s = seconds.attr("total_seconds")().cast<double>();
  } else {
    throw py::type_error(std::string(what) + ": expected seconds (int or float), got " +
                         std::string(py::str(py::type::handle_of(seconds).attr("__name__"))));
  }
  if (!std::isfinite(s) || s < 0) {
    throw py::value_error(std::string(what) + ": expected seconds >= 0, got " +
                          std::string(py::str(seconds)));
  }
  if (s > 1e10) s = 1e10;  // ~317 years: far beyond any policy, far below overflow
  return Duration(static_cast<std::int64_t>(std::llround(s * 1e9)));
}

// ---- Errors -----------------------------------------------------------------------

namespace {

PyObject* g_classes = nullptr;  // a dict code name -> class (owned); GIL

constexpr std::string_view kTokenPrefix = " [python exception #";

struct Kept {
  PyObject* exc;  // owned
  std::chrono::steady_clock::time_point until;
};
// Loader exceptions in flight or remembered by negative_ttl. GIL-guarded.
std::unordered_map<std::uint64_t, Kept>& kept = *new std::unordered_map<std::uint64_t, Kept>;
std::deque<std::uint64_t>& kept_order = *new std::deque<std::uint64_t>;
std::uint64_t next_token = 1;
constexpr std::size_t kMaxKept = 4096;
// Grace on top of negative_ttl: waiters of a flight resolve the token while
// the flight completes, so this only needs to cover scheduling delays.
constexpr auto kKeepGrace = std::chrono::seconds(60);

void purge_kept() {
  auto now = std::chrono::steady_clock::now();
  while (!kept_order.empty()) {
    auto it = kept.find(kept_order.front());
    if (it != kept.end() && it->second.until > now && kept.size() <= kMaxKept) break;
    if (it != kept.end()) {
      Py_DECREF(it->second.exc);
      kept.erase(it);
    }
    kept_order.pop_front();
  }
}

py::object class_for(Code code) {
  if (g_classes) {
    PyObject* cls = PyDict_GetItemString(g_classes, std::string(code_name(code)).c_str());
    if (cls) return py::reinterpret_borrow<py::object>(cls);
  }
  return py::reinterpret_borrow<py::object>(PyExc_RuntimeError);
}

}  // namespace

void set_exception_classes(py::dict classes) {
  Py_XDECREF(g_classes);
  g_classes = classes.inc_ref().ptr();
}

py::object exception_for(const Status& s) {
  const std::string& m = s.message();
  std::size_t at = m.rfind(kTokenPrefix);
  if (s.code() == Code::kLoadFailed && at != std::string::npos && m.back() == ']') {
    std::uint64_t token = std::strtoull(m.c_str() + at + kTokenPrefix.size(), nullptr, 10);
    auto it = kept.find(token);
    if (it != kept.end()) return py::reinterpret_borrow<py::object>(it->second.exc);
    return class_for(s.code())(m.substr(0, at) + " (the original exception has been released)");
  }
  return class_for(s.code())(m);
}

void raise_status(const Status& s) {
  py::object exc = exception_for(s);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw py::error_already_set();
}

void check(const Status& s) {
  if (!s.ok()) raise_status(s);
}

Status exception_to_status(py::handle exc, Duration keep) {
  purge_kept();
  std::uint64_t token = next_token++;
  auto until = std::chrono::steady_clock::now() +
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(keep) + kKeepGrace;
  kept.emplace(token, Kept{exc.inc_ref().ptr(), until});
  kept_order.push_back(token);
  std::string text;
  try {
    text = std::string(py::str(py::type::handle_of(exc).attr("__qualname__")));
    std::string what = py::str(exc);
    if (!what.empty()) text += ": " + what;
  } catch (py::error_already_set&) {
    text = "exception";  // a __str__ that raises: the object itself still reaches waiters
  }
  return Status::load_failed(text + std::string(kTokenPrefix) + std::to_string(token) + "]");
}

Status current_exception_to_status(py::error_already_set& e, Duration keep) {
  return exception_to_status(e.value(), keep);
}

}  // namespace callcache::python
