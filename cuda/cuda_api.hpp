// Host-callable entry points of the CUDA backend, for the bindings and tests.
// Plain C++ (no CUDA headers), so bindings/ compiles with the host compiler.
// Each batch call copies host arrays to the device, runs the shared HT_HD
// kernel bodies of backend/kernels/*.hpp, and copies the result back, so its
// output is bit-identical to the CPU launcher. Layout: limb-major [limbs][n].
// Errors (no device, CUDA failures) are thrown as std::runtime_error; bad
// shapes as ht::InvalidArgument. Nothing here exits or aborts.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "core/ntt_tables.hpp"

namespace ht::cuda {

// True only when a device is present and can run this build's kernels.
// Never throws: false without a driver, without a GPU, or for a GPU whose
// architecture the build has no code for.
bool available();
// Number of CUDA devices the driver reports; 0 without a driver.
int device_count();
// The name of device `device` (throws std::out_of_range for a bad index).
std::string device_name(int device);

// In place over `limbs` polynomials of n = tables[i].n residues in [0, q_i):
// forward NTT (natural -> bit-reversed order), inverse (bit-reversed ->
// natural, times N^-1). tables[i] belongs to limb i; all share one n.
void ntt_forward(u64* a, const NttTables* tables, std::size_t limbs);
void ntt_inverse(u64* a, const NttTables* tables, std::size_t limbs);

enum class ElementwiseOp { add, sub, mul };

// out[i][k] = a[i][k] op b[i][k] mod moduli[i], inputs reduced to [0, q_i).
// `out` may alias `a` or `b`.
void elementwise(ElementwiseOp op, u64* out, const u64* a, const u64* b, const Modulus* moduli,
                 std::size_t limbs, u64 n);

// NTT-domain automorphism: out[i][k] = in[i][perm[k]] for every limb, with
// perm from core/galois (galois_permutation_ntt). `out` must not alias `in`.
void automorphism_ntt(u64* out, const u64* in, const u32* perm, std::size_t limbs, u64 n);

// The backend::Backend of device `device` (cuda_backend.cu): stream-ordered
// pool memory, resident NTT tables. Throws when no such usable device exists.
std::unique_ptr<backend::Backend> make_backend(int device);

// Per-kernel times in milliseconds (CUDA events on the backend's stream, mean
// of `repeat` launches after one warm-up) over tables.size() limbs of one n,
// data resident on the device: ntt_forward, ntt_inverse, add, mul,
// automorphism, basis_convert (modup of one limb-digit to the rest),
// key_switch_dot (2 terms), sub_mul_const, and key_switch: one whole fused
// rotation key switch (one digit of tables.size() - 1 primes, the last as P;
// present when that digit has at most 64 primes).
std::map<std::string, double> time_kernels(int device, const std::vector<NttTables>& tables, int repeat);

}  // namespace ht::cuda
