// Bootstrapping primitives (the circuit itself is composed in hetensor/boot.py).
#include <pybind11/pybind11.h>

#include "boot/encapsulation.hpp"
#include "boot/modraise.hpp"
#include "ckks/engine.hpp"

namespace py = pybind11;

void register_boot(py::module_& m) {
  m.def("mod_raise", [](ht::Engine& e, const ht::Ciphertext& ct) { return ht::mod_raise(e.tables(), ct); },
        py::arg("engine"), py::arg("ct"), py::call_guard<py::gil_scoped_release>());
  m.def("generate_encapsulation_keys", [](ht::Engine& e, int h) { e.keys().generate_encapsulation_keys(h); },
        py::arg("engine"), py::arg("hamming_weight"), py::call_guard<py::gil_scoped_release>());
  m.def("switch_to_sparse", [](ht::Engine& e, const ht::Ciphertext& ct) {
    return ht::switch_to_sparse(e.tables(), e.keys(), ct);
  }, py::arg("engine"), py::arg("ct"), py::call_guard<py::gil_scoped_release>());
  m.def("switch_to_dense", [](ht::Engine& e, const ht::Ciphertext& ct) {
    return ht::switch_to_dense(e.tables(), e.keys(), ct);
  }, py::arg("engine"), py::arg("ct"), py::call_guard<py::gil_scoped_release>());
  m.def("mul_by_i", [](ht::Engine& e, const ht::Ciphertext& ct, bool negative) {
    return ht::mul_by_i(e.tables(), ct, negative);
  }, py::arg("engine"), py::arg("ct"), py::arg("negative") = false, py::call_guard<py::gil_scoped_release>());
}
