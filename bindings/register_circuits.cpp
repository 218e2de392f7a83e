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

namespace {
// The counters of PolyEvalStats, each named once: a read-only property and an entry of as_dict.
struct StatsField {
  const char* name;
  int PolyEvalStats::*member;
};
constexpr StatsField kStatsFields[] = {
    {"ct_products", &PolyEvalStats::ct_products}, {"relinearizations", &PolyEvalStats::relinearizations},
    {"rescales", &PolyEvalStats::rescales},       {"scalar_products", &PolyEvalStats::scalar_products},
    {"powers", &PolyEvalStats::powers},           {"baby_step", &PolyEvalStats::baby_step},
    {"levels", &PolyEvalStats::levels},
};
}  // namespace

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
  py::class_<PolyEvalStats> stats(m, "PolyEvalStats");
  for (const StatsField& f : kStatsFields) stats.def_readonly(f.name, f.member);
  stats.def("as_dict", [](const PolyEvalStats& s) {
    py::dict d;
    for (const StatsField& f : kStatsFields) d[f.name] = s.*f.member;
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
