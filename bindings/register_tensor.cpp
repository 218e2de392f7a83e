// Opaque ciphertext and plaintext batches with read-only metadata, and the
// raw residues of a ciphertext: a read-only view [batch][size][limbs][n]
// (hetensor.distributed sums them over ranks, DLPack exports them) and
// `with_limbs`, which copies checked residues into a ciphertext of the same
// metadata.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ckks/ciphertext.hpp"
#include "ckks/evaluator.hpp"
#include "core/error.hpp"

namespace py = pybind11;

namespace {

using U64Array = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>;

std::vector<py::ssize_t> limb_shape(const ht::Ciphertext& c) {
  return {c.batch, c.size, c.limbs(), static_cast<py::ssize_t>(c.n)};
}

// A view of the residues that keeps the Python Ciphertext alive; numpy marks
// it read-only because ciphertexts are values (operations return new ones).
py::array limbs_view(py::object self) {
  const auto& c = self.cast<const ht::Ciphertext&>();
  auto shape = limb_shape(c);
  std::vector<py::ssize_t> strides(4);
  py::ssize_t s = sizeof(std::uint64_t);
  for (int i = 3; i >= 0; --i) { strides[i] = s; s *= shape[i]; }
  py::array_t<std::uint64_t> view(shape, strides, c.data.data(), self);
  py::detail::array_proxy(view.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return view;
}

ht::Ciphertext with_limbs(const ht::Ciphertext& c, const U64Array& limbs, const std::vector<std::uint64_t>& q,
                          double bound) {
  const std::string op = "replace the residues of a ciphertext";
  auto want = limb_shape(c);
  if (limbs.ndim() != 4 || !std::equal(want.begin(), want.end(), limbs.shape()))
    ht::fail(op, "the residues must have the shape [batch, size, limbs, n] = [" + std::to_string(want[0]) + ", " +
                     std::to_string(want[1]) + ", " + std::to_string(want[2]) + ", " + std::to_string(want[3]) + "]");
  if (q.size() < static_cast<std::size_t>(c.limbs()))
    ht::fail(op, "need one prime per limb (" + std::to_string(c.limbs()) + "), got " + std::to_string(q.size()));
  if (!(bound >= 0) || !std::isfinite(bound)) ht::fail(op, "bound must be finite and >= 0");
  ht::Ciphertext out(c.n, c.batch, c.size, c.level, c.scale, c.context_id, false, false);
  out.bound = bound;
  const std::uint64_t* src = limbs.data();
  bool ok = true;
  {
    py::gil_scoped_release release;
    const std::size_t n = c.n;
    for (int b = 0; b < c.batch && ok; ++b)
      for (int k = 0; k < c.size && ok; ++k)
        for (int i = 0; i < c.limbs() && ok; ++i) {
          const std::uint64_t* in = src + ((static_cast<std::size_t>(b) * c.size + k) * c.limbs() + i) * n;
          const std::uint64_t qi = q[i];
          for (std::size_t j = 0; j < n; ++j) ok &= in[j] < qi;
          std::memcpy(out.limb(b, k, i), in, n * sizeof(std::uint64_t));
        }
  }
  if (!ok) ht::fail(op, "every residue of limb i must be below the prime q_i (reduce the sums modulo q first)");
  return out;
}

}  // namespace

void register_tensor(py::module_& m) {
  py::class_<ht::Ciphertext>(m, "Ciphertext")
      .def_property_readonly("level", [](const ht::Ciphertext& c) { return c.level; })
      .def_property_readonly("scale", [](const ht::Ciphertext& c) { return c.scale; })
      .def("with_scale", &ht::with_scale, py::arg("scale"), py::arg("bound"))
      .def_property_readonly("bound", [](const ht::Ciphertext& c) { return c.bound; })
      .def_property_readonly("batch", [](const ht::Ciphertext& c) { return c.batch; })
      .def_property_readonly("size", [](const ht::Ciphertext& c) { return c.size; })
      .def_property_readonly("nbytes", [](const ht::Ciphertext& c) { return c.data.bytes(); })
      .def_property_readonly("context_id", [](const ht::Ciphertext& c) { return c.context_id; })
      .def("copy", [](const ht::Ciphertext& c) { return ht::Ciphertext(c); })
      .def("limbs", &limbs_view)
      .def("with_limbs", &with_limbs, py::arg("limbs"), py::arg("q"), py::arg("bound"));
  py::class_<ht::Plaintext>(m, "Plaintext")
      .def_property_readonly("level", [](const ht::Plaintext& p) { return p.level; })
      .def_property_readonly("scale", [](const ht::Plaintext& p) { return p.scale; })
      .def_property_readonly("batch", [](const ht::Plaintext& p) { return p.batch; })
      .def_property_readonly("nbytes", [](const ht::Plaintext& p) { return p.data.bytes(); })
      .def_property_readonly("context_id", [](const ht::Plaintext& p) { return p.context_id; });
}
