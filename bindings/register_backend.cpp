// The backend seam from Python, for tests and the GPU benchmark: each
// backend_* function uploads numpy arrays to the device of a backend ("cpu"
// or "cuda:N"), runs one backend op, and downloads the result, so tests can
// compare the CPU backend with exact references and the CUDA backend with
// the CPU backend bit for bit. Not a user API (hetensor.cuda wraps the
// queries). Residues are checked below their primes before any upload.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cpu_switch.hpp"
#include "core/error.hpp"
#include "core/galois.hpp"
#include "core/numth.hpp"
#include "core/ntt_tables.hpp"
#include "core/rns.hpp"
#ifdef HETENSOR_WITH_CUDA
#include "cuda_api.hpp"
#endif

namespace py = pybind11;
using ht::u64;
using U64Array = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>;

namespace {

ht::backend::Backend& backend_for(const std::string& device) {
  return ht::backend::for_device(ht::backend::parse_device(device));
}

// [limbs][n] residues, one prime per limb, n a power of two >= 4.
void check(const char* op, const U64Array& a, const std::vector<u64>& primes) {
  if (a.ndim() != 2) ht::fail(op, "expected a 2-D array [limbs][n]");
  const auto limbs = static_cast<std::size_t>(a.shape(0));
  const auto n = static_cast<u64>(a.shape(1));
  if (primes.size() != limbs) ht::fail(op, "need one prime per limb");
  if (n < 4 || (n & (n - 1)) != 0) ht::fail(op, "n must be a power of two >= 4");
  for (std::size_t i = 0; i < limbs; ++i)
    for (u64 k = 0; k < n; ++k)
      if (a.data()[i * n + k] >= primes[i]) ht::fail(op, "residues of limb " + std::to_string(i) + " must be < q");
}

// Device copies of host arrays, downloaded back on request.
struct Staging {
  ht::backend::Backend& be;
  std::vector<ht::backend::DeviceBuffer> bufs;
  u64* put(const U64Array& a) {
    bufs.push_back(be.allocate(static_cast<std::size_t>(a.size())));
    be.upload(bufs.back().data(), a.data(), static_cast<std::size_t>(a.size()));
    return bufs.back().data();
  }
  u64* fresh(std::size_t words) {
    bufs.push_back(be.allocate(words));
    return bufs.back().data();
  }
  U64Array get(const u64* src, std::vector<py::ssize_t> shape) {
    U64Array out(shape);
    be.download(out.mutable_data(), src, static_cast<std::size_t>(out.size()));
    return out;
  }
};

std::vector<ht::NttTables> tables_for(const std::vector<u64>& primes, u64 n) {
  std::vector<ht::NttTables> t;
  for (u64 q : primes) t.emplace_back(q, n);
  return t;
}

std::vector<ht::Modulus> moduli_for(const std::vector<u64>& primes) {
  std::vector<ht::Modulus> m;
  for (u64 q : primes) m.push_back(ht::make_modulus(q));
  return m;
}

std::vector<u64*> limb_ptrs(u64* base, std::size_t count, u64 n) {
  std::vector<u64*> p(count);
  for (std::size_t i = 0; i < count; ++i) p[i] = base + i * n;
  return p;
}

U64Array ntt(const std::string& device, const U64Array& a, const std::vector<u64>& primes, bool inverse) {
  check("backend_ntt", a, primes);
  const auto limbs = static_cast<std::size_t>(a.shape(0));
  const auto n = static_cast<u64>(a.shape(1));
  const auto tables = tables_for(primes, n);
  std::vector<const ht::NttTables*> tp;
  for (auto& t : tables) tp.push_back(&t);
  Staging s{backend_for(device), {}};
  u64* d = s.put(a);
  auto limbs_p = limb_ptrs(d, limbs, n);
  {
    py::gil_scoped_release release;
    if (inverse) s.be.ntt_inverse(limbs_p.data(), tp.data(), limbs);
    else s.be.ntt_forward(limbs_p.data(), tp.data(), limbs);
  }
  return s.get(d, {a.shape(0), a.shape(1)});
}

U64Array elementwise(const std::string& device, const std::string& op, const U64Array& a, const U64Array& b,
                     const std::vector<u64>& primes) {
  check("backend_elementwise", a, primes);
  check("backend_elementwise", b, primes);
  if (a.shape(1) != b.shape(1)) ht::fail("backend_elementwise", "a and b must have the same shape");
  ht::backend::Elementwise kind;
  if (op == "add") kind = ht::backend::Elementwise::add;
  else if (op == "sub") kind = ht::backend::Elementwise::sub;
  else if (op == "mul") kind = ht::backend::Elementwise::mul;
  else throw ht::InvalidArgument("unknown element-wise op '" + op + "'; use add, sub or mul");
  const auto mods = moduli_for(primes);
  Staging s{backend_for(device), {}};
  u64* da = s.put(a);
  u64* db = s.put(b);
  u64* dout = s.fresh(static_cast<std::size_t>(a.size()));
  s.be.elementwise(kind, dout, da, db, mods.data(), primes.size(), static_cast<u64>(a.shape(1)));
  return s.get(dout, {a.shape(0), a.shape(1)});
}

U64Array automorphism(const std::string& device, const U64Array& a, const std::vector<u64>& primes, u64 galois_elt) {
  check("backend_automorphism", a, primes);
  const auto n = static_cast<u64>(a.shape(1));
  if (galois_elt % 2 == 0 || galois_elt >= 2 * n) ht::fail("backend_automorphism", "galois_elt must be odd and < 2n");
  const auto perm = ht::galois_permutation_ntt(galois_elt, n);
  Staging s{backend_for(device), {}};
  u64* din = s.put(a);
  u64* dout = s.fresh(static_cast<std::size_t>(a.size()));
  s.be.automorphism(dout, din, perm.data(), primes.size(), n);
  return s.get(dout, {a.shape(0), a.shape(1)});
}

U64Array basis_convert(const std::string& device, const U64Array& a, const std::vector<u64>& src,
                       const std::vector<u64>& dst, bool exact) {
  check("backend_basis_convert", a, src);
  if (dst.empty()) ht::fail("backend_basis_convert", "need at least one destination prime");
  const auto n = static_cast<u64>(a.shape(1));
  const ht::BasisConverter conv(src, dst);
  Staging s{backend_for(device), {}};
  u64* din = s.put(a);
  u64* dout = s.fresh(dst.size() * n);
  std::vector<const u64*> ps;
  for (std::size_t i = 0; i < src.size(); ++i) ps.push_back(din + i * n);
  auto pd = limb_ptrs(dout, dst.size(), n);
  s.be.basis_convert(conv.view(), ps.data(), pd.data(), n, exact);
  return s.get(dout, {static_cast<py::ssize_t>(dst.size()), a.shape(1)});
}

py::tuple key_switch_dot(const std::string& device, const U64Array& d, const U64Array& kb, const U64Array& ka,
                         u64 prime) {
  const std::vector<u64> primes(static_cast<std::size_t>(d.ndim() == 2 ? d.shape(0) : 0), prime);
  check("backend_key_switch_dot", d, primes);
  check("backend_key_switch_dot", kb, primes);
  check("backend_key_switch_dot", ka, primes);
  if (kb.shape(1) != d.shape(1) || ka.shape(1) != d.shape(1)) ht::fail("backend_key_switch_dot", "shapes differ");
  const int terms = static_cast<int>(d.shape(0));
  const auto n = static_cast<u64>(d.shape(1));
  Staging s{backend_for(device), {}};
  u64* dd = s.put(d);
  u64* db = s.put(kb);
  u64* dk = s.put(ka);
  u64* o0 = s.fresh(n);
  u64* o1 = s.fresh(n);
  std::vector<const u64*> pd, pb, pa;
  for (int j = 0; j < terms; ++j) {
    pd.push_back(dd + j * n);
    pb.push_back(db + j * n);
    pa.push_back(dk + j * n);
  }
  s.be.key_switch_dot(o0, o1, pd.data(), pb.data(), pa.data(), terms, n, ht::make_modulus(prime));
  return py::make_tuple(s.get(o0, {d.shape(1)}), s.get(o1, {d.shape(1)}));
}

U64Array sub_mul_const(const std::string& device, const U64Array& a, const U64Array& b, const std::vector<u64>& w,
                       const std::vector<u64>& primes) {
  check("backend_sub_mul_const", a, primes);
  check("backend_sub_mul_const", b, primes);
  if (a.shape(1) != b.shape(1) || w.size() != primes.size()) ht::fail("backend_sub_mul_const", "shapes differ");
  std::vector<ht::ShoupConst> inv;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w[i] >= primes[i]) ht::fail("backend_sub_mul_const", "constants must be < q");
    inv.push_back(ht::make_shoup(w[i], primes[i]));
  }
  const auto n = static_cast<u64>(a.shape(1));
  const std::size_t limbs = primes.size();
  Staging s{backend_for(device), {}};
  u64* da = s.put(a);
  u64* db = s.put(b);
  u64* dout = s.fresh(limbs * n);
  auto po = limb_ptrs(dout, limbs, n);
  auto pa = limb_ptrs(da, limbs, n), pb = limb_ptrs(db, limbs, n);
  std::vector<const u64*> ca(pa.begin(), pa.end()), cb(pb.begin(), pb.end());
  s.be.sub_mul_const(po.data(), ca.data(), cb.data(), inv.data(), primes.data(), limbs, n);
  return s.get(dout, {a.shape(0), a.shape(1)});
}

std::vector<ht::ShoupConst> shoup_consts(const char* op, const std::vector<u64>& w, const std::vector<u64>& primes) {
  if (w.size() != primes.size()) ht::fail(op, "need one constant per limb");
  std::vector<ht::ShoupConst> out;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w[i] >= primes[i]) ht::fail(op, "constants must be < q");
    out.push_back(ht::make_shoup(w[i], primes[i]));
  }
  return out;
}

// d, kb, ka: [limbs * terms][n], row i * terms + j is digit j of limb i.
py::tuple key_switch_inner(const std::string& device, const U64Array& d, const U64Array& kb, const U64Array& ka,
                           const std::vector<u64>& primes, int terms, u64 galois_elt) {
  const char* op = "backend_key_switch_inner";
  if (terms < 1 || terms > 32) ht::fail(op, "terms must be in [1, 32]");
  std::vector<u64> rows;
  for (u64 q : primes) rows.insert(rows.end(), static_cast<std::size_t>(terms), q);
  check(op, d, rows);
  check(op, kb, rows);
  check(op, ka, rows);
  if (kb.shape(1) != d.shape(1) || ka.shape(1) != d.shape(1)) ht::fail(op, "shapes differ");
  const auto n = static_cast<u64>(d.shape(1));
  const std::size_t limbs = primes.size();
  std::vector<std::uint32_t> perm;
  if (galois_elt != 0) {
    if (galois_elt % 2 == 0 || galois_elt >= 2 * n) ht::fail(op, "galois_elt must be odd and < 2n (or 0: none)");
    perm = ht::galois_permutation_ntt(galois_elt, n);
  }
  Staging s{backend_for(device), {}};
  u64* dd = s.put(d);
  u64* db = s.put(kb);
  u64* dk = s.put(ka);
  u64* o0 = s.fresh(limbs * n);
  u64* o1 = s.fresh(limbs * n);
  std::vector<const u64*> pd, pb, pa;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    pd.push_back(dd + r * n);
    pb.push_back(db + r * n);
    pa.push_back(dk + r * n);
  }
  auto p0 = limb_ptrs(o0, limbs, n), p1 = limb_ptrs(o1, limbs, n);
  const auto mods = moduli_for(primes);
  s.be.key_switch_inner(p0.data(), p1.data(), pd.data(), pb.data(), pa.data(), terms,
                        perm.empty() ? nullptr : perm.data(), mods.data(), limbs, n);
  const py::ssize_t l = static_cast<py::ssize_t>(limbs);
  return py::make_tuple(s.get(o0, {l, d.shape(1)}), s.get(o1, {l, d.shape(1)}));
}

// Returns (out, conv) after the op: conv is left in the NTT domain.
py::tuple ntt_sub_mul_const(const std::string& device, const U64Array& out, const U64Array& x, const U64Array& conv,
                            const std::vector<u64>& w, const std::vector<u64>& primes, bool accumulate) {
  const char* op = "backend_ntt_sub_mul_const";
  for (const U64Array* a : {&out, &x, &conv}) check(op, *a, primes);
  if (out.shape(1) != x.shape(1) || conv.shape(1) != x.shape(1)) ht::fail(op, "shapes differ");
  const auto inv = shoup_consts(op, w, primes);
  const auto n = static_cast<u64>(x.shape(1));
  const std::size_t limbs = primes.size();
  const auto tables = tables_for(primes, n);
  std::vector<const ht::NttTables*> tp;
  for (auto& t : tables) tp.push_back(&t);
  Staging s{backend_for(device), {}};
  u64* dout = s.put(out);
  u64* dx = s.put(x);
  u64* dc = s.put(conv);
  auto po = limb_ptrs(dout, limbs, n), pc = limb_ptrs(dc, limbs, n), px = limb_ptrs(dx, limbs, n);
  std::vector<const u64*> cx(px.begin(), px.end());
  s.be.ntt_sub_mul_const(po.data(), cx.data(), pc.data(), inv.data(), tp.data(), limbs, n, accumulate);
  return py::make_tuple(s.get(dout, {x.shape(0), x.shape(1)}), s.get(dc, {x.shape(0), x.shape(1)}));
}

U64Array mul_const_add(const std::string& device, const U64Array& out, const U64Array& a, const std::vector<u64>& w,
                       const std::vector<u64>& primes) {
  const char* op = "backend_mul_const_add";
  check(op, out, primes);
  check(op, a, primes);
  if (out.shape(1) != a.shape(1)) ht::fail(op, "shapes differ");
  const auto c = shoup_consts(op, w, primes);
  const auto n = static_cast<u64>(a.shape(1));
  const std::size_t limbs = primes.size();
  Staging s{backend_for(device), {}};
  u64* dout = s.put(out);
  u64* da = s.put(a);
  auto po = limb_ptrs(dout, limbs, n), pa = limb_ptrs(da, limbs, n);
  std::vector<const u64*> ca(pa.begin(), pa.end());
  s.be.mul_const_add(po.data(), ca.data(), c.data(), primes.data(), limbs, n);
  return s.get(dout, {a.shape(0), a.shape(1)});
}

U64Array add_const(const std::string& device, const U64Array& a, const std::vector<u64>& c,
                   const std::vector<u64>& primes) {
  const char* op = "backend_add_const";
  check(op, a, primes);
  (void)shoup_consts(op, c, primes);  // the same checks: one constant per limb, each < q
  const auto n = static_cast<u64>(a.shape(1));
  const std::size_t limbs = primes.size();
  Staging s{backend_for(device), {}};
  u64* da = s.put(a);
  u64* dout = s.fresh(limbs * n);
  auto po = limb_ptrs(dout, limbs, n), pa = limb_ptrs(da, limbs, n);
  std::vector<const u64*> ca(pa.begin(), pa.end());
  s.be.add_const(po.data(), ca.data(), c.data(), primes.data(), limbs, n);
  return s.get(dout, {a.shape(0), a.shape(1)});
}

py::dict kernel_times(const std::vector<u64>& primes, int log_n, int repeat, int device) {
  if (log_n < 2 || log_n > 17) ht::fail("cuda_kernel_times", "log_n must be in [2, 17]");
#ifdef HETENSOR_WITH_CUDA
  const auto tables = tables_for(primes, u64(1) << log_n);
  std::map<std::string, double> t;
  {
    py::gil_scoped_release release;
    t = ht::cuda::time_kernels(device, tables, repeat);
  }
  py::dict out;
  for (auto& [k, v] : t) out[py::str(k)] = v;
  return out;
#else
  throw std::runtime_error("cuda_kernel_times: hetensor was built without the CUDA backend; rebuild with "
                           "-Ccmake.define.HETENSOR_CUDA=ON on a machine with a GPU");
#endif
}

}  // namespace

void register_backend(py::module_& m) {
  m.def("backend_ntt", &ntt, py::arg("device"), py::arg("a"), py::arg("primes"), py::arg("inverse") = false);
  m.def("backend_elementwise", &elementwise, py::arg("device"), py::arg("op"), py::arg("a"), py::arg("b"),
        py::arg("primes"));
  m.def("backend_automorphism", &automorphism, py::arg("device"), py::arg("a"), py::arg("primes"),
        py::arg("galois_elt"));
  m.def("backend_basis_convert", &basis_convert, py::arg("device"), py::arg("a"), py::arg("src"), py::arg("dst"),
        py::arg("exact") = false);
  m.def("backend_key_switch_dot", &key_switch_dot, py::arg("device"), py::arg("d"), py::arg("kb"), py::arg("ka"),
        py::arg("prime"));
  m.def("backend_sub_mul_const", &sub_mul_const, py::arg("device"), py::arg("a"), py::arg("b"), py::arg("w"),
        py::arg("primes"));
  m.def("backend_key_switch_inner", &key_switch_inner, py::arg("device"), py::arg("d"), py::arg("kb"), py::arg("ka"),
        py::arg("primes"), py::arg("terms"), py::arg("galois_elt") = 0);
  m.def("backend_ntt_sub_mul_const", &ntt_sub_mul_const, py::arg("device"), py::arg("out"), py::arg("x"),
        py::arg("conv"), py::arg("w"), py::arg("primes"), py::arg("accumulate") = false);
  m.def("backend_mul_const_add", &mul_const_add, py::arg("device"), py::arg("out"), py::arg("a"), py::arg("w"),
        py::arg("primes"));
  m.def("backend_add_const", &add_const, py::arg("device"), py::arg("a"), py::arg("c"), py::arg("primes"));
  // Tests only: the CPU backend runs key switches as the GPU's fused passes
  // (backend/cpu_switch.hpp), process-wide; returns the previous setting.
  m.def("backend_set_fused_key_switch", &ht::backend::set_cpu_fused_switch, py::arg("on"));
  m.def("cuda_kernel_times", &kernel_times, py::arg("primes"), py::arg("log_n"), py::arg("repeat") = 20,
        py::arg("device") = 0);
}
