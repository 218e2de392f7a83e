#include "core/aes.hpp"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HT_HAVE_AESNI 1
#endif

namespace ht {

namespace {
using u8 = std::uint8_t;

u8 xtime(u8 x) { return static_cast<u8>((x << 1) ^ ((x & 0x80) ? 0x1b : 0)); }

u8 gf_mul(u8 a, u8 b) {
  u8 r = 0;
  for (; b; b >>= 1, a = xtime(a))
    if (b & 1) r ^= a;
  return r;
}

// The S-box from its definition: inversion in GF(2^8) then the affine map.
struct SBox {
  u8 s[256];
  SBox() {
    for (int x = 0; x < 256; ++x) {
      u8 inv = 0;
      for (int y = 1; y < 256 && x; ++y)
        if (gf_mul(static_cast<u8>(x), static_cast<u8>(y)) == 1) { inv = static_cast<u8>(y); break; }
      u8 b = inv, r = inv;
      for (int k = 1; k <= 4; ++k) r ^= static_cast<u8>((b << k) | (b >> (8 - k)));
      s[x] = static_cast<u8>(r ^ 0x63);
    }
  }
};
const SBox& sbox() {
  static const SBox box;
  return box;
}

constexpr u32 kTag = 0x31417468;  // "htA1" little endian: these counters are ours alone

void counter_block(u32 stream, u64 index, u8 out[16]) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<u8>(index >> (8 * i));
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<u8>(stream >> (8 * i));
  for (int i = 0; i < 4; ++i) out[12 + i] = static_cast<u8>(kTag >> (8 * i));
}

u64 load_le(const u8* p) {
  u64 v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

#ifdef HT_HAVE_AESNI
bool cpu_has_aesni() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
}

__attribute__((target("aes,sse4.1"))) void ctr_ni(const u8* rk_bytes, u32 stream, u64 start, u64 count,
                                                   u64* words);

// VAES (two blocks per instruction in a ymm register): CPUID leaf 7 ECX bit 9,
// with AVX2 usable (libgcc's table does not report it on every compiler).
bool cpu_has_vaes() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2")) return false;
  unsigned a = 0, b = 0, c = 0, d = 0;
  __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
  return (c >> 9) & 1;
}

__attribute__((target("vaes,avx2"))) void ctr_vaes(const u8* rk_bytes, u32 stream, u64 start, u64 count,
                                                   u64* words) {
  __m256i rk[15];
  for (int r = 0; r < 15; ++r)
    rk[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rk_bytes + 16 * r)));
  const long long hi = static_cast<long long>(static_cast<u64>(stream) | (static_cast<u64>(kTag) << 32));
  u64 k = 0;
  for (; k + 16 <= count; k += 16) {
    __m256i x[8];
    for (int b = 0; b < 8; ++b) {
      const long long lo = static_cast<long long>(start + k + 2 * b);
      x[b] = _mm256_xor_si256(_mm256_set_epi64x(hi, lo + 1, hi, lo), rk[0]);
    }
    for (int r = 1; r < 14; ++r)
      for (int b = 0; b < 8; ++b) x[b] = _mm256_aesenc_epi128(x[b], rk[r]);
    for (int b = 0; b < 8; ++b)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(words + 2 * (k + 2 * b)), _mm256_aesenclast_epi128(x[b], rk[14]));
  }
  if (k < count) ctr_ni(rk_bytes, stream, start + k, count - k, words + 2 * k);
}

__attribute__((target("aes,sse4.1"))) void ctr_ni(const u8* rk_bytes, u32 stream, u64 start, u64 count, u64* words) {
  __m128i rk[15];
  for (int r = 0; r < 15; ++r) rk[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rk_bytes + 16 * r));
  const long long hi = static_cast<long long>(static_cast<u64>(stream) | (static_cast<u64>(kTag) << 32));
  u64 k = 0;
  for (; k + 8 <= count; k += 8) {
    __m128i x[8];
    for (int b = 0; b < 8; ++b)
      x[b] = _mm_xor_si128(_mm_set_epi64x(hi, static_cast<long long>(start + k + b)), rk[0]);
    for (int r = 1; r < 14; ++r)
      for (int b = 0; b < 8; ++b) x[b] = _mm_aesenc_si128(x[b], rk[r]);
    for (int b = 0; b < 8; ++b)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(words + 2 * (k + b)), _mm_aesenclast_si128(x[b], rk[14]));
  }
  for (; k < count; ++k) {
    __m128i x = _mm_xor_si128(_mm_set_epi64x(hi, static_cast<long long>(start + k)), rk[0]);
    for (int r = 1; r < 14; ++r) x = _mm_aesenc_si128(x, rk[r]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(words + 2 * k), _mm_aesenclast_si128(x, rk[14]));
  }
}
#endif
}  // namespace

bool aes_ni_enabled() {
#ifdef HT_HAVE_AESNI
  static const bool on = [] {
    const char* env = std::getenv("HETENSOR_SIMD");
    return !(env && std::strcmp(env, "0") == 0) && cpu_has_aesni();
  }();
  return on;
#else
  return false;
#endif
}

namespace {
bool vaes_enabled() {
#ifdef HT_HAVE_AESNI
  static const bool on = aes_ni_enabled() && cpu_has_vaes();
  return on;
#else
  return false;
#endif
}
}  // namespace

Aes256::Aes256(const std::array<u32, 8>& key) {
  const u8* s = sbox().s;
  u8* w = round_keys.data();
  for (int i = 0; i < 8; ++i)
    for (int b = 0; b < 4; ++b) w[4 * i + b] = static_cast<u8>(key[i] >> (8 * b));
  u8 rcon = 1;
  for (int i = 8; i < 60; ++i) {
    u8 t[4];
    std::memcpy(t, w + 4 * (i - 1), 4);
    if (i % 8 == 0) {
      const u8 t0 = t[0];
      t[0] = static_cast<u8>(s[t[1]] ^ rcon);
      t[1] = s[t[2]];
      t[2] = s[t[3]];
      t[3] = s[t0];
      rcon = xtime(rcon);
    } else if (i % 8 == 4) {
      for (u8& v : t) v = s[v];
    }
    for (int b = 0; b < 4; ++b) w[4 * i + b] = static_cast<u8>(w[4 * (i - 8) + b] ^ t[b]);
  }
}

Aes256::~Aes256() {
  volatile u8* p = round_keys.data();  // a seed may be secret to whoever holds it
  for (size_t i = 0; i < round_keys.size(); ++i) p[i] = 0;
}

void Aes256::encrypt_block(const u8 in[16], u8 out[16]) const {
  const u8* s = sbox().s;
  u8 st[16];
  for (int i = 0; i < 16; ++i) st[i] = static_cast<u8>(in[i] ^ round_keys[i]);
  for (int round = 1; round <= 14; ++round) {
    u8 t[16];
    // SubBytes and ShiftRows: byte r + 4c takes row r of column c + r.
    for (int c = 0; c < 4; ++c)
      for (int r = 0; r < 4; ++r) t[r + 4 * c] = s[st[r + 4 * ((c + r) % 4)]];
    if (round < 14) {
      for (int c = 0; c < 4; ++c) {  // MixColumns
        const u8 a0 = t[4 * c], a1 = t[4 * c + 1], a2 = t[4 * c + 2], a3 = t[4 * c + 3];
        const u8 all = static_cast<u8>(a0 ^ a1 ^ a2 ^ a3);
        t[4 * c] = static_cast<u8>(a0 ^ all ^ xtime(static_cast<u8>(a0 ^ a1)));
        t[4 * c + 1] = static_cast<u8>(a1 ^ all ^ xtime(static_cast<u8>(a1 ^ a2)));
        t[4 * c + 2] = static_cast<u8>(a2 ^ all ^ xtime(static_cast<u8>(a2 ^ a3)));
        t[4 * c + 3] = static_cast<u8>(a3 ^ all ^ xtime(static_cast<u8>(a3 ^ a0)));
      }
    }
    for (int i = 0; i < 16; ++i) st[i] = static_cast<u8>(t[i] ^ round_keys[16 * round + i]);
  }
  std::memcpy(out, st, 16);
}

void Aes256::ctr_words(u32 stream, u64 start, u64 count, u64* words, AesPath path) const {
#ifdef HT_HAVE_AESNI
  if (path == AesPath::kBest && vaes_enabled()) {
    ctr_vaes(round_keys.data(), stream, start, count, words);
    return;
  }
  if (path != AesPath::kPortable && aes_ni_enabled()) {
    ctr_ni(round_keys.data(), stream, start, count, words);
    return;
  }
#endif
  (void)path;
  for (u64 k = 0; k < count; ++k) {
    u8 blk[16], out[16];
    counter_block(stream, start + k, blk);
    encrypt_block(blk, out);
    words[2 * k] = load_le(out);
    words[2 * k + 1] = load_le(out + 8);
  }
}

void uniform_mod_q(const Aes256& key, u32 stream, u64 q, u64* out, u64 n) {
  constexpr u64 kBlocks = 128;
  u64 buf[2 * kBlocks];
  const u64 reject_below = (0 - q) % q;  // 2^64 mod q
  u64 block = 0, pos = 2 * kBlocks;
  for (u64 k = 0; k < n;) {
    if (pos == 2 * kBlocks) {
      key.ctr_words(stream, block, kBlocks, buf);
      block += kBlocks;
      pos = 0;
    }
    const unsigned __int128 m = static_cast<unsigned __int128>(buf[pos++]) * q;
    if (static_cast<u64>(m) < reject_below) continue;  // keeps high(w q) exactly uniform
    out[k++] = static_cast<u64>(m >> 64);
  }
}

}  // namespace ht
