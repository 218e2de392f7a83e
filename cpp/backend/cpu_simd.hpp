// The process-wide choice between the SIMD kernels of the CPU backend (the
// AVX2 NTT of cpu_ntt_avx2, the FMA key-switching dot product of cpu_dot,
// the AVX2 add/sub of cpu_add) and the portable ones: SIMD where the CPU has
// AVX2 and FMA, unless HETENSOR_SIMD=0. Both give canonical residues, so the
// paths agree bit for bit (the tests run both).
#pragma once

namespace ht::cpu {

// False forces the portable kernels (tests compare the paths); true takes the
// SIMD ones only where the CPU has them.
void set_simd_enabled(bool enabled);
bool simd_enabled();

}  // namespace ht::cpu
