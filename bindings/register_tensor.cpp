// Opaque ciphertext and plaintext batches with read-only metadata.
#include <pybind11/pybind11.h>

#include <cmath>

#include "ckks/ciphertext.hpp"
#include "core/error.hpp"

namespace py = pybind11;

void register_tensor(py::module_& m) {
  py::class_<ht::Ciphertext>(m, "Ciphertext")
      .def_property_readonly("level", [](const ht::Ciphertext& c) { return c.level; })
      .def_property_readonly("scale", [](const ht::Ciphertext& c) { return c.scale; })
      .def("with_scale", [](const ht::Ciphertext& c, double scale, double bound) {
        // The same polynomials read at another scale (values multiply by
        // old/new): free rescaling of the values for circuits such as
        // bootstrapping. `bound` is the new value bound.
        if (!(scale > 0) || !std::isfinite(scale)) throw ht::InvalidArgument("scale must be positive and finite");
        ht::Ciphertext out = c;
        out.scale = scale;
        out.bound = bound;
        return out;
      }, py::arg("scale"), py::arg("bound"))
      .def_property_readonly("bound", [](const ht::Ciphertext& c) { return c.bound; })
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
