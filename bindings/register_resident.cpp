// Device-resident ciphertexts (ckks/resident): the DeviceCiphertext and
// DevicePlaintext types, upload/download, and Engine overloads so that the
// Python CipherTensor calls the same Engine methods whichever storage its
// ciphertexts have. Operations that run on host ciphertexts only raise
// NotImplementedError saying how to bring the data back.
#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <complex>
#include <string>
#include <vector>
#include <utility>

#include "backend/backend.hpp"
#include "ckks/engine.hpp"
#include "ckks/resident.hpp"

namespace py = pybind11;
using ht::DeviceCiphertext;
using ht::DevicePlaintext;
using ht::Engine;

namespace {

using Release = py::call_guard<py::gil_scoped_release>;

// Adds `f` to the overloads of Engine.name (tried after the host ones).
template <class F, class... Extra>
void overload(py::object& cls, const char* name, F&& f, const Extra&... extra) {
  cls.attr(name) = py::cpp_function(std::forward<F>(f), py::name(name), py::is_method(cls),
                                    py::sibling(py::getattr(cls, name, py::none())), extra...);
}

py::array_t<std::complex<double>> slots_array(const Engine& e, int batch, const std::vector<std::complex<double>>& v) {
  py::array_t<std::complex<double>> arr({static_cast<py::ssize_t>(batch), static_cast<py::ssize_t>(e.tables().slots())});
  std::copy(v.begin(), v.end(), arr.mutable_data());
  return arr;
}

[[noreturn]] void unsupported(const std::string& op, const DeviceCiphertext& ct) {
  PyErr_SetString(PyExc_NotImplementedError, ht::resident::unsupported_message(op, ct.device()).c_str());
  throw py::error_already_set();
}

}  // namespace

void register_resident(py::module_& m) {
  py::class_<DeviceCiphertext>(m, "DeviceCiphertext")
      .def_property_readonly("level", [](const DeviceCiphertext& c) { return c.level; })
      .def_property_readonly("scale", [](const DeviceCiphertext& c) { return c.scale; })
      .def_property_readonly("bound", [](const DeviceCiphertext& c) { return c.bound; })
      .def_property_readonly("batch", [](const DeviceCiphertext& c) { return c.batch; })
      .def_property_readonly("size", [](const DeviceCiphertext& c) { return c.size; })
      .def_property_readonly("nbytes", [](const DeviceCiphertext& c) { return c.words() * sizeof(ht::u64); })
      .def_property_readonly("context_id", [](const DeviceCiphertext& c) { return c.context_id; })
      .def_property_readonly("device", &DeviceCiphertext::device)
      .def("copy", &ht::resident::copy, Release())
      .def("with_scale", [](const DeviceCiphertext& c, double scale, double bound) {
        // Metadata only, as Ciphertext.with_scale (same checks).
        ht::Ciphertext probe;
        (void)ht::with_scale(probe, scale, bound);
        DeviceCiphertext out = ht::resident::copy(c);
        out.scale = scale;
        out.bound = bound;
        return out;
      }, py::arg("scale"), py::arg("bound"))
      .def("limbs", [](const DeviceCiphertext& c) -> py::object {
        unsupported("export the limbs of", c);
      });
  py::class_<DevicePlaintext>(m, "DevicePlaintext")
      .def_property_readonly("level", [](const DevicePlaintext& p) { return p.level; })
      .def_property_readonly("scale", [](const DevicePlaintext& p) { return p.scale; })
      .def_property_readonly("batch", [](const DevicePlaintext& p) { return p.batch; })
      .def_property_readonly("device", &DevicePlaintext::device);

  m.def("device_upload", [](const ht::Ciphertext& ct, const std::string& device) {
    ht::backend::Backend& be = ht::backend::for_device(ht::backend::parse_device(device));
    py::gil_scoped_release rel;
    return ht::resident::upload(ct, be);
  }, py::arg("ct"), py::arg("device"));
  m.def("device_upload", [](const ht::Plaintext& pt, const std::string& device) {
    ht::backend::Backend& be = ht::backend::for_device(ht::backend::parse_device(device));
    py::gil_scoped_release rel;
    return ht::resident::upload(pt, be);
  }, py::arg("ct"), py::arg("device"));
  m.def("device_download", &ht::resident::download, py::arg("ct"), Release());

  py::object cls = m.attr("Engine");
  namespace r = ht::resident;
  overload(cls, "add", [](const Engine& e, const DeviceCiphertext& a, const DeviceCiphertext& b) {
    return r::add(e.tables(), a, b);
  }, Release());
  overload(cls, "sub", [](const Engine& e, const DeviceCiphertext& a, const DeviceCiphertext& b) {
    return r::sub(e.tables(), a, b);
  }, Release());
  overload(cls, "negate", [](const Engine& e, const DeviceCiphertext& a) { return r::negate(e.tables(), a); },
           Release());
  overload(cls, "mul_plain", [](const Engine& e, const DeviceCiphertext& a, const DevicePlaintext& p) {
    return r::mul_plain(e.tables(), a, p);
  }, Release());
  // A host plaintext (an encoded weight) is uploaded for the product: a copy of a constant, not of the data.
  overload(cls, "mul_plain", [](const Engine& e, const DeviceCiphertext& a, const ht::Plaintext& p) {
    return r::mul_plain(e.tables(), a, r::upload(p, a.backend()));
  }, Release());
  overload(cls, "multiply_no_relin", [](const Engine& e, const DeviceCiphertext& a, const DeviceCiphertext& b) {
    return r::multiply_no_relin(e.tables(), a, b);
  }, Release());
  overload(cls, "rescale", [](const Engine& e, const DeviceCiphertext& a) { return r::rescale(e.tables(), a); },
           Release());
  overload(cls, "level_to", [](const Engine& e, const DeviceCiphertext& a, int level) {
    return r::level_to(e.tables(), a, level);
  }, Release());
  // Decryption is one of the two places where residues cross to the host.
  overload(cls, "decrypt", [](const Engine& e, const DeviceCiphertext& ct) {
    std::vector<std::complex<double>> out;
    {
      py::gil_scoped_release rel;
      out = e.decrypt(r::download(ct));
    }
    return slots_array(e, ct.batch, out);
  });
  overload(cls, "decrypt_flooded", [](Engine& e, const DeviceCiphertext& ct, double flood_sigma) {
    std::vector<std::complex<double>> out;
    {
      py::gil_scoped_release rel;
      out = e.decrypt_flooded(r::download(ct), flood_sigma);
    }
    return slots_array(e, ct.batch, out);
  }, py::arg("ct"), py::arg("flood_sigma"));

  // Host-only operations: a clear error instead of pybind's "incompatible arguments".
  overload(cls, "multiply", [](const Engine&, const DeviceCiphertext& a, py::object) { unsupported("multiply (relinearize)", a); });
  overload(cls, "square", [](const Engine&, const DeviceCiphertext& a) { unsupported("square (relinearize)", a); });
  overload(cls, "relinearize", [](const Engine&, const DeviceCiphertext& a) { unsupported("relinearize", a); });
  overload(cls, "rotate", [](const Engine&, const DeviceCiphertext& a, py::object) { unsupported("rotate", a); });
  overload(cls, "rotate_hoisted", [](const Engine&, const DeviceCiphertext& a, py::object) { unsupported("rotate", a); });
  overload(cls, "conjugate", [](const Engine&, const DeviceCiphertext& a) { unsupported("conjugate", a); });
  overload(cls, "add_plain", [](const Engine&, const DeviceCiphertext& a, py::object, bool, bool) {
    unsupported("add a plaintext to", a);
  }, py::arg("a"), py::arg("plain"), py::arg("subtract") = false, py::arg("reverse") = false);
  overload(cls, "add_values", [](const Engine&, const DeviceCiphertext& a, py::object, bool, bool) {
    unsupported("add values to", a);
  }, py::arg("a"), py::arg("values"), py::arg("subtract") = false, py::arg("reverse") = false);
  overload(cls, "mul_values", [](const Engine&, const DeviceCiphertext& a, py::object) { unsupported("multiply values with", a); });
  overload(cls, "add_scalar", [](const Engine&, const DeviceCiphertext& a, double) { unsupported("add a scalar to", a); });
  overload(cls, "mul_scalar", [](const Engine&, const DeviceCiphertext& a, double) { unsupported("multiply a scalar with", a); });
}
