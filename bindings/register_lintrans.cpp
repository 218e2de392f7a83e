// Diagonal linear transforms on slot vectors (BSGS, hoisted rotations).
#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>

#include "ckks/engine.hpp"
#include "circuits/lintrans.hpp"
#include "core/error.hpp"

namespace py = pybind11;
using CArray = py::array_t<std::complex<double>, py::array::c_style | py::array::forcecast>;

void register_lintrans(py::module_& m) {
  // Held by shared_ptr: a bootstrap plan (boot/executor) shares the encoded diagonals with Python.
  py::class_<ht::LinearTransform, std::shared_ptr<ht::LinearTransform>>(m, "LinearTransform")
      .def_readonly("level", &ht::LinearTransform::level)
      .def_readonly("extended", &ht::LinearTransform::extended)
      .def_readonly("n1", &ht::LinearTransform::n1)
      .def_readonly("norm_inf", &ht::LinearTransform::norm_inf)
      .def_readonly("babies", &ht::LinearTransform::babies)
      .def_readonly("giants", &ht::LinearTransform::giants)
      .def_property_readonly("diagonals", &ht::LinearTransform::diagonals)
      .def_property_readonly("device_bytes", &ht::LinearTransform::device_bytes)
      .def("rotation_steps", &ht::LinearTransform::rotation_steps);
  m.def("encode_linear_transform", [](ht::Engine& e, const py::dict& diagonals, int level, long n1, double input_scale,
                                      bool extended) {
    std::map<long, std::vector<std::complex<double>>> diags;
    for (auto item : diagonals) {
      const long step = py::cast<long>(item.first);
      CArray arr = py::cast<CArray>(item.second);
      if (arr.ndim() != 1) throw ht::InvalidArgument("each diagonal must be a 1-D array of slot values");
      diags[step].assign(arr.data(), arr.data() + arr.size());
    }
    py::gil_scoped_release r;
    return ht::encode_linear_transform(e.encoder(), diags, level, n1, input_scale, extended);
  }, py::arg("engine"), py::arg("diagonals"), py::arg("level"), py::arg("n1") = 0, py::arg("input_scale") = 0.0,
     py::arg("extended") = true);
  m.def("apply_linear_transform", [](ht::Engine& e, const ht::Ciphertext& ct, const ht::LinearTransform& lt) {
    return ht::apply_linear_transform(e.tables(), e.keys(), ct, lt);
  }, py::arg("engine"), py::arg("ct"), py::arg("transform"), py::call_guard<py::gil_scoped_release>());
}
