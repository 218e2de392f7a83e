// Opaque ciphertext and plaintext batches with read-only metadata.
#include <pybind11/pybind11.h>

#include "ckks/ciphertext.hpp"

namespace py = pybind11;

void register_tensor(py::module_& m) {
  py::class_<ht::Ciphertext>(m, "Ciphertext")
      .def_property_readonly("level", [](const ht::Ciphertext& c) { return c.level; })
      .def_property_readonly("scale", [](const ht::Ciphertext& c) { return c.scale; })
      .def_property_readonly("batch", [](const ht::Ciphertext& c) { return c.batch; })
      .def_property_readonly("size", [](const ht::Ciphertext& c) { return c.size; })
      .def_property_readonly("nbytes", [](const ht::Ciphertext& c) { return c.data.bytes(); })
      .def_property_readonly("context_id", [](const ht::Ciphertext& c) { return c.context_id; })
      .def("copy", [](const ht::Ciphertext& c) { return ht::Ciphertext(c); });
  py::class_<ht::Plaintext>(m, "Plaintext")
      .def_property_readonly("level", [](const ht::Plaintext& p) { return p.level; })
      .def_property_readonly("scale", [](const ht::Plaintext& p) { return p.scale; })
      .def_property_readonly("batch", [](const ht::Plaintext& p) { return p.batch; })
      .def_property_readonly("nbytes", [](const ht::Plaintext& p) { return p.data.bytes(); })
      .def_property_readonly("context_id", [](const ht::Plaintext& p) { return p.context_id; });
}
