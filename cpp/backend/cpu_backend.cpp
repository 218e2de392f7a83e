// The CPU backend: host memory from the runtime pool, OpenMP over limbs,
// the shared kernel bodies (and the CPU's own NTT and dot-product paths,
// which agree with them bit for bit: tests/test_backend.py).
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cpu_basis.hpp"
#include "backend/cpu_dot.hpp"
#include "backend/cpu_switch.hpp"
#include "backend/cpu_ntt.hpp"
#include "backend/kernels/automorphism.hpp"
#include "backend/kernels/basis.hpp"
#include "backend/kernels/elementwise.hpp"
#include "backend/kernels/keyswitch.hpp"
#include "backend/switch_sequence.hpp"
#include "core/error.hpp"
#include "runtime/allocator.hpp"
#include "runtime/parallel.hpp"

namespace ht::backend {
namespace {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device{DeviceKind::cpu, 0}; }

  DeviceBuffer allocate(std::size_t words) override {
    if (words == 0) return DeviceBuffer(this, nullptr, 0);
    return DeviceBuffer(this, static_cast<u64*>(pool_allocate(words * sizeof(u64))), words);
  }
  void release(u64* ptr, std::size_t words) noexcept override { pool_free(ptr, words * sizeof(u64)); }
  void upload(u64* dst, const u64* host, std::size_t words) override {
    if (words) std::memcpy(dst, host, words * sizeof(u64));
  }
  void download(u64* host, const u64* src, std::size_t words) override {
    if (words) std::memcpy(host, src, words * sizeof(u64));
  }
  void copy(u64* dst, const u64* src, std::size_t words) override {
    if (words) std::memcpy(dst, src, words * sizeof(u64));
  }
  void synchronize() override {}
  void zero(u64* dst, std::size_t words) override {
    if (words) std::memset(dst, 0, words * sizeof(u64));
  }

  void ntt_forward(u64* const* limbs, const NttTables* const* tables, std::size_t count) override {
    parallel_for(count, [&](std::size_t i) { ht::cpu::ntt_forward(limbs[i], *tables[i]); });
  }
  void ntt_inverse(u64* const* limbs, const NttTables* const* tables, std::size_t count) override {
    parallel_for(count, [&](std::size_t i) { ht::cpu::ntt_inverse(limbs[i], *tables[i]); });
  }

  void elementwise(Elementwise op, u64* out, const u64* a, const u64* b, const Modulus* moduli, std::size_t count,
                   u64 n) override {
    parallel_for(count, [&](std::size_t i) {
      const std::size_t off = i * n;
      const Modulus& m = moduli[i];
      switch (op) {
        case Elementwise::add:
          for (u64 k = 0; k < n; ++k) kernels::add_limb(out + off, a + off, b + off, m.value, k);
          break;
        case Elementwise::sub:
          for (u64 k = 0; k < n; ++k) kernels::sub_limb(out + off, a + off, b + off, m.value, k);
          break;
        case Elementwise::mul:
          for (u64 k = 0; k < n; ++k) kernels::mul_limb(out + off, a + off, b + off, m, k);
          break;
        case Elementwise::neg:
          for (u64 k = 0; k < n; ++k) kernels::neg_limb(out + off, a + off, m.value, k);
          break;
      }
    });
  }

  void mul_const(u64* const* out, const u64* const* a, const ShoupConst* w, const u64* q, std::size_t count,
                 u64 n) override {
    parallel_for(count, [&](std::size_t i) {
      for (u64 k = 0; k < n; ++k) kernels::mul_const_limb(out[i], a[i], w[i], q[i], k);
    });
  }

  void automorphism(u64* out, const u64* in, const u32* perm, std::size_t count, u64 n) override {
    parallel_for(count, [&](std::size_t i) {
      for (u64 k = 0; k < n; ++k) kernels::automorphism_ntt(out + i * n, in + i * n, perm, k);
    });
  }

  // Chunks of 1024 coefficients spread over the threads (cpu_basis.hpp).
  void basis_convert(const kernels::BasisConvView& view, const u64* const* src, u64* const* dst, u64 n,
                     bool exact) override {
    constexpr u64 chunk = 1024;
    if (n % 4 != 0) fail("basis_convert", "n must be a multiple of 4");
    const u64 chunks = (n + chunk - 1) / chunk;
    parallel_for(chunks, [&](std::size_t ch) {
      ht::cpu::basis_convert(view, src, dst, ch * chunk, std::min<u64>(n, (ch + 1) * chunk), exact);
    });
  }

  void key_switch_dot(u64* out0, u64* out1, const u64* const* d, const u64* const* kb, const u64* const* ka,
                      int terms, u64 n, const Modulus& m) override {
    if (terms < 1 || terms > 32) fail("key_switch_dot", "terms must be in [1, 32]");
    ht::cpu::dot_two(out0, out1, d, kb, ka, terms, n, m);
  }

  void centered_reduce(u64* const* out, const u64* const* in, u64 p, const Modulus* moduli, std::size_t count,
                       u64 n) override {
    parallel_for(count, [&](std::size_t i) {
      for (u64 k = 0; k < n; ++k) out[i][k] = kernels::centered_mod(in[i][k], p, moduli[i]);
    });
  }

  void sub_mul_const(u64* const* out, const u64* const* a, const u64* const* b, const ShoupConst* inv, const u64* q,
                     std::size_t count, u64 n) override {
    parallel_for(count, [&](std::size_t i) {
      for (u64 k = 0; k < n; ++k) kernels::sub_mul_const(out[i], a[i], b[i], inv[i], q[i], k);
    });
  }

  // One limb per thread, through the CPU's dot product (FMA path where the
  // prime allows, equal to the shared body bit for bit). With a permutation
  // the digits are gathered block by block into thread-local scratch that
  // stays in L1/L2 (whole permuted limbs, terms x N words, did not: at
  // N = 2^16 they were written out to memory and read back).
  void key_switch_inner(u64* const* out0, u64* const* out1, const u64* const* d, const u64* const* kb,
                        const u64* const* ka, int terms, const u32* perm, const Modulus* moduli, std::size_t count,
                        u64 n) override {
    if (terms < 1 || terms > 32) fail("key_switch_inner", "terms must be in [1, 32]");
    parallel_for(count, [&](std::size_t i) {
      const u64* const* di = d + i * terms;
      if (perm == nullptr) {
        ht::cpu::dot_two(out0[i], out1[i], di, kb + i * terms, ka + i * terms, terms, n, moduli[i]);
        return;
      }
      constexpr u64 kBlock = 1024;  // terms x 8 KiB of scratch
      thread_local std::vector<u64> scratch;
      if (scratch.size() < static_cast<std::size_t>(terms) * kBlock) scratch.resize(static_cast<std::size_t>(terms) * kBlock);
      const u64* permuted[32];
      const u64* kbi[32];
      const u64* kai[32];
      for (u64 k0 = 0; k0 < n; k0 += kBlock) {
        const u64 len = std::min(kBlock, n - k0);
        const u32* pk = perm + k0;
        // A Galois permutation in the NTT's bit-reversed order takes each
        // aligned run of 1024 outputs from one aligned run of 1024 inputs, so
        // the next block's sources are prefetched a line per 8 words gathered
        // (the hardware prefetcher loses the jump from run to run: the gather
        // took 2.4x as long). A hint only: any permutation gives the same words.
        const u64 next = k0 + kBlock < n ? perm[k0 + kBlock] & ~(kBlock - 1) : 0;
        for (int j = 0; j < terms; ++j) {
          u64* t = scratch.data() + static_cast<std::size_t>(j) * kBlock;
          const u64* src = di[j];
          u64 k = 0;
          for (; k + 8 <= len; k += 8) {
            __builtin_prefetch(src + next + k);
            for (u64 l = 0; l < 8; ++l) t[k + l] = src[pk[k + l]];
          }
          for (; k < len; ++k) t[k] = src[pk[k]];
          permuted[j] = t;
          kbi[j] = kb[i * terms + j] + k0;
          kai[j] = ka[i * terms + j] + k0;
        }
        ht::cpu::dot_two(out0[i] + k0, out1[i] + k0, permuted, kbi, kai, terms, len, moduli[i]);
      }
    });
  }

  // Limb by limb, so the converted limb is still in cache for the tail.
  void ntt_sub_mul_const(u64* const* out, const u64* const* x, u64* const* conv, const ShoupConst* inv,
                         const NttTables* const* tables, std::size_t count, u64 n, bool accumulate) override {
    parallel_for(count, [&](std::size_t i) {
      ht::cpu::ntt_forward(conv[i], *tables[i]);
      const u64 q = tables[i]->mod.value;
      if (accumulate)
        for (u64 k = 0; k < n; ++k) kernels::sub_mul_const_add(out[i], x[i], conv[i], inv[i], q, k);
      else
        for (u64 k = 0; k < n; ++k) kernels::sub_mul_const(out[i], x[i], conv[i], inv[i], q, k);
    });
  }

  void mul_const_add(u64* const* out, const u64* const* a, const ShoupConst* w, const u64* q, std::size_t count,
                     u64 n) override {
    parallel_for(count, [&](std::size_t i) {
      for (u64 k = 0; k < n; ++k) kernels::mul_const_add_limb(out[i], a[i], w[i], q[i], k);
    });
  }

  void add_const(u64* const* out, const u64* const* a, const u64* c, const u64* q, std::size_t count,
                 u64 n) override {
    parallel_for(count, [&](std::size_t i) {
      for (u64 k = 0; k < n; ++k) kernels::add_const_limb(out[i], a[i], c[i], q[i], k);
    });
  }

  // The coarse-op sequence; the fused passes (the GPU's) when a test asks.
  void key_switch(const SwitchConstants& c, const SwitchJob* jobs, std::size_t count, bool rescale) override {
    if (cpu_fused_switch()) cpu_fused_key_switch(*this, c, jobs, count, rescale);
    else key_switch_sequence(*this, c, jobs, count, rescale);
  }
};

}  // namespace

Backend& cpu() {
  static CpuBackend backend;
  return backend;
}

namespace {
struct Registry {
  std::mutex mutex;
  BackendFactory cuda = nullptr;
  std::map<int, std::unique_ptr<Backend>> devices;
};
// Never destroyed: device buffers held by Python objects may outlive static destruction.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}
}  // namespace

void set_factory(DeviceKind kind, BackendFactory factory) {
  if (kind != DeviceKind::cuda) fail("set_factory", "only CUDA backends are registered");
  std::lock_guard<std::mutex> lock(registry().mutex);
  registry().cuda = factory;
}

bool has_factory(DeviceKind kind) {
  if (kind == DeviceKind::cpu) return true;
  std::lock_guard<std::mutex> lock(registry().mutex);
  return registry().cuda != nullptr;
}

Backend& for_device(const Device& device) {
  if (device.kind == DeviceKind::cpu) return cpu();
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.cuda == nullptr)  // the environment, not the argument: RuntimeError in Python
    throw std::runtime_error("cannot use device '" + device.name() + "': this build has no CUDA backend; reinstall "
                             "with -Ccmake.define.HETENSOR_CUDA=ON or use device 'cpu'");
  auto it = r.devices.find(device.index);
  if (it == r.devices.end()) it = r.devices.emplace(device.index, r.cuda(device.index)).first;
  return *it->second;
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device{DeviceKind::cpu, 0};
  if (name == "cuda") return Device{DeviceKind::cuda, 0};
  const bool digits = name.size() > 5 && name.size() < 10 && name.find_first_not_of("0123456789", 5) == std::string::npos;
  if (name.rfind("cuda:", 0) != 0 || !digits)
    throw InvalidArgument("unknown device '" + name + "'; use 'cpu', 'cuda' or 'cuda:N'");
  return Device{DeviceKind::cuda, std::stoi(name.substr(5))};
}

void ntt_forward(u64* a, const NttTables& t) { ht::cpu::ntt_forward(a, t); }
void ntt_inverse(u64* a, const NttTables& t) { ht::cpu::ntt_inverse(a, t); }

}  // namespace ht::backend
