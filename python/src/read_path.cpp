#include "read_path.h"

#include "pythread.h"

namespace callcache::python {

namespace {

PyObject* g_deliver = nullptr;       // callcache._cache._deliver(future, ok, value); owned
PyObject* g_start = nullptr;         // callcache._cache._start_load(loader, context, completion)
PyObject* g_loaded_class = nullptr;  // callcache.Loaded; owned

void replace(PyObject*& slot, py::handle value) {
  Py_XDECREF(slot);
  slot = value.inc_ref().ptr();
}

[[noreturn]] void raise_codec_error(const std::string& message) {
  py::object cls = py::module_::import("callcache.errors").attr("CodecError");
  PyErr_SetObject(cls.ptr(), cls(message).ptr());
  throw py::error_already_set();
}

}  // namespace

// ---- Codecs -----------------------------------------------------------------

std::string encode_now(const CodecFns& c, const std::string& ns, py::handle obj) {
  py::object out;
  try {
    out = c.dumps.get()(obj);
  } catch (py::error_already_set& e) {
    raise_codec_error("namespace '" + ns + "': a value of type " +
                      std::string(py::str(py::type::handle_of(obj).attr("__name__"))) +
                      " cannot be encoded with the '" + c.name +
                      "' codec for the second tier: " + e.what());
  }
  if (!PyBytes_Check(out.ptr())) {
    raise_codec_error("namespace '" + ns + "': the '" + c.name + "' codec returned " +
                      std::string(py::str(py::type::handle_of(out).attr("__name__"))) +
                      ", not bytes");
  }
  return std::string(PyBytes_AS_STRING(out.ptr()), PyBytes_GET_SIZE(out.ptr()));
}

std::string PyCodec::encode(const PyValue& v) const {
  if (v.has_encoded) {  // encoded once, by the load or put that produced it
    v.has_encoded = false;
    return std::move(v.encoded);
  }
  if (!python_alive()) throw std::runtime_error("interpreter finalizing");
  py::gil_scoped_acquire gil;
  try {
    return encode_now(*fns, ns, v.obj);
  } catch (py::error_already_set& e) {
    throw std::runtime_error(e.what());  // counted as an encode error; L1 keeps the value
  }
}

Result<PyValue> PyCodec::decode(std::string_view bytes) const {
  if (!python_alive()) return Status::shutdown("interpreter finalizing");
  py::gil_scoped_acquire gil;
  try {
    py::object o = fns->loads.get()(py::bytes(bytes.data(), bytes.size()));
    return PyValue(o);
  } catch (py::error_already_set& e) {
    return Status::corruption("namespace '" + ns + "': the '" + fns->name +
                              "' codec cannot decode a stored value: " + e.what());
  }
}

void set_deliver_hook(py::handle fn) { replace(g_deliver, fn); }
void set_start_hook(py::handle fn) { replace(g_start, fn); }
void set_loaded_class(py::handle cls) { replace(g_loaded_class, cls); }

// ---- Arguments ----------------------------------------------------------------

std::string_view key_view(py::handle k) {
  if (PyUnicode_Check(k.ptr())) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(k.ptr(), &n);
    if (!s) throw py::error_already_set();
    return {s, static_cast<std::size_t>(n)};
  }
  if (PyBytes_Check(k.ptr())) {
    return {PyBytes_AS_STRING(k.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(k.ptr()))};
  }
  throw py::type_error("key: expected str or bytes, got " +
                       std::string(py::str(py::type::handle_of(k).attr("__name__"))));
}

std::vector<std::string> tag_list(py::handle tags) {
  std::vector<std::string> out;
  if (tags.is_none()) return out;
  if (PyUnicode_Check(tags.ptr())) {
    throw py::type_error("tags: expected a list of str, got a str (wrap it in a list)");
  }
  for (py::handle t : tags) {
    if (!PyUnicode_Check(t.ptr())) throw py::type_error("tags: every tag must be a str");
    out.emplace_back(key_view(t));
  }
  return out;
}

PutOptions put_options(py::handle ttl, py::handle tags) {
  PutOptions o;
  if (!ttl.is_none()) {
    o.ttl = to_duration(ttl, "ttl");
    if (*o.ttl <= Duration::zero()) throw py::value_error("ttl: must be > 0 seconds");
  }
  o.tags = tag_list(tags);
  return o;
}

LoadOptions load_options(py::handle wait_timeout) {
  LoadOptions o;
  if (!wait_timeout.is_none()) o.wait_timeout = to_duration(wait_timeout, "timeout");
  return o;
}

py::object value_or_raise(Result<Ref<PyValue>>& r) {
  if (!r.ok()) raise_status(r.status());
  return (*r)->object();
}

Loaded<PyValue> to_loaded(py::handle r) {
  if (g_loaded_class && PyObject_IsInstance(r.ptr(), g_loaded_class) == 1) {
    Loaded<PyValue> l{PyValue(r.attr("value")), std::nullopt, tag_list(r.attr("tags"))};
    py::object ttl = r.attr("ttl");
    if (!ttl.is_none()) {
      l.ttl = to_duration(ttl, "Loaded.ttl");
      if (*l.ttl <= Duration::zero()) throw py::value_error("Loaded.ttl: must be > 0 seconds");
    }
    return l;
  }
  return Loaded<PyValue>{PyValue(r), std::nullopt, {}};
}

// ---- Completion ---------------------------------------------------------------

bool Completion::set(py::handle value) {
  Loaded<PyValue> l = to_loaded(value);
  if (!codec) {
    bool stored = done(Result<Loaded<PyValue>>(std::move(l)));
    maybe_drain();
    return stored;
  }
  try {
    // Encoded here, with the GIL: the library's write-through reuses the
    // bytes (PyCodec::encode), and a value L2 cannot take fails the flight.
    l.value.encoded = encode_now(*codec, ns, l.value.obj);
    l.value.has_encoded = true;
  } catch (py::error_already_set& e) {  // every waiter gets the CodecError
    bool taken = done(current_exception_to_status(e, Duration::zero()));
    maybe_drain();
    return taken;
  }
  bool stored;
  {
    ReleaseGil nogil;  // the write-through: SQLite queues it; Redis is a round trip
    stored = done(Result<Loaded<PyValue>>(std::move(l)));
  }
  maybe_drain();
  return stored;
}
bool Completion::fail(py::handle exc) {
  bool taken = done(exception_to_status(exc, negative_ttl));
  maybe_drain();
  return taken;
}

// ---- WaiterState ------------------------------------------------------------------

void WaiterState::on_result(Result<Ref<PyValue>> r) {
  std::unique_lock lock(mu_);
  if (!attached_) {
    result_.emplace(std::move(r));
    return;
  }
  lock.unlock();
  post(std::move(r));
}

std::optional<Result<Ref<PyValue>>> WaiterState::take() {
  std::lock_guard lock(mu_);
  return std::exchange(result_, std::nullopt);
}

void WaiterState::attach(py::handle future, py::handle loop) {
  std::unique_lock lock(mu_);
  if (result_) {
    auto r = std::move(*result_);
    result_.reset();
    lock.unlock();
    deliver_here(future, r);
    return;
  }
  future_ = PyRef(future);
  loop_ = PyRef(loop);
  loop_thread_ = PyThread_get_thread_ident();
  attached_ = true;
}

void WaiterState::deliver_here(py::handle future, Result<Ref<PyValue>>& r) {
  py::handle deliver(g_deliver);
  if (r.ok()) {
    deliver(future, true, (*r)->object());
  } else {
    deliver(future, false, exception_for(r.status()));
  }
}

void WaiterState::post(Result<Ref<PyValue>> r) {
  if (!python_alive()) return;
  py::gil_scoped_acquire gil;
  try {
    if (PyThread_get_thread_ident() == loop_thread_) {
      deliver_here(future_.get(), r);  // the loader's task completed the flight
    } else {
      py::object loop = loop_.get();
      if (loop.attr("is_closed")().cast<bool>()) return;  // the waiter's loop ended: nobody to tell
      py::object value = r.ok() ? (*r)->object() : exception_for(r.status());
      loop.attr("call_soon_threadsafe")(py::handle(g_deliver), future_.get(), r.ok(), value);
    }
  } catch (py::error_already_set& e) {
    e.discard_as_unraisable("callcache: delivering a load result");
  }
  maybe_drain();
}

// ---- Starters -----------------------------------------------------------------------

void AsyncStarter::operator()(LoadCompletion<PyValue> done) const {
  if (!python_alive()) {
    done(Status::shutdown("the Python interpreter is finalizing"));
    return;
  }
  py::gil_scoped_acquire gil;
  try {
    py::handle start(g_start);
    start(loader.get(), context.get(), Completion{done, negative_ttl, codec, ns, keep});
  } catch (py::error_already_set& e) {
    done(current_exception_to_status(e, negative_ttl));
  }
  maybe_drain();
}

Result<Loaded<PyValue>> BlockingLoader::operator()() const {
  if (!python_alive()) return Status::shutdown("the Python interpreter is finalizing");
  py::gil_scoped_acquire gil;
  try {
    Loaded<PyValue> l = to_loaded(fn.get()());
    if (codec) {
      // Encode here, with the GIL: a value the second tier cannot take
      // fails the load with a clear error (TieredCache reuses the bytes).
      l.value.encoded = encode_now(*codec, ns, l.value.obj);
      l.value.has_encoded = true;
    }
    return l;
  } catch (py::error_already_set& e) {
    return current_exception_to_status(e, negative_ttl);
  }
}

}  // namespace callcache::python
