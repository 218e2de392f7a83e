#include "core/prng.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ht {

namespace {
inline u32 rotl(u32 x, int r) { return (x << r) | (x >> (32 - r)); }
inline void quarter(u32& a, u32& b, u32& c, u32& d) {
  a += b; d ^= a; d = rotl(d, 16);
  c += d; b ^= c; b = rotl(b, 12);
  a += b; d ^= a; d = rotl(d, 8);
  c += d; b ^= c; b = rotl(b, 7);
}
}  // namespace

std::array<u32, 8> os_random_key() {
  std::array<u32, 8> key{};
  unsigned char* p = reinterpret_cast<unsigned char*>(key.data());
  size_t got = 0;
  while (got < sizeof(key)) {
    const ssize_t r = getrandom(p + got, sizeof(key) - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed: the OS CSPRNG is unavailable");
    }
    got += static_cast<size_t>(r);
  }
  return key;
}

Prng::Prng() : key_(os_random_key()) {}
Prng::Prng(const std::array<u32, 8>& key) : key_(key) {}
Prng::~Prng() {
  volatile u32* k = key_.data();
  for (int i = 0; i < 8; ++i) k[i] = 0;
  volatile u32* b = block_.data();
  for (int i = 0; i < 16; ++i) b[i] = 0;
}

Prng Prng::from_seed(u64 seed) {
  std::array<u32, 8> k{};
  k[0] = static_cast<u32>(seed);
  k[1] = static_cast<u32>(seed >> 32);
  k[2] = 0x68657465;  // "hete": domain separation from OS-keyed streams
  Prng expand(k);
  std::array<u32, 8> key{};
  for (auto& w : key) w = expand.next_u32();
  return Prng(key);
}

void Prng::refill() {
  static const u32 c[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
  u32 in[16] = {c[0], c[1], c[2], c[3], key_[0], key_[1], key_[2], key_[3], key_[4], key_[5], key_[6], key_[7],
                static_cast<u32>(counter_), static_cast<u32>(counter_ >> 32), 0, 0};
  u32 x[16];
  std::memcpy(x, in, sizeof(x));
  for (int i = 0; i < 10; ++i) {
    quarter(x[0], x[4], x[8], x[12]);
    quarter(x[1], x[5], x[9], x[13]);
    quarter(x[2], x[6], x[10], x[14]);
    quarter(x[3], x[7], x[11], x[15]);
    quarter(x[0], x[5], x[10], x[15]);
    quarter(x[1], x[6], x[11], x[12]);
    quarter(x[2], x[7], x[8], x[13]);
    quarter(x[3], x[4], x[9], x[14]);
  }
  for (int i = 0; i < 16; ++i) block_[i] = x[i] + in[i];
  ++counter_;
  pos_ = 0;
}

u32 Prng::next_u32() {
  if (pos_ >= 16) refill();
  return block_[pos_++];
}

u64 Prng::next_u64() {
  const u64 lo = next_u32();
  return lo | (static_cast<u64>(next_u32()) << 32);
}

std::array<u32, 8> Prng::next_key() {
  std::array<u32, 8> k{};
  for (auto& w : k) w = next_u32();
  return k;
}

Prng Prng::fork() { return Prng(next_key()); }

}  // namespace ht
