// The _core extension module: registration only, one file per concern.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_errors(py::module_& m);
void register_params(py::module_& m);
void register_tensor(py::module_& m);
void register_context(py::module_& m);
void register_ring(py::module_& m);
void register_cuda(py::module_& m);
void register_backend(py::module_& m);
void register_lintrans(py::module_& m);
void register_linalg(py::module_& m);
void register_boot(py::module_& m);
void register_circuits(py::module_& m);
void register_serialize(py::module_& m);
void register_resident(py::module_& m);
void register_linalg_resident(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "hetensor C++ core: CKKS over RNS polynomials";
  register_errors(m);
  register_params(m);
  register_tensor(m);
  register_context(m);
  register_ring(m);
  register_cuda(m);
  register_backend(m);
  register_lintrans(m);
  register_linalg(m);
  register_boot(m);
  register_circuits(m);
  register_serialize(m);
  register_resident(m);  // after register_context: adds Engine overloads
  register_linalg_resident(m);  // after register_resident: DeviceCiphertext overloads
}
