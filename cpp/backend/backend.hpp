// The backend seam: the coarse operations the scheme needs, over limbs that
// live in one place (host memory or one GPU). A Backend owns its memory
// (DeviceBuffer) and runs every op on pointers into it; the CPU backend runs
// the shared HT_HD bodies of backend/kernels in OpenMP loops, the CUDA backend
// (cuda/cuda_backend.cu) runs the same bodies as kernels on one stream, with
// tables resident on the device. Both give canonical residues in [0, q), so
// their outputs agree bit for bit.
//
// Limb lists: an op takes arrays of `count` limb pointers (each n words) with
// one table or modulus per limb, so any subset of an RNS polynomial (a digit,
// the P part, one level) is one call, parallel over limbs.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend/switch.hpp"
#include "core/ntt_tables.hpp"
#include "core/rns_view.hpp"

namespace ht::backend {

enum class DeviceKind { cpu, cuda };

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int index = 0;
  std::string name() const { return kind == DeviceKind::cpu ? "cpu" : "cuda:" + std::to_string(index); }
};

class Backend;

// A move-only owner of `words` u64 words on the device of `owner`.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* owner, u64* ptr, std::size_t words) : owner_(owner), ptr_(ptr), words_(words) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept { swap(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    DeviceBuffer t(std::move(o));
    swap(t);
    return *this;
  }
  ~DeviceBuffer();

  void swap(DeviceBuffer& o) noexcept {
    std::swap(owner_, o.owner_);
    std::swap(ptr_, o.ptr_);
    std::swap(words_, o.words_);
  }
  u64* data() { return ptr_; }
  const u64* data() const { return ptr_; }
  std::size_t size() const { return words_; }
  Backend* owner() const { return owner_; }

 private:
  Backend* owner_ = nullptr;
  u64* ptr_ = nullptr;
  std::size_t words_ = 0;
};

// neg ignores b (out = -a).
enum class Elementwise { add, sub, mul, neg };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

  // -- memory (device pointers; copies are ordered with the ops) -----------
  virtual DeviceBuffer allocate(std::size_t words) = 0;
  virtual void release(u64* ptr, std::size_t words) noexcept = 0;
  virtual void upload(u64* dst, const u64* host, std::size_t words) = 0;
  virtual void download(u64* host, const u64* src, std::size_t words) = 0;
  // Device-to-device copy of `words` words (dst and src do not overlap).
  virtual void copy(u64* dst, const u64* src, std::size_t words) = 0;
  // Waits for every op issued so far (a no-op on the CPU).
  virtual void synchronize() = 0;
  // Sets `words` words at dst to 0 (ordered with the ops).
  virtual void zero(u64* dst, std::size_t words) = 0;

  // -- NTT over a limb list: natural -> bit-reversed (forward) and back ----
  // Residues in [0, q) in and out; tables[i] belongs to limbs[i], one n.
  virtual void ntt_forward(u64* const* limbs, const NttTables* const* tables, std::size_t count) = 0;
  virtual void ntt_inverse(u64* const* limbs, const NttTables* const* tables, std::size_t count) = 0;

  // -- element-wise over `count` contiguous limbs [count][n] ---------------
  // out may alias a or b.
  virtual void elementwise(Elementwise op, u64* out, const u64* a, const u64* b, const Modulus* moduli,
                           std::size_t count, u64 n) = 0;
  // Per-limb constants over a limb list: out[i] = a[i] * w[i] mod q[i].
  virtual void mul_const(u64* const* out, const u64* const* a, const ShoupConst* w, const u64* q,
                         std::size_t count, u64 n) = 0;
  // NTT-domain automorphism: out[i][k] = in[i][perm[k]]; out must not alias in.
  virtual void automorphism(u64* out, const u64* in, const u32* perm, std::size_t count, u64 n) = 0;

  // -- RNS ---------------------------------------------------------------------
  // Basis conversion (ModUp / ModDown): dst[j] from src[i], coefficient
  // domain; exact = true removes the overflow (centered result, ModDown).
  virtual void basis_convert(const kernels::BasisConvView& view, const u64* const* src, u64* const* dst, u64 n,
                             bool exact) = 0;
  // Key-switching inner product of one limb:
  //   out0 = sum_j d_j * kb_j,  out1 = sum_j d_j * ka_j  (mod m), terms <= 32 (sums of 32 products of residues below 2^61 stay below 2^127).
  virtual void key_switch_dot(u64* out0, u64* out1, const u64* const* d, const u64* const* kb,
                              const u64* const* ka, int terms, u64 n, const Modulus& m) = 0;
  // Centered lift of residues mod p to other primes (the head of rescale):
  //   out[i][k] = centered_mod(in[i][k], p, moduli[i]), i.e. x or x - p.
  virtual void centered_reduce(u64* const* out, const u64* const* in, u64 p, const Modulus* moduli,
                               std::size_t count, u64 n) = 0;
  // The tail of rescale and ModDown over a limb list:
  //   out[i] = (a[i] - b[i]) * inv[i] mod q[i].
  virtual void sub_mul_const(u64* const* out, const u64* const* a, const u64* const* b, const ShoupConst* inv,
                             const u64* q, std::size_t count, u64 n) = 0;

  // -- key switching (ckks/keyswitch writes its sequence once over these) ------
  // The inner product over a limb list, fused with the Galois permutation of
  // the decomposition (hoisted rotations): for limb i and t = i * terms + j,
  //   out0[i][k] = sum_j d[t][p(k)] * kb[t][k],  out1[i][k] = sum_j d[t][p(k)] * ka[t][k]  (mod moduli[i]),
  // p(k) = perm[k], or k when perm is null; terms in [1, 32].
  virtual void key_switch_inner(u64* const* out0, u64* const* out1, const u64* const* d, const u64* const* kb,
                                const u64* const* ka, int terms, const u32* perm, const Modulus* moduli,
                                std::size_t count, u64 n) = 0;
  // The tail of ModDown fused with the forward NTT of the converted limbs:
  //   conv[i] = NTT(conv[i]);  out[i] = [out[i] +] (x[i] - conv[i]) * inv[i]  mod q_i,
  // q_i the prime of tables[i]; out is added to when `accumulate`.
  virtual void ntt_sub_mul_const(u64* const* out, const u64* const* x, u64* const* conv, const ShoupConst* inv,
                                 const NttTables* const* tables, std::size_t count, u64 n, bool accumulate) = 0;
  // out[i] += a[i] * w[i] mod q[i] (P * c added in the extended basis).
  virtual void mul_const_add(u64* const* out, const u64* const* a, const ShoupConst* w, const u64* q,
                             std::size_t count, u64 n) = 0;
  // Whole key switches (backend/switch.hpp): every job's decomposition and
  // every target's inner product and ModDown, in one call. The default (and
  // the CPU backend's) runs backend/switch_sequence's coarse ops; the CUDA
  // backend runs the fused passes of backend/switch_fused.hpp over all jobs
  // at once, with the constants resident. Keys and data in this backend's memory.
  virtual void key_switch(const SwitchConstants& c, const SwitchJob* jobs, std::size_t count, bool rescale);
  // out[i][k] = a[i][k] + c[i] mod q[i], c[i] < q[i]: a constant polynomial
  // (the same value at every NTT point) added to every limb; out may alias a.
  virtual void add_const(u64* const* out, const u64* const* a, const u64* c, const u64* q, std::size_t count,
                         u64 n) = 0;
};

// The process-wide CPU backend (today's code path: OpenMP over limbs).
Backend& cpu();

// The backend of a device: cpu() for the CPU; for CUDA, one backend per
// device index, made on first use by the factory that the CUDA build
// registers (so its tables stay resident for the process). Throws when no
// factory is registered (a build without CUDA) or the device is unusable.
Backend& for_device(const Device& device);
// "cpu", "cuda" (index 0) or "cuda:N"; InvalidArgument otherwise.
Device parse_device(const std::string& name);
using BackendFactory = std::unique_ptr<Backend> (*)(int index);
void set_factory(DeviceKind kind, BackendFactory factory);
bool has_factory(DeviceKind kind);

// One-limb conveniences for host code that already runs inside a parallel
// loop over limbs (the scheme's fused loops): the same CPU kernels.
void ntt_forward(u64* a, const NttTables& t);
void ntt_inverse(u64* a, const NttTables& t);

// The limb lists of one constant op, gathered a limb at a time by host code:
// limb j reads in[j] and writes out[j] with constant c[j] modulo q[j]
// (C = ShoupConst for mul_const and mul_const_add, u64 for add_const).
template <class C>
struct ConstLimbs {
  std::vector<u64*> out;
  std::vector<const u64*> in;
  std::vector<C> c;
  std::vector<u64> q;
  void push(u64* o, const u64* i, const C& ci, u64 qi) {
    out.push_back(o);
    in.push_back(i);
    c.push_back(ci);
    q.push_back(qi);
  }
};

// Backend::mul_const, mul_const_add and add_const over such lists, limbs of n words.
inline void mul_const(Backend& be, const ConstLimbs<ShoupConst>& l, u64 n) {
  be.mul_const(l.out.data(), l.in.data(), l.c.data(), l.q.data(), l.out.size(), n);
}
inline void mul_const_add(Backend& be, const ConstLimbs<ShoupConst>& l, u64 n) {
  be.mul_const_add(l.out.data(), l.in.data(), l.c.data(), l.q.data(), l.out.size(), n);
}
inline void add_const(Backend& be, const ConstLimbs<u64>& l, u64 n) {
  be.add_const(l.out.data(), l.in.data(), l.c.data(), l.q.data(), l.out.size(), n);
}

inline DeviceBuffer::~DeviceBuffer() {
  if (owner_ != nullptr && ptr_ != nullptr) owner_->release(ptr_, words_);
}

}  // namespace ht::backend
