// Parameter literals and presets.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "ckks/params.hpp"
#include "ckks/presets.hpp"
#include "ckks/security.hpp"

namespace py = pybind11;

void register_params(py::module_& m) {
  py::class_<ht::ParamsLiteral>(m, "ParamsLiteral")
      .def(py::init<>())
      .def_readwrite("name", &ht::ParamsLiteral::name)
      .def_readwrite("log_n", &ht::ParamsLiteral::log_n)
      .def_readwrite("first_prime_bits", &ht::ParamsLiteral::first_prime_bits)
      .def_readwrite("scale_bits", &ht::ParamsLiteral::scale_bits)
      .def_readwrite("levels", &ht::ParamsLiteral::levels)
      .def_readwrite("level_bits", &ht::ParamsLiteral::level_bits)
      .def_readwrite("special_prime_bits", &ht::ParamsLiteral::special_prime_bits)
      .def_readwrite("special_primes", &ht::ParamsLiteral::special_primes)
      .def_readwrite("dnum", &ht::ParamsLiteral::dnum)
      .def_readwrite("hamming_weight", &ht::ParamsLiteral::hamming_weight)
      .def_readwrite("sigma", &ht::ParamsLiteral::sigma)
      .def_readwrite("allow_insecure", &ht::ParamsLiteral::allow_insecure);
  m.def("preset_names", &ht::preset_names);
  m.def("preset_literal", &ht::preset_literal, py::arg("name"));
  m.def("he_standard_max_log_qp", &ht::he_standard_max_log_qp, py::arg("log_n"));
}
