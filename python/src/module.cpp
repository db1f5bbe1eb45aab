// callcache._native: the extension module under the `callcache` Python
// package. Its users are the package's pure-Python modules; the public API is
// documented there (python/callcache/__init__.py).
#include "bindings.h"
#include "callcache/tenant.h"

namespace py = pybind11;
using namespace callcache;
using namespace callcache::python;

namespace {

TenantKey key_from(py::handle hex) {
  if (hex.is_none()) return kDefaultTenantKey;
  auto k = parse_tenant_key(hex.cast<std::string>());
  check(k.status());
  return *k;
}

std::string_view bytes_view(py::handle s, std::string& scratch) {
  if (PyBytes_Check(s.ptr()))
    return {PyBytes_AS_STRING(s.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(s.ptr()))};
  scratch = s.cast<std::string>();
  return scratch;
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "callcache native core (use the callcache package)";
  m.def("_set_exception_classes", &set_exception_classes);
  m.def("_finalize", [] {
    shutdown_all_engines();
    drain_released();
    python_is_finalizing();
  });
  m.def("_drain", &drain_released);
  m.def(
      "tenant_from_secret",
      [](py::handle secret, py::handle key_hex) {
        std::string scratch;
        return tenant_from_secret(bytes_view(secret, scratch), key_from(key_hex)).value;
      },
      py::arg("secret"), py::arg("key") = py::none());
  m.def("tenant_hex", [](std::uint64_t id) { return to_hex(TenantId{id}); });
  bind_engine(m);
  bind_toolkit(m);
}
