// The CUDA implementation of backend::Backend (cpp/backend/backend.hpp) for
// one device: memory from the device's stream-ordered pool (cudaMallocAsync
// on the backend's stream, released to the pool, not to the driver), every op
// a grid-stride launch of the shared HT_HD bodies on that stream, NTT twiddle
// tables uploaded once per prime and kept resident. Whole key switches
// (key_switch) run as the fused passes of backend/switch_fused.hpp over every
// ciphertext and rotation of the call, with the level's switching constants
// and the Galois permutations resident; keys are read from their base
// pointers. Data pointers are device pointers; the coarse ops' constants and
// pointer lists, and a key switch's job and target lists, come from the host
// and are staged in small per-call pool arrays. Ops are stream-ordered
// (asynchronous to the host); download() and synchronize() wait. Results
// are meant to be bit-identical to the CPU backend: tests/test_backend.py,
// test_fused_switch.py and test_resident*.py compare them where a GPU exists.
// No GPU was lent while this was written: it is compiled (sm_80, sm_90), not
// yet run; the fused passes' arithmetic is checked on the CPU
// (backend/cpu_switch.cpp runs the same bodies).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.hpp"
#include "backend/kernels/automorphism.hpp"
#include "backend/kernels/basis.hpp"
#include "backend/kernels/elementwise.hpp"
#include "backend/kernels/keyswitch.hpp"
#include "backend/kernels/ntt.hpp"
#include "backend/kernels/switch.hpp"
#include "backend/switch_fused.hpp"
#include "backend/switch_sequence.hpp"
#include "core/error.hpp"
#include "core/numth.hpp"
#include "core/rns.hpp"
#include "cuda_api.hpp"
#include "cuda_stream.cuh"
#include "device_buffer.cuh"
#include "launch.cuh"
#include "limb_bodies.cuh"

namespace ht::cuda {
namespace {

using kernels::NttView;

constexpr int kMaxConvertSources = 64;  // scratch per thread of basis_convert

// -- kernel bodies over limb lists (the common index maps are in limb_bodies.cuh) ----------

struct CenteredBody {
  u64* const* out;
  const u64* const* in;
  u64 p;
  const Modulus* moduli;
  u64 n;
  __device__ void operator()(u64 idx) const {
    const u64 i = idx / n, k = idx - i * n;
    out[i][k] = kernels::centered_mod(in[i][k], p, moduli[i]);
  }
};

template <bool Exact>
struct ConvertBody {
  kernels::BasisConvView view;  // device pointers
  const u64* const* src;
  u64* const* dst;
  __device__ void operator()(u64 k) const {
    u64 y[kMaxConvertSources];
    kernels::basis_convert_block<1, Exact>(view, src, dst, y, k);
  }
};

struct DotBody {
  u64* out0;
  u64* out1;
  const u64* const* d;
  const u64* const* kb;
  const u64* const* ka;
  int terms;
  Modulus m;
  __device__ void operator()(u64 k) const { kernels::key_switch_dot(out0, out1, d, kb, ka, terms, m, k); }
};

template <bool Accumulate>
struct SubMulTablesBody {  // the ModDown tail after the NTT of conv (ntt_sub_mul_const)
  u64* const* out;
  const u64* const* x;
  const u64* const* conv;
  const ShoupConst* inv;
  const NttView* views;
  u64 n;
  __device__ void operator()(u64 idx) const {
    const u64 i = idx / n, k = idx - i * n;
    if constexpr (Accumulate) kernels::sub_mul_const_add(out[i], x[i], conv[i], inv[i], views[i].q, k);
    else kernels::sub_mul_const(out[i], x[i], conv[i], inv[i], views[i].q, k);
  }
};

struct InnerBody {  // key_switch_inner: one thread per (limb, coefficient)
  u64* const* out0;
  u64* const* out1;
  const u64* const* d;
  const u64* const* kb;
  const u64* const* ka;
  int terms;
  const u32* perm;
  const Modulus* moduli;
  u64 n;
  __device__ void operator()(u64 idx) const {
    const u64 i = idx / n;
    kernels::key_switch_inner(out0, out1, d, kb, ka, terms, perm, moduli[i], i, idx - i * n);
  }
};

// The launcher of backend/switch_fused.hpp on one stream.
struct GpuLaunch {
  cudaStream_t stream;
  const NttView* views;  // device, [ext limbs] of the switch's level
  template <class Body>
  void for_each(u64 count, const Body& body) {
    ht::cuda::for_each(count, body, stream);
  }
  void ntt(const kernels::LimbGrid& g, u64 limbs, bool inverse) {
    ntt_launch(LimbGridSource{g, views}, g.n, limbs, inverse, stream);
  }
};

// Scratch of one fused key-switch launch group at most (more jobs than fit
// run in several groups; one job always runs).
constexpr u64 kSwitchScratchWords = u64(1) << 27;  // 1 GiB

// -- the backend ------------------------------------------------------------------------------

class CudaBackend final : public backend::Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    require_device("create a CUDA backend");
    int count = 0;
    HT_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (device < 0 || device >= count)
      fail("create a CUDA backend", "device " + std::to_string(device) + " does not exist (" +
                                        std::to_string(count) + " devices)");
    HT_CUDA_CHECK(cudaSetDevice(device_));
    HT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    // Keep freed blocks in the pool: no cudaMalloc on the hot path.
    cudaMemPool_t pool;
    HT_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_));
    std::uint64_t keep = UINT64_MAX;
    HT_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  }
  ~CudaBackend() override {
    tables_.clear();
    switches_.clear();
    perms_.clear();
    if (stream_ != nullptr) {
      (void)cudaStreamSynchronize(stream_);
      (void)cudaStreamDestroy(stream_);
    }
  }

  backend::Device device() const override { return backend::Device{backend::DeviceKind::cuda, device_}; }

  backend::DeviceBuffer allocate(std::size_t words) override {
    if (words == 0) return backend::DeviceBuffer(this, nullptr, 0);
    select();
    void* p = nullptr;
    HT_CUDA_CHECK(cudaMallocAsync(&p, words * sizeof(u64), stream_));
    return backend::DeviceBuffer(this, static_cast<u64*>(p), words);
  }
  void release(u64* ptr, std::size_t) noexcept override {
    if (ptr != nullptr && cudaFreeAsync(ptr, stream_) != cudaSuccess) (void)cudaGetLastError();
  }
  void upload(u64* dst, const u64* host, std::size_t words) override {
    if (words == 0) return;
    select();
    HT_CUDA_CHECK(cudaMemcpyAsync(dst, host, words * sizeof(u64), cudaMemcpyHostToDevice, stream_));
    synchronize();  // the host buffer may be reused as soon as this returns
  }
  void download(u64* host, const u64* src, std::size_t words) override {
    if (words == 0) return;
    select();
    HT_CUDA_CHECK(cudaMemcpyAsync(host, src, words * sizeof(u64), cudaMemcpyDeviceToHost, stream_));
    synchronize();
  }
  void copy(u64* dst, const u64* src, std::size_t words) override {
    if (words == 0) return;
    select();
    HT_CUDA_CHECK(cudaMemcpyAsync(dst, src, words * sizeof(u64), cudaMemcpyDeviceToDevice, stream_));
  }
  void synchronize() override { HT_CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  void zero(u64* dst, std::size_t words) override {
    if (words == 0) return;
    select();
    HT_CUDA_CHECK(cudaMemsetAsync(dst, 0, words * sizeof(u64), stream_));
  }

  void ntt_forward(u64* const* limbs, const NttTables* const* tables, std::size_t count) override {
    transform(limbs, tables, count, false);
  }
  void ntt_inverse(u64* const* limbs, const NttTables* const* tables, std::size_t count) override {
    transform(limbs, tables, count, true);
  }

  void elementwise(backend::Elementwise op, u64* out, const u64* a, const u64* b, const Modulus* moduli,
                   std::size_t count, u64 n) override {
    if (count == 0 || n == 0) return;
    select();
    auto dm = staged(moduli, count);
    elementwise_launch(op, out, a, b, dm.data(), count, n, stream_);
  }

  void mul_const(u64* const* out, const u64* const* a, const ShoupConst* w, const u64* q, std::size_t count,
                 u64 n) override {
    per_limb<kernels::mul_const_limb>(count, n, out, a, w, q);
  }

  void centered_reduce(u64* const* out, const u64* const* in, u64 p, const Modulus* moduli, std::size_t count,
                       u64 n) override {
    if (count == 0 || n == 0) return;
    select();
    auto po = staged(out, count);
    auto pi = staged(in, count);
    auto pm = staged(moduli, count);
    for_each(count * n, CenteredBody{po.data(), pi.data(), p, pm.data(), n}, stream_);
  }

  void automorphism(u64* out, const u64* in, const u32* perm, std::size_t count, u64 n) override {
    if (count == 0 || n == 0) return;
    for (u64 k = 0; k < n; ++k)  // an out-of-range index would poison the CUDA context
      if (perm[k] >= n) fail("automorphism", "permutation entry " + std::to_string(perm[k]) + " is not < n");
    select();
    auto dp = staged(perm, n);
    for_each(count * n, AutomorphismBody{out, in, dp.data(), n}, stream_);
  }

  void basis_convert(const kernels::BasisConvView& v, const u64* const* src, u64* const* dst, u64 n,
                     bool exact) override {
    if (v.nsrc > kMaxConvertSources) fail("basis_convert", "at most 64 source limbs on CUDA");
    if (n == 0 || v.ndst == 0) return;
    select();
    const std::size_t ns = v.nsrc, nd = v.ndst;
    auto q = staged(v.src_q, ns);
    auto qi = staged(v.qhat_inv, ns);
    auto qm = staged(v.qhat_mod, ns * nd);
    auto dm = staged(v.dst_mod, nd);
    auto si = staged(v.src_inv, ns);
    auto np = staged(v.neg_prod_mod, nd);
    auto ps = staged(src, ns);
    auto pd = staged(dst, nd);
    const kernels::BasisConvView dv{v.nsrc, v.ndst, q.data(), qi.data(), qm.data(), dm.data(), si.data(), np.data()};
    if (exact) for_each(n, ConvertBody<true>{dv, ps.data(), pd.data()}, stream_);
    else for_each(n, ConvertBody<false>{dv, ps.data(), pd.data()}, stream_);
  }

  void key_switch_dot(u64* out0, u64* out1, const u64* const* d, const u64* const* kb, const u64* const* ka,
                      int terms, u64 n, const Modulus& m) override {
    if (terms < 1 || terms > 32) fail("key_switch_dot", "terms must be in [1, 32]");
    select();
    auto pd = staged(d, terms);
    auto pb = staged(kb, terms);
    auto pa = staged(ka, terms);
    for_each(n, DotBody{out0, out1, pd.data(), pb.data(), pa.data(), terms, m}, stream_);
  }

  void sub_mul_const(u64* const* out, const u64* const* a, const u64* const* b, const ShoupConst* inv, const u64* q,
                     std::size_t count, u64 n) override {
    per_limb<kernels::sub_mul_const>(count, n, out, a, b, inv, q);
  }

  void key_switch_inner(u64* const* out0, u64* const* out1, const u64* const* d, const u64* const* kb,
                        const u64* const* ka, int terms, const u32* perm, const Modulus* moduli, std::size_t count,
                        u64 n) override {
    if (terms < 1 || terms > 32) fail("key_switch_inner", "terms must be in [1, 32]");
    if (count == 0 || n == 0) return;
    if (perm != nullptr)  // an out-of-range index would poison the CUDA context
      for (u64 k = 0; k < n; ++k)
        if (perm[k] >= n) fail("key_switch_inner", "permutation entry " + std::to_string(perm[k]) + " is not < n");
    select();
    const std::size_t t = count * static_cast<std::size_t>(terms);
    auto p0 = staged(out0, count);
    auto p1 = staged(out1, count);
    auto pd = staged(d, t);
    auto pb = staged(kb, t);
    auto pa = staged(ka, t);
    auto pm = staged(moduli, count);
    Staged<u32> pp(perm, perm != nullptr ? n : 0, stream_);
    for_each(count * n, InnerBody{p0.data(), p1.data(), pd.data(), pb.data(), pa.data(), terms,
                                  perm != nullptr ? pp.data() : nullptr, pm.data(), n}, stream_);
  }

  void ntt_sub_mul_const(u64* const* out, const u64* const* x, u64* const* conv, const ShoupConst* inv,
                         const NttTables* const* tables, std::size_t count, u64 n, bool accumulate) override {
    if (count == 0 || n == 0) return;
    transform(conv, tables, count, false);
    std::vector<NttView> views(count);
    for (std::size_t i = 0; i < count; ++i) views[i] = resident(*tables[i]);
    auto po = staged(out, count);
    auto px = staged(x, count);
    auto pc = staged(conv, count);
    auto pi = staged(inv, count);
    auto pv = staged(views.data(), count);
    if (accumulate)
      for_each(count * n, SubMulTablesBody<true>{po.data(), px.data(), pc.data(), pi.data(), pv.data(), n}, stream_);
    else
      for_each(count * n, SubMulTablesBody<false>{po.data(), px.data(), pc.data(), pi.data(), pv.data(), n}, stream_);
  }

  void mul_const_add(u64* const* out, const u64* const* a, const ShoupConst* w, const u64* q, std::size_t count,
                     u64 n) override {
    per_limb<kernels::mul_const_add_limb>(count, n, out, a, w, q);
  }

  void add_const(u64* const* out, const u64* const* a, const u64* c, const u64* q, std::size_t count,
                 u64 n) override {
    per_limb<kernels::add_const_limb>(count, n, out, a, c, q);
  }

  // The fused passes of backend/switch_fused.hpp over every job and target,
  // the level's constants and NTT views resident (first use of the level),
  // Galois permutations resident by element, keys read from their base
  // pointers: per call, only the job and target lists are staged.
  void key_switch(const backend::SwitchConstants& c, const backend::SwitchJob* jobs, std::size_t count,
                  bool rescale) override {
    backend::check_switch(c, jobs, count, rescale);
    if (count == 0) return;
    int widest = c.alpha + 1;
    for (int j = 0; j < c.digits; ++j) widest = std::max(widest, c.digit_end[j] - c.digit_begin[j]);
    if (widest > kernels::kMaxSwitchSources) fail("key switch", "at most 64 limbs per digit on CUDA");
    select();
    const ResidentSwitch& rc = resident_switch(c);
    for (std::size_t j0 = 0; j0 < count;) {
      u64 words = backend::fused::scratch_words(c, jobs[j0].targets.size(), rescale);
      std::size_t j1 = j0 + 1;
      while (j1 < count) {
        const u64 more = backend::fused::scratch_words(c, jobs[j1].targets.size(), rescale);
        if (words + more > kSwitchScratchWords) break;
        words += more;
        ++j1;
      }
      switch_group(c, rc, jobs + j0, j1 - j0, rescale, words);
      j0 = j1;
    }
  }

 private:
  // One prime's twiddles on the device, uploaded on first use.
  struct Resident {
    DeviceBuffer<ShoupConst> psi_rev, ipsi_rev;
    NttView view;
  };

  void select() const { HT_CUDA_CHECK(cudaSetDevice(device_)); }


  // Constants and pointer lists of one call, copied in stream order into
  // pool memory that goes back to the pool in stream order.
  template <class T>
  class Staged {
   public:
    Staged(const T* host, std::size_t count, cudaStream_t s) : stream_(s) {
      if (count == 0) return;
      HT_CUDA_CHECK(cudaMallocAsync(&ptr_, count * sizeof(T), s));
      HT_CUDA_CHECK(cudaMemcpyAsync(ptr_, host, count * sizeof(T), cudaMemcpyHostToDevice, s));
    }
    Staged(const Staged&) = delete;
    Staged& operator=(const Staged&) = delete;
    ~Staged() {
      if (ptr_ != nullptr && cudaFreeAsync(ptr_, stream_) != cudaSuccess) (void)cudaGetLastError();
    }
    T* data() const { return static_cast<T*>(ptr_); }

   private:
    void* ptr_ = nullptr;
    cudaStream_t stream_;
  };

  template <class T>
  Staged<T> staged(const T* host, std::size_t count) {
    return Staged<T>(host, count, stream_);
  }

  // Kernel(lists[0][i], ..., k) over `count` limbs of n words (PerLimb), the
  // host lists staged for the call.
  template <auto Kernel, class... T>
  void per_limb(std::size_t count, u64 n, const T*... lists) {
    if (count == 0 || n == 0) return;
    select();
    launch_per_limb<Kernel>(count, n, Staged<T>(lists, count, stream_)...);
  }
  template <auto Kernel, class... T>
  void launch_per_limb(std::size_t count, u64 n, const Staged<T>&... lists) {
    for_each(count * n, PerLimb<Kernel, T...>{{lists.data()...}, n}, stream_);
  }

  // A level's switching constants on the device (kernels::SwitchConstView)
  // and the NTT views of its ext limbs, uploaded once per SwitchConstants.
  struct ResidentSwitch {
    std::vector<DeviceBuffer<u64>> store;
    kernels::SwitchConstView view{};
    const NttView* views = nullptr;
  };

  template <class T>
  static const T* keep(std::vector<DeviceBuffer<u64>>& store, const T* host, std::size_t count) {
    if (count == 0) return nullptr;
    std::vector<u64> words((count * sizeof(T) + sizeof(u64) - 1) / sizeof(u64), 0);
    std::memcpy(words.data(), host, count * sizeof(T));
    store.emplace_back(words.data(), words.size());
    return reinterpret_cast<const T*>(store.back().data());
  }

  static kernels::BasisConvView keep_view(std::vector<DeviceBuffer<u64>>& store, const kernels::BasisConvView& v) {
    const std::size_t ns = static_cast<std::size_t>(v.nsrc), nd = static_cast<std::size_t>(v.ndst);
    if (ns == 0) return kernels::BasisConvView{};
    return kernels::BasisConvView{v.nsrc,          v.ndst,           keep(store, v.src_q, ns),
                                  keep(store, v.qhat_inv, ns),     keep(store, v.qhat_mod, ns * nd),
                                  keep(store, v.dst_mod, nd),      keep(store, v.src_inv, ns),
                                  keep(store, v.neg_prod_mod, nd)};
  }

  const ResidentSwitch& resident_switch(const backend::SwitchConstants& c) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = switches_.find(c.serial);
      if (it != switches_.end()) return it->second;
    }
    std::vector<NttView> views(c.tables.size());
    for (std::size_t e = 0; e < views.size(); ++e) views[e] = resident(*c.tables[e]);
    ResidentSwitch r;
    std::vector<kernels::BasisConvView> modup(c.modup.size());
    for (std::size_t j = 0; j < modup.size(); ++j) modup[j] = keep_view(r.store, c.modup[j]);
    r.view = kernels::SwitchConstView{c.n,
                                      c.level,
                                      c.alpha,
                                      c.digits,
                                      keep(r.store, c.digit_begin.data(), c.digit_begin.size()),
                                      keep(r.store, c.digit_end.data(), c.digit_end.size()),
                                      keep(r.store, c.moduli.data(), c.moduli.size()),
                                      keep(r.store, modup.data(), modup.size()),
                                      keep_view(r.store, c.moddown),
                                      keep(r.store, c.p_inv.data(), c.p_inv.size()),
                                      keep(r.store, c.p_mod.data(), c.p_mod.size()),
                                      keep_view(r.store, c.moddown_rescale),
                                      keep(r.store, c.pq_inv.data(), c.pq_inv.size())};
    r.views = keep(r.store, views.data(), views.size());
    HT_CUDA_CHECK(cudaDeviceSynchronize());  // the uploads ran on the legacy stream
    std::lock_guard<std::mutex> lock(mutex_);
    return switches_.emplace(c.serial, std::move(r)).first->second;  // a racing twin keeps the first
  }

  // perm (host, n entries) on the device: resident by (n, galois_elt), or
  // staged into `held` for this call when the element is not given.
  const u32* device_perm(const u32* perm, u64 galois_elt, u64 n, std::vector<std::unique_ptr<Staged<u32>>>& held) {
    if (perm == nullptr) return nullptr;
    const auto key = std::make_pair(n, galois_elt);
    if (galois_elt != 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = perms_.find(key);
      if (it != perms_.end()) return it->second.data();
    }
    for (u64 k = 0; k < n; ++k)  // an out-of-range index would poison the CUDA context
      if (perm[k] >= n) fail("key switch", "permutation entry " + std::to_string(perm[k]) + " is not < n");
    if (galois_elt == 0) {
      held.push_back(std::make_unique<Staged<u32>>(perm, n, stream_));
      return held.back()->data();
    }
    DeviceBuffer<u32> copy(perm, n);
    HT_CUDA_CHECK(cudaDeviceSynchronize());
    std::lock_guard<std::mutex> lock(mutex_);
    return perms_.emplace(key, std::move(copy)).first->second.data();
  }

  void switch_group(const backend::SwitchConstants& c, const ResidentSwitch& rc, const backend::SwitchJob* jobs,
                    std::size_t count, bool rescale, u64 words) {
    std::vector<const u64*> d(count);
    std::vector<kernels::SwitchTargetView> targets;
    std::vector<std::unique_ptr<Staged<u32>>> held;
    for (std::size_t j = 0; j < count; ++j) {
      d[j] = jobs[j].d;
      for (const backend::SwitchTarget& t : jobs[j].targets)
        targets.push_back(backend::fused::target_view(t, j, device_perm(t.perm, t.galois_elt, c.n, held)));
    }
    backend::DeviceBuffer block = allocate(words);
    auto pd = staged(d.data(), d.size());
    auto pt = staged(targets.data(), targets.size());
    kernels::SwitchScratch s = backend::fused::carve(c, block.data(), count, targets.size(), rescale);
    s.d = pd.data();
    s.targets = pt.data();
    GpuLaunch launch{stream_, rc.views};
    backend::fused::run(launch, rc.view, s, count, targets.size());
  }

  const NttView& resident(const NttTables& t) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto key = std::make_pair(t.mod.value, t.n);
    auto it = tables_.find(key);
    if (it == tables_.end()) {
      if (t.psi_rev.size() != t.n || t.ipsi_rev.size() != t.n) fail("ntt", "incomplete NTT tables");
      Resident r{DeviceBuffer<ShoupConst>(t.psi_rev.data(), t.n), DeviceBuffer<ShoupConst>(t.ipsi_rev.data(), t.n),
                 NttView{}};
      r.view = NttView{t.mod.value, r.psi_rev.data(), r.ipsi_rev.data(), t.n_inv, t.n};
      // The uploads ran on the legacy stream, which our non-blocking stream does not wait for.
      HT_CUDA_CHECK(cudaDeviceSynchronize());
      it = tables_.emplace(key, std::move(r)).first;
    }
    return it->second.view;
  }

  void transform(u64* const* limbs, const NttTables* const* tables, std::size_t count, bool inverse) {
    if (count == 0) return;
    const u64 n = tables[0]->n;
    if (n < 2 || (n & (n - 1)) != 0) fail("ntt", "n must be a power of two >= 2");
    select();
    std::vector<NttView> views(count);
    for (std::size_t i = 0; i < count; ++i) {
      if (tables[i]->n != n) fail("ntt", "all limbs of one call must share n");
      views[i] = resident(*tables[i]);
    }
    auto dv = staged(views.data(), count);
    auto dl = staged(limbs, count);
    ntt_launch(LimbList{dl.data(), dv.data(), n}, n, count, inverse, stream_);
  }

  friend cudaStream_t ht::cuda::stream_of(backend::Backend&);

  int device_;
  cudaStream_t stream_ = nullptr;
  std::mutex mutex_;
  std::map<std::pair<u64, u64>, Resident> tables_;
  std::map<u64, ResidentSwitch> switches_;                 // by SwitchConstants::serial
  std::map<std::pair<u64, u64>, DeviceBuffer<u32>> perms_;  // by (n, galois element)
};

}  // namespace

std::unique_ptr<backend::Backend> make_backend(int device) { return std::make_unique<CudaBackend>(device); }

cudaStream_t stream_of(backend::Backend& be) {
  auto* cuda = dynamic_cast<CudaBackend*>(&be);
  if (cuda == nullptr) fail("stream_of", "not a CUDA backend");
  return cuda->stream_;
}

}  // namespace ht::cuda
