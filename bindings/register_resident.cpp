// Device-resident ciphertexts (ckks/resident): the DeviceCiphertext and
// DevicePlaintext types, upload/download, DLPack export of the residues
// (zero-copy, the capsule keeps the ciphertext alive), and Engine overloads so
// that the Python CipherTensor calls the same Engine methods whichever storage
// its ciphertexts have.
#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <complex>
#include <string>
#include <vector>
#include <utility>

#include "backend/backend.hpp"
#include "ckks/engine.hpp"
#include "ckks/resident.hpp"
#include "circuits/lintrans.hpp"
#include "circuits/polyeval.hpp"
#include "boot/encapsulation.hpp"
#include "boot/modraise.hpp"

#include "rows.hpp"

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

// -- DLPack (the C ABI of dlpack.h, v0.8 unversioned capsules) --------------
struct DLDevice { std::int32_t device_type, device_id; };
struct DLDataType { std::uint8_t code, bits; std::uint16_t lanes; };
struct DLTensor {
  void* data;
  DLDevice device;
  std::int32_t ndim;
  DLDataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;
  std::uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};
constexpr std::int32_t kDLCPU = 1, kDLCUDA = 2;
constexpr std::uint8_t kDLUInt = 1;

// What an export holds: the shape, the strides and a reference to the Python
// DeviceCiphertext, whose backend memory the tensor points into.
struct Export {
  DLManagedTensor tensor;
  std::int64_t shape[4], strides[4];
  PyObject* owner;
};

void delete_export(DLManagedTensor* t) {
  auto* e = static_cast<Export*>(t->manager_ctx);
  PyGILState_STATE g = PyGILState_Ensure();  // consumers may free from any thread
  Py_DECREF(e->owner);
  PyGILState_Release(g);
  delete e;
}

std::pair<std::int32_t, std::int32_t> dl_device(const DeviceCiphertext& c) {
  const ht::backend::Device d = c.data.owner()->device();
  return {d.kind == ht::backend::DeviceKind::cpu ? kDLCPU : kDLCUDA, d.index};
}

py::capsule dlpack_export(py::object self, py::object stream, py::object max_version, py::object device,
                          py::object copy) {
  (void)max_version;  // an unversioned capsule is what every consumer accepts
  const auto& c = self.cast<const DeviceCiphertext&>();
  if (!copy.is_none() && copy.cast<bool>())
    throw py::buffer_error("cannot export the limbs with copy=True: DLPack export here is zero-copy; copy the "
                           "imported tensor instead");
  const auto dev = dl_device(c);
  if (!device.is_none()) {
    const auto want = device.cast<std::pair<int, int>>();
    if (want.first != dev.first || want.second != dev.second)
      throw py::buffer_error("the limbs live on " + c.device() + "; move the tensor with .to(device) first");
  }
  (void)stream;
  // Stream-ordered work on the residues ends before the consumer reads them.
  {
    py::gil_scoped_release rel;
    c.data.owner()->synchronize();
  }
  auto* e = new Export{};
  const std::int64_t shape[4] = {c.batch, c.size, c.limbs(), static_cast<std::int64_t>(c.n)};
  std::int64_t stride = 1;
  for (int i = 3; i >= 0; --i) {
    e->shape[i] = shape[i];
    e->strides[i] = stride;  // in elements
    stride *= shape[i];
  }
  e->owner = self.inc_ref().ptr();
  DLTensor& t = e->tensor.dl_tensor;
  t.data = const_cast<ht::u64*>(c.data.data());
  t.device = DLDevice{dev.first, dev.second};
  t.ndim = 4;
  t.dtype = DLDataType{kDLUInt, 64, 1};
  t.shape = e->shape;
  t.strides = e->strides;
  t.byte_offset = 0;
  e->tensor.manager_ctx = e;
  e->tensor.deleter = &delete_export;
  // A capsule nobody consumed (still named "dltensor") frees the export itself.
  PyObject* cap = PyCapsule_New(&e->tensor, "dltensor", [](PyObject* capsule) {
    if (PyCapsule_IsValid(capsule, "dltensor")) {
      auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
      m->deleter(m);
    }
  });
  if (cap == nullptr) {
    delete_export(&e->tensor);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(cap);
}

// A read-only numpy view of residues in host-accessible backend memory,
// keeping the DeviceCiphertext alive (as Ciphertext.limbs()).
py::array host_limbs(py::object self) {
  const auto& c = self.cast<const DeviceCiphertext&>();
  if (c.data.owner()->device().kind != ht::backend::DeviceKind::cpu)
    throw py::type_error("the limbs of a ciphertext on " + c.device() + " are in device memory: export them with "
                         "torch.from_dlpack(x.limbs()) on a CipherTensor, or bring them back with x.to('cpu')");
  const std::vector<py::ssize_t> shape{c.batch, c.size, c.limbs(), static_cast<py::ssize_t>(c.n)};
  std::vector<py::ssize_t> strides(4);
  py::ssize_t s = sizeof(ht::u64);
  for (int i = 3; i >= 0; --i) { strides[i] = s; s *= shape[i]; }
  py::array_t<std::uint64_t> view(shape, strides, c.data.data(), self);
  py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return view;
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
      .def("limbs", &host_limbs)
      .def("__dlpack__", &dlpack_export, py::kw_only(), py::arg("stream") = py::none(),
           py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(), py::arg("copy") = py::none())
      .def("__dlpack_device__", [](const DeviceCiphertext& c) { return dl_device(c); });
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

  // Bootstrapping's steps (boot/): ModRaise, the encapsulation switches, i.
  m.def("mod_raise", [](Engine& e, const DeviceCiphertext& ct) { return ht::resident::mod_raise(e.tables(), ct); },
        py::arg("engine"), py::arg("ct"), Release());
  m.def("switch_to_sparse", [](Engine& e, const DeviceCiphertext& ct) {
    return ht::resident::switch_to_sparse(e.tables(), e.keys(), ct);
  }, py::arg("engine"), py::arg("ct"), Release());
  m.def("switch_to_dense", [](Engine& e, const DeviceCiphertext& ct) {
    return ht::resident::switch_to_dense(e.tables(), e.keys(), ct);
  }, py::arg("engine"), py::arg("ct"), Release());
  m.def("mul_by_i", [](Engine& e, const DeviceCiphertext& ct, bool negative) {
    return ht::resident::mul_by_i(e.tables(), ct, negative);
  }, py::arg("engine"), py::arg("ct"), py::arg("negative") = false, Release());
  // Polynomials (circuits/polyeval): the host's plan, run with backend calls.
  m.def("eval_chebyshev", [](Engine& e, const DeviceCiphertext& ct, const ht::ChebyshevPoly& p, double out_scale) {
    ht::PolyEvalStats st;
    DeviceCiphertext out;
    {
      py::gil_scoped_release rel;
      out = ht::resident::eval_chebyshev_at_scale(e.tables(), e.keys(), ct, p, out_scale, &st);
    }
    return py::make_tuple(std::move(out), st);
  }, py::arg("engine"), py::arg("ct"), py::arg("poly"), py::arg("out_scale") = 0.0);
  m.def("eval_power", [](Engine& e, const DeviceCiphertext& ct, const std::vector<double>& coeffs) {
    ht::PolyEvalStats st;
    DeviceCiphertext out;
    {
      py::gil_scoped_release rel;
      out = ht::resident::eval_power(e.tables(), e.keys(), ct, coeffs, &st);
    }
    return py::make_tuple(std::move(out), st);
  }, py::arg("engine"), py::arg("ct"), py::arg("power_coeffs"));
  // Linear transforms (circuits/lintrans): the diagonals uploaded once per device.
  m.def("apply_linear_transform", [](ht::Engine& e, const DeviceCiphertext& ct, const ht::LinearTransform& lt) {
    return ht::resident::apply_linear_transform(e.tables(), e.keys(), ct, lt);
  }, py::arg("engine"), py::arg("ct"), py::arg("transform"), Release());

  py::object cls = m.attr("Engine");
  cls.attr("device_key_bytes") = py::cpp_function([](const Engine& e) { return e.keys().device_key_bytes(); },
                                                   py::name("device_key_bytes"), py::is_method(cls));
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

  // Key switching, with the keys uploaded once per device (KeyChain::device_key).
  overload(cls, "multiply", [](Engine& e, const DeviceCiphertext& a, const DeviceCiphertext& b) {
    return r::multiply(e.tables(), e.keys(), a, b);
  }, Release());
  overload(cls, "square", [](Engine& e, const DeviceCiphertext& a) { return r::square(e.tables(), e.keys(), a); },
           Release());
  overload(cls, "relinearize", [](Engine& e, const DeviceCiphertext& a) {
    return r::relinearize(e.tables(), e.keys(), a);
  }, Release());
  overload(cls, "rotate", [](Engine& e, const DeviceCiphertext& a, long step) {
    return r::rotate(e.tables(), e.keys(), a, step);
  }, Release());
  overload(cls, "rotate_hoisted", [](Engine& e, const DeviceCiphertext& a, const std::vector<long>& steps) {
    return r::rotate_hoisted(e.tables(), e.keys(), a, steps);
  }, Release());
  overload(cls, "conjugate", [](Engine& e, const DeviceCiphertext& a) { return r::conjugate(e.tables(), e.keys(), a); },
           Release());
  // Plaintext and scalar operands: encoded on the host, uploaded as constants.
  overload(cls, "add_plain", [](const Engine& e, const DeviceCiphertext& a, const DevicePlaintext& p, bool subtract,
                                bool reverse) {
    return r::add_plain(e.tables(), a, p, subtract && !reverse, reverse);
  }, py::arg("a"), py::arg("plain"), py::arg("subtract") = false, py::arg("reverse") = false, Release());
  overload(cls, "add_plain", [](const Engine& e, const DeviceCiphertext& a, const ht::Plaintext& p, bool subtract,
                                bool reverse) {
    return r::add_plain(e.tables(), a, r::upload(p, a.backend()), subtract && !reverse, reverse);
  }, py::arg("a"), py::arg("plain"), py::arg("subtract") = false, py::arg("reverse") = false, Release());
  overload(cls, "add_values", [](const Engine& e, const DeviceCiphertext& a, const CArray& v, bool subtract,
                                 bool reverse) {
    Rows rows = rows_of(v);
    py::gil_scoped_release rel;
    const ht::Plaintext p = e.plain_for_add(a.context_id, a.level, a.scale, rows.values.data(), rows.rows, rows.count);
    return r::add_plain(e.tables(), a, r::upload(p, a.backend()), subtract && !reverse, reverse);
  }, py::arg("a"), py::arg("values"), py::arg("subtract") = false, py::arg("reverse") = false);
  overload(cls, "mul_values", [](const Engine& e, const DeviceCiphertext& a, const CArray& v) {
    Rows rows = rows_of(v);
    py::gil_scoped_release rel;
    const ht::Plaintext p = e.plain_for_mul(a.context_id, a.level, rows.values.data(), rows.rows, rows.count);
    return r::mul_plain(e.tables(), a, r::upload(p, a.backend()));
  });
  overload(cls, "add_scalar", [](const Engine& e, const DeviceCiphertext& a, double c) {
    return r::add_scalar(e.tables(), a, c);
  }, Release());
  overload(cls, "mul_scalar", [](const Engine& e, const DeviceCiphertext& a, double c) {
    return r::mul_scalar(e.tables(), a, c);
  }, Release());
}
