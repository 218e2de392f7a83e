// CUDA launcher for the negacyclic NTT over a batch of limbs: one launch per
// stage over n/2 butterflies x limbs, running the shared bodies of
// backend/kernels/ntt.hpp, then one finishing pass. Twiddles are the host
// NttTables arrays uploaded unchanged, so results equal cpu::ntt_* bit for bit.
// Values stay in [0, 4q) (forward) / [0, 2q) (inverse) between stages.
#include <string>
#include <vector>

#include "backend/kernels/ntt.hpp"
#include "core/error.hpp"
#include "cuda_api.hpp"
#include "device_buffer.cuh"
#include "limb_bodies.cuh"

namespace ht::cuda {
namespace {

using kernels::NttView;

// The twiddle tables of a batch on the device, with one NttView per limb
// pointing into them.
struct DeviceTables {
  DeviceBuffer<ShoupConst> psi_rev, ipsi_rev;
  DeviceBuffer<NttView> views;
};

u64 check_tables(const char* op, const u64* a, const NttTables* tables, std::size_t limbs) {
  if (limbs == 0) return 0;
  if (a == nullptr || tables == nullptr) fail(op, "null data or tables");
  const u64 n = tables[0].n;
  if (n < 2 || (n & (n - 1)) != 0) fail(op, "n must be a power of two >= 2, got " + std::to_string(n));
  for (std::size_t i = 0; i < limbs; ++i) {
    const NttTables& t = tables[i];
    if (t.n != n) fail(op, "all limbs must share one n");
    if (t.psi_rev.size() != n || t.ipsi_rev.size() != n) fail(op, "NTT tables of limb " + std::to_string(i) + " are incomplete");
  }
  return n;
}

DeviceTables upload_tables(const NttTables* tables, std::size_t limbs, u64 n) {
  std::vector<ShoupConst> psi(limbs * n), ipsi(limbs * n);
  for (std::size_t i = 0; i < limbs; ++i) {
    std::copy(tables[i].psi_rev.begin(), tables[i].psi_rev.end(), psi.begin() + i * n);
    std::copy(tables[i].ipsi_rev.begin(), tables[i].ipsi_rev.end(), ipsi.begin() + i * n);
  }
  DeviceTables d{DeviceBuffer<ShoupConst>(psi.data(), psi.size()), DeviceBuffer<ShoupConst>(ipsi.data(), ipsi.size()),
                 DeviceBuffer<NttView>(limbs)};
  std::vector<NttView> views(limbs);
  for (std::size_t i = 0; i < limbs; ++i)
    views[i] = NttView{tables[i].mod.value, d.psi_rev.data() + i * n, d.ipsi_rev.data() + i * n, tables[i].n_inv, n};
  d.views.upload(views.data());
  return d;
}

void transform(u64* a, const NttTables* tables, std::size_t limbs, bool inverse) {
  const char* op = inverse ? "ntt_inverse" : "ntt_forward";
  const u64 n = check_tables(op, a, tables, limbs);
  if (limbs == 0) return;
  require_device(op);
  const DeviceTables dt = upload_tables(tables, limbs, n);
  DeviceBuffer<u64> d(a, limbs * n);
  ntt_launch(LimbBlock{d.data(), dt.views.data(), n}, n, limbs, inverse, nullptr);
  d.download(a);
}

}  // namespace

void ntt_forward(u64* a, const NttTables* tables, std::size_t limbs) { transform(a, tables, limbs, false); }
void ntt_inverse(u64* a, const NttTables* tables, std::size_t limbs) { transform(a, tables, limbs, true); }

}  // namespace ht::cuda
