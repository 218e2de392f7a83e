// Polynomial evaluation: Chebyshev polynomials and their homomorphic evaluation.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sstream>

#include "ckks/engine.hpp"
#include "circuits/chebyshev.hpp"
#include "circuits/polyeval.hpp"

namespace py = pybind11;
using ht::ChebyshevPoly;
using ht::PolyEvalStats;

void register_circuits(py::module_& m) {
  py::class_<ChebyshevPoly>(m, "ChebyshevPoly")
      .def(py::init([](double a, double b, std::vector<double> coeffs) {
             ChebyshevPoly p;
             p.a = a;
             p.b = b;
             p.coeffs = std::move(coeffs);
             return p;
           }),
           py::arg("a"), py::arg("b"), py::arg("coeffs"))
      .def_readwrite("a", &ChebyshevPoly::a)
      .def_readwrite("b", &ChebyshevPoly::b)
      .def_readwrite("coeffs", &ChebyshevPoly::coeffs)
      .def_property_readonly("degree", &ChebyshevPoly::degree)
      .def_property_readonly("depth", &ChebyshevPoly::depth)
      .def("eval", &ChebyshevPoly::eval)
      .def("__repr__", [](const ChebyshevPoly& p) {
        std::ostringstream os;
        os << "ChebyshevPoly(degree=" << p.degree() << ", interval=[" << p.a << ", " << p.b << "])";
        return os.str();
      });
  py::class_<PolyEvalStats>(m, "PolyEvalStats")
      .def_readonly("ct_products", &PolyEvalStats::ct_products)
      .def_readonly("relinearizations", &PolyEvalStats::relinearizations)
      .def_readonly("rescales", &PolyEvalStats::rescales)
      .def_readonly("scalar_products", &PolyEvalStats::scalar_products)
      .def_readonly("powers", &PolyEvalStats::powers)
      .def_readonly("baby_step", &PolyEvalStats::baby_step)
      .def_readonly("levels", &PolyEvalStats::levels)
      .def("as_dict", [](const PolyEvalStats& s) {
        py::dict d;
        d["ct_products"] = s.ct_products;
        d["relinearizations"] = s.relinearizations;
        d["rescales"] = s.rescales;
        d["scalar_products"] = s.scalar_products;
        d["powers"] = s.powers;
        d["baby_step"] = s.baby_step;
        d["levels"] = s.levels;
        return d;
      });
  m.def("chebyshev_interpolate", &ht::chebyshev_interpolate, py::arg("f"), py::arg("a"), py::arg("b"),
        py::arg("degree"));
  m.def("chebyshev_from_power", &ht::chebyshev_from_power, py::arg("power_coeffs"));
  m.def("chebyshev_depth", &ht::chebyshev_depth, py::arg("degree"));
  m.def("chebyshev_affine_is_free", &ht::chebyshev_affine_is_free, py::arg("a"), py::arg("b"));
  m.def("chebyshev_eval_depth", &ht::chebyshev_eval_depth, py::arg("a"), py::arg("b"), py::arg("degree"));
  m.def("eval_chebyshev", [](ht::Engine& e, const ht::Ciphertext& ct, const ChebyshevPoly& p, double out_scale) {
    PolyEvalStats st;
    ht::Ciphertext out;
    {
      py::gil_scoped_release r;
      out = ht::eval_chebyshev_at_scale(e.tables(), e.keys(), ct, p, out_scale, &st);
    }
    return py::make_tuple(std::move(out), st);
  }, py::arg("engine"), py::arg("ct"), py::arg("poly"), py::arg("out_scale") = 0.0);
  m.def("eval_power", [](ht::Engine& e, const ht::Ciphertext& ct, const std::vector<double>& coeffs) {
    PolyEvalStats st;
    ht::Ciphertext out;
    {
      py::gil_scoped_release r;
      out = ht::eval_power(e.tables(), e.keys(), ct, coeffs, &st);
    }
    return py::make_tuple(std::move(out), st);
  }, py::arg("engine"), py::arg("ct"), py::arg("power_coeffs"));
}
