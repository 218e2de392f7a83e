// Cryptographic randomness: a ChaCha20 keystream (RFC 8439 block function)
// keyed from the OS CSPRNG (getrandom), or from a user seed for reproducible
// tests. Each Prng is one stream; fork() draws a fresh key for an independent
// stream so that parallel samplers never share counters.
#pragma once
#include <array>
#include <cstdint>

#include "core/defs.hpp"

namespace ht {

// The 32-byte key of a stream; a stored seed regenerates what the stream made.
using Seed = std::array<u32, 8>;

class Prng {
 public:
  Prng();                                  // key from the OS CSPRNG
  explicit Prng(const std::array<u32, 8>& key);
  static Prng from_seed(u64 seed);         // deterministic: tests and reproducibility only
  ~Prng();

  u64 next_u64();
  u32 next_u32();
  Prng fork();                             // independent stream, key drawn from this one
  std::array<u32, 8> next_key();           // 32 bytes of this stream: the key of a new stream

 private:
  void refill();
  std::array<u32, 8> key_{};
  u64 counter_ = 0;
  std::array<u32, 16> block_{};
  int pos_ = 16;
};

// 32 bytes from the operating system's CSPRNG.
std::array<u32, 8> os_random_key();

}  // namespace ht
