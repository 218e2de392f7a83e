// Bootstrapping: its primitives (ModRaise, the encapsulation switches, i) and
// the executor that runs a whole planned bootstrap in one call (boot/executor;
// the plan is made in hetensor/boot.py), on host or device-resident ciphertexts.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "boot/encapsulation.hpp"
#include "boot/executor.hpp"
#include "boot/modraise.hpp"
#include "ckks/engine.hpp"
#include "ckks/resident.hpp"
#include "core/error.hpp"

namespace py = pybind11;

namespace {

using Transforms = std::vector<std::shared_ptr<ht::LinearTransform>>;

Transforms transforms_of(const std::vector<std::shared_ptr<const ht::LinearTransform>>& v) {
  Transforms out;
  for (const auto& t : v) out.push_back(std::const_pointer_cast<ht::LinearTransform>(t));
  return out;
}

std::vector<std::shared_ptr<const ht::LinearTransform>> plan_transforms(const Transforms& v) {
  return {v.begin(), v.end()};
}

template <class Ct>
std::vector<Ct> run_many(const ht::BootExecutor& x, ht::Engine& e, const py::list& cts,
                         const std::vector<double>& bounds) {
  std::vector<const Ct*> in;
  for (py::handle c : cts) {
    if (!py::isinstance<Ct>(c))
      throw ht::InvalidArgument("cannot bootstrap many: the ciphertexts must all be host ones or all resident on "
                                "one device; bring them together with .to(device)");
    in.push_back(&c.cast<const Ct&>());
  }
  py::gil_scoped_release rel;
  return x.bootstrap_many(e.tables(), e.keys(), in, bounds);
}

}  // namespace

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

  using ht::BootPlan;
  py::class_<BootPlan>(m, "BootPlan")
      .def(py::init<>())
      .def_readwrite("stc_first", &BootPlan::stc_first)
      .def_readwrite("stc_levels", &BootPlan::stc_levels)
      .def_readwrite("double_angles", &BootPlan::double_angles)
      .def_readwrite("arcsine_degree", &BootPlan::arcsine_degree)
      .def_readwrite("encapsulation", &BootPlan::encapsulation)
      .def_readwrite("input_scale", &BootPlan::input_scale)
      .def_readwrite("headroom", &BootPlan::headroom)
      .def_property("cts", [](const BootPlan& p) { return transforms_of(p.cts); },
                    [](BootPlan& p, const Transforms& v) { p.cts = plan_transforms(v); })
      .def_property("stc", [](const BootPlan& p) { return transforms_of(p.stc); },
                    [](BootPlan& p, const Transforms& v) { p.stc = plan_transforms(v); })
      .def_readwrite("cos_poly", &BootPlan::cos_poly)
      .def_readwrite("even_poly", &BootPlan::even_poly)
      .def_readwrite("even_shift", &BootPlan::even_shift)
      .def_readwrite("even_span", &BootPlan::even_span)
      .def_readwrite("arcsine", &BootPlan::arcsine)
      .def_readwrite("arcsine_half", &BootPlan::arcsine_half)
      .def_readwrite("eval_mod_scale", &BootPlan::eval_mod_scale)
      .def_readwrite("stc_input_scale", &BootPlan::stc_input_scale)
      .def_readwrite("output_level", &BootPlan::output_level)
      .def_readwrite("premultiplier", &BootPlan::premultiplier)
      .def_readwrite("message_ratio", &BootPlan::message_ratio)
      .def_readwrite("noise_bound", &BootPlan::noise_bound);

  m.def("boot_error_bound", &ht::boot_error_bound, py::arg("bound"), py::arg("message_ratio"),
        py::arg("arcsine_degree"), py::arg("noise_bound"));

  using ht::BootExecutor;
  using Release = py::call_guard<py::gil_scoped_release>;
  py::class_<BootExecutor>(m, "BootExecutor")
      .def(py::init<BootPlan>(), py::arg("plan"))
      .def_property_readonly("stc_first", [](const BootExecutor& x) { return x.plan().stc_first; })
      .def_property_readonly("refreshes", &BootExecutor::refreshes)
      .def("error_bound", &BootExecutor::error_bound, py::arg("bound"))
      // Host ciphertexts, or device-resident ones (run over their backend).
      .def("bootstrap", [](const BootExecutor& x, ht::Engine& e, const ht::Ciphertext& ct, double bound,
                           bool real_values) { return x.bootstrap(e.tables(), e.keys(), ct, bound, real_values); },
           py::arg("engine"), py::arg("ct"), py::arg("bound"), py::arg("real_values") = false, Release())
      .def("bootstrap", [](const BootExecutor& x, ht::Engine& e, const ht::DeviceCiphertext& ct, double bound,
                           bool real_values) { return x.bootstrap(e.tables(), e.keys(), ct, bound, real_values); },
           py::arg("engine"), py::arg("ct"), py::arg("bound"), py::arg("real_values") = false, Release())
      .def("bootstrap_pair", [](const BootExecutor& x, ht::Engine& e, const ht::Ciphertext& a, const ht::Ciphertext& b,
                                double bound_a, double bound_b) {
        return x.bootstrap_pair(e.tables(), e.keys(), a, b, bound_a, bound_b);
      }, py::arg("engine"), py::arg("a"), py::arg("b"), py::arg("bound_a"), py::arg("bound_b"), Release())
      .def("bootstrap_pair", [](const BootExecutor& x, ht::Engine& e, const ht::DeviceCiphertext& a,
                                const ht::DeviceCiphertext& b, double bound_a, double bound_b) {
        return x.bootstrap_pair(e.tables(), e.keys(), a, b, bound_a, bound_b);
      }, py::arg("engine"), py::arg("a"), py::arg("b"), py::arg("bound_a"), py::arg("bound_b"), Release())
      .def("bootstrap_many", [](const BootExecutor& x, ht::Engine& e, const py::list& cts,
                                const std::vector<double>& bounds) -> py::object {
        // Pointers to the listed objects' ciphertexts (no copies; the list keeps them alive).
        if (!cts.empty() && py::isinstance<ht::DeviceCiphertext>(cts[0]))
          return py::cast(run_many<ht::DeviceCiphertext>(x, e, cts, bounds));
        return py::cast(run_many<ht::Ciphertext>(x, e, cts, bounds));
      }, py::arg("engine"), py::arg("cts"), py::arg("bounds"));
}
