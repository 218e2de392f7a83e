// AES-256 (FIPS 197) in counter mode: the fast expansion of public uniform
// polynomials (the `a` halves of keys and symmetric ciphertexts) from a
// 32-byte seed. The seeds come from the ChaCha20 stream of core/prng.hpp,
// itself keyed by the OS CSPRNG; what AES adds is speed (AES-NI, about
// an order of magnitude over the scalar ChaCha20 here), so that compact keys can regenerate their
// `a` halves at every key switch.
//
// Counter block (16 bytes): block index (u64, little endian) | stream id
// (u32, the prime index of the limb) | the tag "htA1". Every (seed, limb,
// block) gets its own counter, so limbs expand independently and in parallel.
// The portable path and the AES-NI path give the same bytes (tested).
#pragma once
#include <array>

#include "core/defs.hpp"

namespace ht {

// Which code computes AES: the fastest the CPU has (VAES, then AES-NI), AES-NI
// at most, or the portable C++ (tests compare them; all give the same bytes).
enum class AesPath { kPortable, kAesNi, kBest };

struct Aes256 {
  std::array<std::uint8_t, 240> round_keys{};  // 15 round keys, FIPS 197 byte order
  explicit Aes256(const std::array<u32, 8>& key);
  ~Aes256();
  // One block (the FIPS 197 known-answer tests use it).
  void encrypt_block(const std::uint8_t in[16], std::uint8_t out[16]) const;
  // words[2k], words[2k + 1] = AES(counter block of index start + k), as two
  // little-endian u64, for k < count.
  void ctr_words(u32 stream, u64 start, u64 count, u64* words, AesPath path = AesPath::kBest) const;
};

// True when the CPU has AES-NI and HETENSOR_SIMD is not "0" (VAES is used too where present).
bool aes_ni_enabled();

// out[k], k < n: uniform in [0, q) from the AES-CTR stream `stream` of `key`
// (Lemire's multiply-and-reject: unbiased, one product per word).
void uniform_mod_q(const Aes256& key, u32 stream, u64 q, u64* out, u64 n);

}  // namespace ht
