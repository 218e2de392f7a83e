// CUDA backend entry points. `cuda_compiled` says whether the backend was
// built in; cuda_available() whether a usable GPU is present. The cuda_*
// array functions run one batch on the GPU with the shared kernel bodies so
// tests can compare against the CPU launcher bit for bit. Without the backend
// they raise RuntimeError saying how to rebuild.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#ifdef HETENSOR_WITH_CUDA
#include "core/error.hpp"
#include "core/galois.hpp"
#include "core/numth.hpp"
#include "core/ntt_tables.hpp"
#include "cuda_api.hpp"
#endif

namespace py = pybind11;
using U64Array = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>;

namespace {

#ifdef HETENSOR_WITH_CUDA
// Shape [limbs][n] with n a power of two and one prime per limb; residues < q.
void check_residues(const char* op, const U64Array& a, const std::vector<ht::u64>& primes) {
  if (a.ndim() != 2) ht::fail(op, "expected a 2-D array [limbs][n] of residues");
  const auto limbs = static_cast<std::size_t>(a.shape(0));
  const auto n = static_cast<ht::u64>(a.shape(1));
  if (primes.size() != limbs)
    ht::fail(op, "got " + std::to_string(primes.size()) + " primes for " + std::to_string(limbs) + " limbs");
  if (n < 2 || (n & (n - 1)) != 0) ht::fail(op, "n must be a power of two >= 2, got " + std::to_string(n));
  const ht::u64* p = a.data();
  for (std::size_t i = 0; i < limbs; ++i)
    for (ht::u64 k = 0; k < n; ++k)
      if (p[i * n + k] >= primes[i]) ht::fail(op, "residues of limb " + std::to_string(i) + " must be < q");
}

U64Array copy_of(const U64Array& a) {
  U64Array out(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
  std::copy(a.data(), a.data() + a.size(), out.mutable_data());
  return out;
}

U64Array ntt(const U64Array& a, const std::vector<ht::u64>& primes, bool inverse) {
  const char* op = inverse ? "cuda_ntt_inverse" : "cuda_ntt_forward";
  check_residues(op, a, primes);
  const auto n = static_cast<ht::u64>(a.shape(1));
  std::vector<ht::NttTables> tables;
  tables.reserve(primes.size());
  for (ht::u64 q : primes) tables.emplace_back(q, n);
  U64Array out = copy_of(a);
  ht::u64* data = out.mutable_data();
  {
    py::gil_scoped_release release;
    if (inverse) ht::cuda::ntt_inverse(data, tables.data(), tables.size());
    else ht::cuda::ntt_forward(data, tables.data(), tables.size());
  }
  return out;
}

U64Array elementwise(const std::string& op, const U64Array& a, const U64Array& b, const std::vector<ht::u64>& primes) {
  ht::cuda::ElementwiseOp kind;
  if (op == "add") kind = ht::cuda::ElementwiseOp::add;
  else if (op == "sub") kind = ht::cuda::ElementwiseOp::sub;
  else if (op == "mul") kind = ht::cuda::ElementwiseOp::mul;
  else ht::fail("cuda_elementwise", "op must be 'add', 'sub' or 'mul', got '" + op + "'");
  check_residues("cuda_elementwise", a, primes);
  check_residues("cuda_elementwise", b, primes);
  if (a.shape(1) != b.shape(1)) ht::fail("cuda_elementwise", "a and b must have the same shape");
  std::vector<ht::Modulus> moduli;
  moduli.reserve(primes.size());
  for (ht::u64 q : primes) moduli.push_back(ht::make_modulus(q));
  U64Array out(std::vector<py::ssize_t>{a.shape(0), a.shape(1)});
  const ht::u64 *pa = a.data(), *pb = b.data();
  ht::u64* po = out.mutable_data();
  const auto n = static_cast<ht::u64>(a.shape(1));
  {
    py::gil_scoped_release release;
    ht::cuda::elementwise(kind, po, pa, pb, moduli.data(), moduli.size(), n);
  }
  return out;
}

U64Array automorphism(const U64Array& a, ht::u64 galois_elt) {
  if (a.ndim() != 2) ht::fail("cuda_automorphism", "expected a 2-D array [limbs][n]");
  const auto n = static_cast<ht::u64>(a.shape(1));
  if (n < 2 || (n & (n - 1)) != 0) ht::fail("cuda_automorphism", "n must be a power of two >= 2");
  if (galois_elt % 2 == 0 || galois_elt >= 2 * n)
    ht::fail("cuda_automorphism", "galois_elt must be odd and < 2n, got " + std::to_string(galois_elt));
  const std::vector<ht::u32> perm = ht::galois_permutation_ntt(galois_elt, n);
  U64Array out(std::vector<py::ssize_t>{a.shape(0), a.shape(1)});
  const ht::u64* pa = a.data();
  ht::u64* po = out.mutable_data();
  const auto limbs = static_cast<std::size_t>(a.shape(0));
  {
    py::gil_scoped_release release;
    ht::cuda::automorphism_ntt(po, pa, perm.data(), limbs, n);
  }
  return out;
}
#else
[[noreturn]] void not_built() {
  throw std::runtime_error(
      "hetensor was built without the CUDA backend; reinstall with -C cmake.define.HETENSOR_CUDA=ON");
}
#endif

}  // namespace

void register_cuda(py::module_& m) {
#ifdef HETENSOR_WITH_CUDA
  // Devices named "cuda:N" (contexts, CipherTensor.to, backend_*) get their backend from here.
  ht::backend::set_factory(ht::backend::DeviceKind::cuda, &ht::cuda::make_backend);
  m.attr("cuda_compiled") = true;
  m.def("cuda_available", []() { return ht::cuda::available(); });
  m.def("cuda_device_count", []() { return ht::cuda::device_count(); });
  m.def("cuda_device_name", [](int device) { return ht::cuda::device_name(device); }, py::arg("device") = 0);
  m.def("cuda_ntt_forward", [](const U64Array& a, const std::vector<ht::u64>& primes) { return ntt(a, primes, false); },
        py::arg("a"), py::arg("primes"));
  m.def("cuda_ntt_inverse", [](const U64Array& a, const std::vector<ht::u64>& primes) { return ntt(a, primes, true); },
        py::arg("a"), py::arg("primes"));
  m.def("cuda_elementwise", &elementwise, py::arg("op"), py::arg("a"), py::arg("b"), py::arg("primes"));
  m.def("cuda_automorphism", &automorphism, py::arg("a"), py::arg("galois_elt"));
#else
  m.attr("cuda_compiled") = false;
  m.def("cuda_available", []() { return false; });
  m.def("cuda_device_count", []() { return 0; });
  m.def("cuda_device_name", [](int) -> std::string { not_built(); }, py::arg("device") = 0);
  m.def("cuda_ntt_forward", [](const py::object&, const py::object&) -> py::object { not_built(); },
        py::arg("a"), py::arg("primes"));
  m.def("cuda_ntt_inverse", [](const py::object&, const py::object&) -> py::object { not_built(); },
        py::arg("a"), py::arg("primes"));
  m.def("cuda_elementwise",
        [](const py::object&, const py::object&, const py::object&, const py::object&) -> py::object { not_built(); },
        py::arg("op"), py::arg("a"), py::arg("b"), py::arg("primes"));
  m.def("cuda_automorphism", [](const py::object&, const py::object&) -> py::object { not_built(); },
        py::arg("a"), py::arg("galois_elt"));
#endif
}
