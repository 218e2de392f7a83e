// time_kernels (cuda_api.hpp): CUDA-event timing of each backend op of the
// CUDA backend on synthetic limbs, for `hetensor.bench --device cuda`. Kept
// apart from the backend itself: it only drives the backend's interface.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "backend/kernels/switch.hpp"
#include "core/error.hpp"
#include "core/numth.hpp"
#include "core/rns.hpp"
#include "check.cuh"
#include "cuda_api.hpp"
#include "cuda_stream.cuh"

namespace ht::cuda {

std::map<std::string, double> time_kernels(int device, const std::vector<NttTables>& tables, int repeat) {
  if (tables.size() < 2) fail("time_kernels", "need at least two limbs");
  if (repeat < 1) fail("time_kernels", "repeat must be >= 1");
  const std::unique_ptr<backend::Backend> owner = make_backend(device);
  backend::Backend& be = *owner;
  const cudaStream_t stream = stream_of(be);
  const std::size_t limbs = tables.size();
  const u64 n = tables[0].n;
  std::vector<u64> host(limbs * n);
  for (std::size_t i = 0; i < limbs; ++i)  // any residues: deterministic values below each prime
    for (u64 k = 0; k < n; ++k) host[i * n + k] = (k * 0x9E3779B97F4A7C15ull + i) % tables[i].mod.value;
  auto a = be.allocate(limbs * n), b = be.allocate(limbs * n), c = be.allocate(limbs * n), e = be.allocate(limbs * n);
  be.upload(a.data(), host.data(), host.size());
  be.upload(b.data(), host.data(), host.size());
  std::vector<u64*> la(limbs), lc(limbs), le(limbs);
  std::vector<const u64*> ca(limbs), cb(limbs);
  std::vector<const NttTables*> tp(limbs);
  std::vector<Modulus> mods(limbs);
  std::vector<ShoupConst> inv(limbs);
  std::vector<u64> qs(limbs);
  for (std::size_t i = 0; i < limbs; ++i) {
    la[i] = a.data() + i * n; lc[i] = c.data() + i * n; le[i] = e.data() + i * n;
    ca[i] = a.data() + i * n; cb[i] = b.data() + i * n;
    tp[i] = &tables[i]; mods[i] = tables[i].mod; qs[i] = tables[i].mod.value;
    inv[i] = make_shoup(1, qs[i]);
  }
  std::vector<u64> src{qs[0]}, dst(qs.begin() + 1, qs.end());
  const BasisConverter conv(src, dst);
  std::vector<u32> perm(n);
  for (u64 k = 0; k < n; ++k) perm[k] = static_cast<u32>((k * 5) % n);
  const u64* d2[2] = {ca[0], ca[1]};
  const u64* k2[2] = {cb[0], cb[1]};
  // A whole fused key switch (one digit over the first limbs - 1 primes, the
  // last prime as P, one Galois target): constants as Tables builds them.
  const int level = static_cast<int>(limbs) - 2;
  std::vector<u64> qs_q(qs.begin(), qs.end() - 1), p1{qs.back()};
  const BasisConverter up(qs_q, p1), down(p1, qs_q);
  backend::SwitchConstants sc;
  sc.serial = ~u64(0);  // this timing backend's own
  sc.n = n;
  sc.level = level;
  sc.alpha = 1;
  sc.digits = 1;
  sc.digit_begin = {0};
  sc.digit_end = {level + 1};
  sc.modup = {up.view()};
  sc.moddown = down.view();
  for (std::size_t i = 0; i < limbs; ++i) {
    sc.tables.push_back(&tables[i]);
    sc.moduli.push_back(mods[i]);
  }
  for (int i = 0; i <= level; ++i) {
    const u64 pm = qs.back() % qs[i];
    sc.p_inv.push_back(make_shoup(inv_mod(pm, qs[i]), qs[i]));
    sc.p_mod.push_back(make_shoup(pm, qs[i]));
  }
  auto key = be.allocate(2 * limbs * n);  // [1 digit][b, a][limbs][n]: any residues below each prime
  be.upload(key.data(), host.data(), host.size());
  be.upload(key.data() + limbs * n, host.data(), host.size());
  const backend::SwitchKeyRef kref{key.data(), level, static_cast<int>(limbs)};
  const backend::SwitchJob job{a.data(), {backend::SwitchTarget{kref, perm.data(), 5, b.data(), nullptr, c.data(),
                                                                e.data()}}};
  const bool fits = level + 1 <= kernels::kMaxSwitchSources;
  std::map<std::string, std::function<void()>> ops{
      {"ntt_forward", [&] { be.ntt_forward(la.data(), tp.data(), limbs); }},
      {"ntt_inverse", [&] { be.ntt_inverse(la.data(), tp.data(), limbs); }},
      {"add", [&] { be.elementwise(backend::Elementwise::add, c.data(), a.data(), b.data(), mods.data(), limbs, n); }},
      {"mul", [&] { be.elementwise(backend::Elementwise::mul, c.data(), a.data(), b.data(), mods.data(), limbs, n); }},
      {"automorphism", [&] { be.automorphism(c.data(), a.data(), perm.data(), limbs, n); }},
      {"basis_convert", [&] { be.basis_convert(conv.view(), ca.data(), lc.data() + 1, n, true); }},
      {"key_switch_dot", [&] { be.key_switch_dot(lc[0], le[0], d2, k2, k2, 2, n, mods[0]); }},
      {"sub_mul_const", [&] { be.sub_mul_const(le.data(), ca.data(), cb.data(), inv.data(), qs.data(), limbs, n); }},
  };
  if (fits) ops["key_switch"] = [&] { be.key_switch(sc, &job, 1, false); };
  cudaEvent_t start, stop;
  HT_CUDA_CHECK(cudaEventCreate(&start));
  HT_CUDA_CHECK(cudaEventCreate(&stop));
  std::map<std::string, double> out;
  try {
    for (auto& [name, op] : ops) {
      op();  // warm-up (first use uploads the resident tables)
      be.synchronize();
      HT_CUDA_CHECK(cudaEventRecord(start, stream));
      for (int r = 0; r < repeat; ++r) op();
      HT_CUDA_CHECK(cudaEventRecord(stop, stream));
      HT_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      HT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      out[name] = static_cast<double>(ms) / repeat;
    }
  } catch (...) {
    (void)cudaEventDestroy(start);
    (void)cudaEventDestroy(stop);
    throw;
  }
  (void)cudaEventDestroy(start);
  (void)cudaEventDestroy(stop);
  return out;
}

}  // namespace ht::cuda
