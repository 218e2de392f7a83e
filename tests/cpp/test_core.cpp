// Unit tests of the core arithmetic against naive references computed with
// 128-bit integers: modular arithmetic (Barrett, Shoup, 128-bit sums), number
// theory, the negacyclic NTT (evaluation at odd powers of psi, round trip,
// products against the schoolbook negacyclic convolution, both CPU paths),
// RNS basis conversion against the CRT, Galois automorphisms (the NTT
// permutation against X -> X^g on coefficients) and the buffer pool's reuse
// of cached pages. No Python involved.
#include <algorithm>
#include <random>
#include <vector>

#include "backend/cpu_ntt.hpp"
#include "backend/cpu_ntt_avx2.hpp"
#include "backend/cpu_simd.hpp"
#include "backend/kernels/basis.hpp"
#include "core/galois.hpp"
#include "core/modarith.hpp"
#include "core/ntt_tables.hpp"
#include "core/numth.hpp"
#include "core/rns.hpp"
#include "runtime/allocator.hpp"
#include "check.hpp"

using namespace ht;

namespace {

std::mt19937_64& rng() {
  static std::mt19937_64 gen(20261205);
  return gen;
}
u64 uniform(u64 q) { return std::uniform_int_distribution<u64>(0, q - 1)(rng()); }

u64 naive_mul(u64 a, u64 b, u64 q) { return static_cast<u64>(static_cast<u128>(a) * b % q); }
u64 naive_pow(u64 b, u64 e, u64 q) {
  u64 r = 1 % q;
  for (; e; e >>= 1, b = naive_mul(b, b, q))
    if (e & 1) r = naive_mul(r, b, q);
  return r;
}

// NTT primes of 30, 45 and 60 bits for ring degree n.
std::vector<u64> test_primes(u64 n) {
  std::vector<u64> out;
  for (int bits : {30, 45, 60}) out.push_back(closest_ntt_prime(static_cast<double>(u64(1) << (bits - 1)) * 1.5, n, bits, out));
  return out;
}

std::vector<u64> random_poly(u64 n, u64 q) {
  std::vector<u64> a(n);
  for (auto& x : a) x = uniform(q);
  return a;
}

// a(X) * b(X) mod (X^n + 1, q), schoolbook.
std::vector<u64> negacyclic_product(const std::vector<u64>& a, const std::vector<u64>& b, u64 q) {
  const u64 n = a.size();
  std::vector<u64> c(n, 0);
  for (u64 i = 0; i < n; ++i)
    for (u64 j = 0; j < n; ++j) {
      const u64 p = naive_mul(a[i], b[j], q);
      const u64 k = (i + j) % n;
      c[k] = (i + j < n) ? (c[k] + p) % q : (c[k] + q - p) % q;
    }
  return c;
}

// a(x) mod q by Horner's rule.
u64 eval_at(const std::vector<u64>& a, u64 x, u64 q) {
  u64 r = 0;
  for (u64 i = a.size(); i-- > 0;) r = (naive_mul(r, x, q) + a[i]) % q;
  return r;
}

}  // namespace

// -- modular arithmetic ------------------------------------------------------------------

TEST_CASE("modarith: add, sub, neg, Barrett and Shoup products match 128-bit arithmetic") {
  for (u64 q : test_primes(1024)) {
    const Modulus m = make_modulus(q);
    std::vector<u64> edge = {0, 1, 2, q / 2, q - 2, q - 1};
    for (int t = 0; t < 2000; ++t) edge.push_back(uniform(q));
    for (size_t i = 0; i < edge.size(); ++i) {
      const u64 a = edge[i], b = edge[(i * 7 + 3) % edge.size()];
      CHECK_EQ(add_mod(a, b, q), static_cast<u64>((static_cast<u128>(a) + b) % q));
      CHECK_EQ(sub_mod(a, b, q), static_cast<u64>((static_cast<u128>(a) + q - b) % q));
      CHECK_EQ(neg_mod(a, q), (q - a) % q);
      CHECK_EQ(mul_mod(a, b, m), naive_mul(a, b, q));
      const ShoupConst w = make_shoup(b, q);
      CHECK_EQ(mul_shoup(a, w, q), naive_mul(a, b, q));
      // The lazy Shoup product takes any 64-bit input and returns [0, 2q).
      const u64 big = rng()();
      const u64 lazy = mul_shoup_lazy(big, w, q);
      CHECK(lazy < 2 * q);
      CHECK_EQ(lazy % q, static_cast<u64>(static_cast<u128>(big) * b % q));
    }
  }
}

TEST_CASE("modarith: Barrett reduction of 128-bit values and of 128-bit sums of products") {
  for (u64 q : test_primes(1024)) {
    const Modulus m = make_modulus(q);
    for (int t = 0; t < 5000; ++t) {
      const u64 hi = rng()() >> 1, lo = rng()();  // below 2^127
      const u128 x = (static_cast<u128>(hi) << 64) | lo;
      CHECK_EQ(barrett_reduce_128(hi, lo, m), static_cast<u64>(x % q));
      CHECK_EQ(reduce_u64(lo, m), lo % q);
    }
    // The key-switching / basis-conversion accumulator: 64 products of residues.
    Acc128 acc;
    u128 want = 0;
    for (int i = 0; i < 64; ++i) {
      const u64 a = uniform(q), b = uniform(q);
      acc.mul_add(a, b);
      want += static_cast<u128>(a) * b;
    }
    CHECK_EQ(reduce_acc(acc, m), static_cast<u64>(want % q));
  }
}

TEST_CASE("numth: primes, powers, inverses, roots and the NTT prime search") {
  for (u64 p : {2ull, 3ull, 65537ull, 2147483647ull, 1000000007ull, 2305843009213693951ull}) CHECK(is_prime(p));
  // 561 and 41041 are Carmichael numbers; 3215031751 is a strong pseudoprime to bases 2, 3, 5, 7.
  for (u64 c : {0ull, 1ull, 4ull, 561ull, 41041ull, 3215031751ull, 1000000007ull * 998244353ull}) CHECK(!is_prime(c));
  CHECK_THROWS(make_modulus(65537));               // below 2^20
  CHECK_THROWS(make_modulus(u64(1) << 61));         // at or above 2^61
  for (u64 n : {u64(16), u64(1) << 12}) {
    for (u64 q : test_primes(n)) {
      CHECK(is_prime(q));
      CHECK_EQ(q % (2 * n), u64(1));
      for (int t = 0; t < 50; ++t) {
        const u64 a = 1 + uniform(q - 1), e = rng()();
        CHECK_EQ(pow_mod(a, e, q), naive_pow(a, e, q));
        CHECK_EQ(naive_mul(a, inv_mod(a, q), q), u64(1));
      }
      const u64 psi = primitive_2n_root(q, n);
      CHECK_EQ(naive_pow(psi, n, q), q - 1);  // order exactly 2n
      CHECK_EQ(naive_pow(psi, 2 * n, q), u64(1));
    }
  }
  std::vector<u64> taken;
  for (int i = 0; i < 4; ++i) {
    const u64 p = closest_ntt_prime(1099511627776.0, 4096, 41, taken);  // 2^40, 41-bit primes
    CHECK(is_prime(p));
    CHECK_EQ(64 - __builtin_clzll(p), 41);
    CHECK(std::find(taken.begin(), taken.end(), p) == taken.end());
    taken.push_back(p);
  }
  for (u64 x = 0; x < 64; ++x) CHECK_EQ(bit_reverse(bit_reverse(x, 6), 6), x);
}

// -- NTT ---------------------------------------------------------------------------------

namespace {

void check_ntt(bool simd) {
  cpu::set_simd_enabled(simd);
  for (u64 n : {u64(8), u64(16), u64(256), u64(2048)}) {
    int log_n = 0;
    while ((u64(1) << log_n) < n) ++log_n;
    for (u64 q : test_primes(n)) {
      const NttTables t(q, n);
      const std::vector<u64> a = random_poly(n, q), b = random_poly(n, q);
      std::vector<u64> fa = a, fb = b;
      cpu::ntt_forward(fa.data(), t);
      cpu::ntt_forward(fb.data(), t);
      // Slot k is a(psi^(2 bitrev(k) + 1)), reduced to [0, q).
      if (n <= 256)
        for (u64 k = 0; k < n; ++k)
          CHECK_EQ(fa[k], eval_at(a, naive_pow(t.psi, 2 * bit_reverse(k, log_n) + 1, q), q));
      std::vector<u64> back = fa;
      cpu::ntt_inverse(back.data(), t);
      CHECK(back == a);
      // Pointwise products are negacyclic convolutions.
      std::vector<u64> fc(n);
      for (u64 k = 0; k < n; ++k) fc[k] = naive_mul(fa[k], fb[k], q);
      cpu::ntt_inverse(fc.data(), t);
      if (n <= 256) CHECK(fc == negacyclic_product(a, b, q));
      // Linearity on a large ring, where the schoolbook product is too slow.
      std::vector<u64> sum(n);
      for (u64 k = 0; k < n; ++k) sum[k] = add_mod(a[k], b[k], q);
      cpu::ntt_forward(sum.data(), t);
      for (u64 k = 0; k < n; ++k) CHECK_EQ(sum[k], add_mod(fa[k], fb[k], q));
    }
  }
  cpu::set_simd_enabled(true);
}

}  // namespace

TEST_CASE("ntt: portable path against naive evaluation, round trip and negacyclic products") { check_ntt(false); }

TEST_CASE("ntt: run-time chosen path (AVX2 where the CPU has it), same checks") {
  const u64 q45 = test_primes(16)[1];
  std::printf("  the AVX2 path is %s\n", cpu::avx2_ntt_usable(NttTables(q45, 16)) ? "used" : "not available here");
  check_ntt(true);
}

TEST_CASE("ntt: both CPU paths agree bit for bit at N = 2^13") {
  const u64 n = u64(1) << 13;
  for (u64 q : test_primes(n)) {
    const NttTables t(q, n);
    std::vector<u64> a = random_poly(n, q), b = a;
    cpu::set_simd_enabled(false);
    cpu::ntt_forward(a.data(), t);
    cpu::set_simd_enabled(true);
    cpu::ntt_forward(b.data(), t);
    CHECK(a == b);
    cpu::set_simd_enabled(false);
    cpu::ntt_inverse(a.data(), t);
    cpu::set_simd_enabled(true);
    cpu::ntt_inverse(b.data(), t);
    CHECK(a == b);
  }
}

// -- RNS ---------------------------------------------------------------------------------

namespace {

// Converts the residues of x over `src` to `dst` with the kernel body.
std::vector<u64> convert(const BasisConverter& bc, const std::vector<u64>& residues, bool exact) {
  const auto v = bc.view();
  std::vector<const u64*> src(residues.size());
  for (size_t i = 0; i < residues.size(); ++i) src[i] = &residues[i];
  std::vector<u64> out(v.ndst), y(v.nsrc);
  std::vector<u64*> dst(v.ndst);
  for (int j = 0; j < v.ndst; ++j) dst[j] = &out[j];
  if (exact)
    kernels::basis_convert_block<1, true>(v, src.data(), dst.data(), y.data(), 0);
  else
    kernels::basis_convert_block<1, false>(v, src.data(), dst.data(), y.data(), 0);
  return out;
}

}  // namespace

TEST_CASE("rns: basis conversion against the CRT (exact: the centered value; fast: x + u B, 0 <= u < k)") {
  const u64 n = 1024;
  std::vector<u64> primes;
  for (int i = 0; i < 3; ++i) primes.push_back(closest_ntt_prime(1099511627776.0, n, 41, primes));
  for (int i = 0; i < 2; ++i) primes.push_back(closest_ntt_prime(1152921504606846976.0, n, 61, primes));
  const std::vector<u64> src(primes.begin(), primes.begin() + 3), dst(primes.begin() + 3, primes.end());
  const BasisConverter bc(src, dst);
  u128 big_b = 1;
  for (u64 b : src) big_b *= b;  // < 2^123
  std::vector<u128> xs = {0, 1, big_b - 1, big_b / 2 - 1, big_b / 2 + 1};
  for (int t = 0; t < 2000; ++t) xs.push_back(((static_cast<u128>(rng()()) << 64) | rng()()) % big_b);
  for (u128 x : xs) {
    std::vector<u64> res;
    for (u64 b : src) res.push_back(static_cast<u64>(x % b));
    const std::vector<u64> exact = convert(bc, res, true), fast = convert(bc, res, false);
    for (size_t j = 0; j < dst.size(); ++j) {
      const u64 p = dst[j];
      // The centered representative: x, or x - B above B / 2. The overflow count is a
      // floating-point estimate, so within B 2^-40 of the midpoint either is correct.
      const u64 as_is = static_cast<u64>(x % p), minus_b = (p - static_cast<u64>((big_b - x) % p)) % p;
      const u128 dist = x > big_b / 2 ? x - big_b / 2 : big_b / 2 - x;
      if (dist < (big_b >> 40))
        CHECK(exact[j] == as_is || exact[j] == minus_b);
      else
        CHECK_EQ(exact[j], x > big_b / 2 ? minus_b : as_is);
      bool found = false;
      for (u64 u = 0; u < src.size(); ++u) found |= fast[j] == static_cast<u64>((x + u * big_b) % p);
      CHECK(found);
    }
  }
}

// -- automorphisms -----------------------------------------------------------------------

TEST_CASE("galois: the NTT permutation equals X -> X^g on coefficients (rotations and conjugation)") {
  CHECK_EQ(galois_element_for_step(1, 1024), u64(5));
  CHECK_EQ(galois_element_for_step(0, 1024), u64(1));
  CHECK_EQ(galois_element_for_step(-1, 1024), galois_element_for_step(511, 1024));
  CHECK_EQ(normalize_step(-3, 512), 509L);
  CHECK_EQ(normalize_step(515, 512), 3L);
  for (u64 n : {u64(16), u64(1024)}) {
    const u64 q = test_primes(n)[1];
    const NttTables t(q, n);
    std::vector<u64> elts = {galois_element_conjugate(n)};
    for (long step : {1L, 2L, 3L, -1L, static_cast<long>(n / 4)}) elts.push_back(galois_element_for_step(step, n));
    for (u64 g : elts) {
      const std::vector<u64> a = random_poly(n, q);
      // sigma_g(a)[i g mod 2n] = a[i], negated when i g mod 2n >= n (X^n = -1).
      std::vector<u64> sa(n);
      for (u64 i = 0; i < n; ++i) {
        const u64 e = (i * g) % (2 * n);
        sa[e % n] = e < n ? a[i] : neg_mod(a[i], q);
      }
      std::vector<u64> fa = a, fsa = sa;
      cpu::ntt_forward(fa.data(), t);
      cpu::ntt_forward(fsa.data(), t);
      const std::vector<u32> perm = galois_permutation_ntt(g, n);
      std::vector<u64> permuted(n);
      for (u64 k = 0; k < n; ++k) permuted[k] = fa[perm[k]];
      CHECK(permuted == fsa);
    }
  }
}

#if defined(__linux__)
// A request larger than every cached block is made of the cached blocks'
// pages (moved, largest first), so it needs no fresh pages; a smaller one
// splits a cached block and the rest stays cached.
TEST_CASE("allocator: large requests reuse cached pages (gathered or split), never fresh ones while the cache holds enough") {
  constexpr std::size_t mib = std::size_t(1) << 20;
  const std::size_t limit = pool_cache_limit();
  pool_release_cached();
  pool_set_cache_limit(std::size_t(1) << 30);
  auto fill = [](void* p, std::size_t bytes, u64 v) { std::fill_n(static_cast<u64*>(p), bytes / 8, v); };
  auto word = [](void* p, std::size_t byte) { return static_cast<u64*>(p)[byte / 8]; };
  void* a = pool_allocate(6 * mib);
  void* b = pool_allocate(10 * mib);
  fill(a, 6 * mib, 1);
  fill(b, 10 * mib, 2);
  pool_free(a, 6 * mib);
  pool_free(b, 10 * mib);
  CHECK_EQ(pool_cached_bytes(), 16 * mib);
  void* c = pool_allocate(16 * mib);  // gathered: b's pages, then a's
  CHECK_EQ(pool_cached_bytes(), std::size_t(0));
  CHECK_EQ(word(c, 0), u64(2));
  CHECK_EQ(word(c, 10 * mib - 8), u64(2));
  CHECK_EQ(word(c, 10 * mib), u64(1));
  CHECK_EQ(word(c, 16 * mib - 8), u64(1));
  fill(c, 16 * mib, 3);
  pool_free(c, 16 * mib);
  void* d = pool_allocate(5 * mib);  // 6 MiB (whole 2 MiB pages) split off; 10 MiB stay cached
  CHECK_EQ(pool_cached_bytes(), 10 * mib);
  CHECK_EQ(word(d, 0), u64(3));
  void* e = pool_allocate(14 * mib);  // the 10 cached MiB, then 4 fresh (zeroed) MiB
  CHECK_EQ(pool_cached_bytes(), std::size_t(0));
  CHECK_EQ(word(e, 10 * mib - 8), u64(3));
  CHECK_EQ(word(e, 10 * mib), u64(0));
  CHECK_EQ(word(e, 14 * mib - 8), u64(0));
  pool_free(d, 5 * mib);
  pool_free(e, 14 * mib);
  CHECK_EQ(pool_cached_bytes(), 20 * mib);
  pool_release_cached();
  CHECK_EQ(pool_cached_bytes(), std::size_t(0));
  pool_set_cache_limit(limit);
}
#endif

int main(int argc, char** argv) {
  const std::string filter = argc > 1 ? argv[1] : "";
  int run = 0, failed = 0;
  for (const auto& c : httest::cases()) {
    if (!filter.empty() && std::string(c.name).find(filter) == std::string::npos) continue;
    const int before = httest::failures();
    try {
      c.body();
    } catch (const std::exception& e) {
      httest::report(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    const bool ok = httest::failures() == before;
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", c.name);
    ++run;
    failed += ok ? 0 : 1;
  }
  std::printf("%d case(s), %d failed\n", run, failed);
  return failed == 0 && run > 0 ? 0 : 1;
}
