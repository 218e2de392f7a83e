// Key generation (secret, public, relinearization, Galois keys).
#include <algorithm>
#include <cstring>

#include "backend/backend.hpp"
#include "backend/kernels/elementwise.hpp"
#include "ckks/keys.hpp"
#include "core/aes.hpp"
#include "core/error.hpp"
#include "core/galois.hpp"
#include "core/sampling.hpp"
#include "runtime/parallel.hpp"

namespace ht {

void add_small_poly_ntt(const Tables& ctx, const std::vector<i64>& c, u64* out, const std::vector<int>& primes) {
  const u64 n = ctx.n();
  parallel_for(primes.size(), [&](size_t i) {
    const NttTables& t = ctx.ntt(primes[i]);
    const u64 q = t.mod.value;
    std::vector<u64> tmp(n);
    // |c| < 2^62 <= q is not guaranteed for small primes: reduce large magnitudes.
    for (u64 k = 0; k < n; ++k) {
      const u64 mag = static_cast<u64>(c[k] >= 0 ? c[k] : -c[k]);
      const u64 r = mag < q ? mag : mag % q;
      tmp[k] = (c[k] >= 0 || r == 0) ? r : q - r;
    }
    backend::ntt_forward(tmp.data(), t);
    u64* o = out + i * n;
    for (u64 k = 0; k < n; ++k) kernels::add_limb(o, o, tmp.data(), q, k);
  });
}

namespace {
std::vector<int> range(int begin, int end) {
  std::vector<int> r;
  for (int i = begin; i < end; ++i) r.push_back(i);
  return r;
}
}  // namespace

KeyChain::KeyChain(std::shared_ptr<const Tables> ctx, std::optional<u64> seed)
    : ctx_(std::move(ctx)), prng_(seed ? Prng::from_seed(*seed) : Prng()) {
  const Tables& c = *ctx_;
  const u64 n = c.n();
  const int L = c.max_level(), all = L + 1 + c.alpha();
  const auto all_primes = range(0, all);

  // Secret key s, ternary, in the NTT domain over every prime.
  const int h = c.params().hamming_weight();
  const std::vector<i64> s = h ? sample_ternary_hamming(prng_, n, static_cast<u64>(h)) : sample_ternary(prng_, n);
  sk_.s = Buffer(static_cast<size_t>(all) * n, /*secure=*/true);
  add_small_poly_ntt(c, s, sk_.s.data(), all_primes);

  // Public key (b, a) over Q and P: b = -a*s + e. Encryption works in QP and
  // divides by P, so a fresh ciphertext carries only rounding noise.
  auto pk = std::make_shared<PublicKey>();
  pk->a = Buffer(static_cast<size_t>(all) * n);
  pk->b = Buffer(static_cast<size_t>(all) * n);
  pk->a_seed = prng_.next_key();
  expand_uniform(c, pk->a_seed, pk->a.data(), all_primes);
  add_small_poly_ntt(c, sample_gaussian(prng_, n, c.params().sigma()), pk->b.data(), all_primes);
  parallel_for(all, [&](size_t i) {
    const Modulus& m = c.modulus(static_cast<int>(i));
    const u64* a = pk->a.data() + i * n;
    const u64* sk = sk_.s.data() + i * n;
    u64* b = pk->b.data() + i * n;
    for (u64 k = 0; k < n; ++k) b[k] = sub_mod(b[k], mul_mod(a[k], sk[k], m), m.value);
  });
  pk_ = std::move(pk);

  // Relinearization key: switches s^2 to s.
  Buffer s2(static_cast<size_t>(all) * n, true);
  parallel_for(all, [&](size_t i) {
    const Modulus& m = c.modulus(static_cast<int>(i));
    const u64* sk = sk_.s.data() + i * n;
    for (u64 k = 0; k < n; ++k) s2.data()[i * n + k] = mul_mod(sk[k], sk[k], m);
  });
  relin_ = std::make_shared<const SwitchKey>(make_switch_key(s2.data()));
}

void KeyChain::compact_relin_key() {
  const SwitchKey& r = *relin_;
  if (r.compact) return;
  if (r.a_seeds.size() != static_cast<size_t>(r.digits))
    fail("compact the relinearization key", "its a halves were not made from seeds (a key loaded expanded)");
  auto k = std::make_shared<SwitchKey>();
  k->digits = r.digits;
  k->level = r.level;
  k->alpha = r.alpha;
  k->n = r.n;
  k->compact = true;
  k->a_seeds = r.a_seeds;
  const size_t words = static_cast<size_t>(k->limbs()) * k->n;
  k->data = Buffer(static_cast<size_t>(k->digits) * words, false, false);
  for (int j = 0; j < k->digits; ++j) std::memcpy(k->b(j, 0), r.b(j, 0), words * sizeof(u64));
  relin_ = std::move(k);
}

SwitchKey KeyChain::make_switch_key(const u64* s_prime, int level) {
  const Tables& c = *ctx_;
  const u64 n = c.n();
  const int L = c.max_level(), all = L + 1 + c.alpha();
  if (level < 0 || level > L) level = L;
  const int digits = c.num_digits(level);
  SwitchKey key;
  key.digits = digits;
  key.level = level;
  key.alpha = c.alpha();
  key.n = n;
  key.compact = compact_;
  key.data = Buffer(static_cast<size_t>(digits) * key.halves() * key.limbs() * n);
  key.a_seeds.resize(digits);
  std::vector<Prng> streams;
  {
    std::lock_guard<std::mutex> lock(prng_mutex_);
    for (int j = 0; j < digits; ++j) streams.push_back(prng_.fork());
  }
  // The key's primes: q_0 .. q_level, then P (its limbs, in that order).
  std::vector<int> primes = range(0, level + 1);
  for (int k = 0; k < c.alpha(); ++k) primes.push_back(c.p_index(k));
  for (int j = 0; j < digits; ++j) {
    key.a_seeds[j] = streams[j].next_key();
    // Limb t of b_j = -a_j s + e_j (+ P s' in the digit's primes); a compact key
    // regenerates a_j's limb into scratch and drops it.
    const std::vector<i64> e = sample_gaussian(streams[j], n, c.params().sigma());
    add_small_poly_ntt(c, e, key.b(j, 0), primes);
    const int db = c.digit_begin(j), de = c.digit_end(j, level);
    parallel_for(primes.size(), [&](size_t t) {
      const int i = primes[t];
      const Modulus& m = c.modulus(i);
      const u64* sk = sk_.s.data() + static_cast<size_t>(i) * n;
      const u64* sp = s_prime + static_cast<size_t>(i) * n;
      u64* bi = key.b(j, t);
      std::vector<u64> scratch(key.compact ? n : 0);
      u64* ai = key.compact ? scratch.data() : key.a(j, t);
      expand_uniform_limb(c, key.a_seeds[j], i, ai);
      u64 p_mod = 1;  // P mod q_i, for the gadget term of digit j
      for (int k = 0; k < c.alpha(); ++k) p_mod = mul_mod(p_mod, reduce_u64(c.prime(c.p_index(k)), m), m);
      const bool in_digit = i >= db && i < de;
      for (u64 k = 0; k < n; ++k) {
        u64 v = sub_mod(bi[k], mul_mod(ai[k], sk[k], m), m.value);
        if (in_digit) v = add_mod(v, mul_mod(p_mod, sp[k], m), m.value);
        bi[k] = v;
      }
    });
  }
  (void)all;
  return key;
}

void SwitchKey::expand_a(const Tables& ctx, int j, int prime, u64* out) const {
  if (!compact) {
    std::memcpy(out, a(j, limb_of(prime, ctx.max_level())), n * sizeof(u64));
    return;
  }
  expand_uniform_limb(ctx, a_seeds[static_cast<size_t>(j)], prime, out);
}

namespace {
// A Galois key of s(X^g) (permuted NTT values) serving `level`.
std::vector<int> all_limbs(const Tables& c) { return range(0, c.max_level() + 1 + c.alpha()); }
}  // namespace

void KeyChain::generate_rotation_keys(const std::vector<long>& steps, int level) {
  require_secret("generate rotation keys");
  const Tables& c = *ctx_;
  if (level < 0 || level > c.max_level()) level = c.max_level();
  for (long step : steps) {
    if (normalize_step(step, c.slots()) == 0) continue;  // rotation by 0 needs no key
    make_galois_key(galois_element_for_step(step, c.n()), level);
  }
}

void KeyChain::generate_conjugation_key(int level) {
  require_secret("generate the conjugation key");
  const Tables& c = *ctx_;
  if (level < 0 || level > c.max_level()) level = c.max_level();
  make_galois_key(galois_element_conjugate(c.n()), level);
}

void KeyChain::make_galois_key(u64 g, int level) {
  {
    std::lock_guard<std::mutex> lock(galois_mutex_);
    auto it = galois_.find(g);
    if (it != galois_.end() && it->second->level >= level) return;
  }
  const Tables& c = *ctx_;
  const u64 n = c.n();
  const auto& perm = c.galois_perm(g);
  const auto limbs = all_limbs(c);
  Buffer sg(limbs.size() * n, true);
  parallel_for(limbs.size(), [&](size_t i) {
    const u64* s = sk_.s.data() + i * n;
    u64* o = sg.data() + i * n;
    for (u64 k = 0; k < n; ++k) o[k] = s[perm[k]];
  });
  add_galois_key(g, std::make_shared<const SwitchKey>(make_switch_key(sg.data(), level)));
}

void KeyChain::add_galois_key(u64 g, std::shared_ptr<const SwitchKey> key) {
  std::lock_guard<std::mutex> lock(galois_mutex_);
  auto it = galois_.find(g);
  if (it == galois_.end()) galois_.emplace(g, std::move(key));
  else if (key->level > it->second->level) it->second = std::move(key);  // a wider key replaces a trimmed one
}

std::vector<u64> KeyChain::galois_elements() const {
  std::lock_guard<std::mutex> lock(galois_mutex_);
  std::vector<u64> out;
  for (auto& kv : galois_) out.push_back(kv.first);
  return out;
}

bool KeyChain::has_galois_key(u64 g) const {
  std::lock_guard<std::mutex> lock(galois_mutex_);
  return galois_.count(g) != 0;
}

std::shared_ptr<const SwitchKey> KeyChain::galois_key(u64 g) const {
  std::lock_guard<std::mutex> lock(galois_mutex_);
  auto it = galois_.find(g);
  if (it == galois_.end()) throw InvalidArgument("no Galois key for element " + std::to_string(g));
  return it->second;
}

std::vector<long> KeyChain::rotation_steps() const {
  const u64 n = ctx_->n(), slots = ctx_->slots();
  std::vector<long> out;
  std::lock_guard<std::mutex> lock(galois_mutex_);
  // Map Galois elements back to steps: 5^k mod 2N.
  u64 g = 1;
  for (u64 k = 0; k < slots; ++k) {
    if (k > 0 && galois_.count(g)) out.push_back(static_cast<long>(k));
    g = (g * 5) % (2 * n);
  }
  return out;
}

size_t KeyChain::key_bytes() const {
  size_t total = pk_->a.bytes() + pk_->b.bytes() + relin_->bytes();
  if (auto e = encapsulation()) total += e->to_sparse.bytes() + e->to_dense.bytes();
  std::lock_guard<std::mutex> lock(galois_mutex_);
  for (auto& kv : galois_) total += kv.second->bytes();
  return total;
}

void KeyChain::generate_encapsulation_keys(int h) {
  require_secret("generate encapsulation keys");
  const Tables& c = *ctx_;
  const u64 n = c.n();
  const int L = c.max_level(), all = L + 1 + c.alpha();
  if (h < 1 || static_cast<u64>(h) > n) throw InvalidArgument("encapsulation needs a Hamming weight in [1, N]");
  // Held for the whole generation so that two threads never both make keys.
  std::lock_guard<std::mutex> gen_lock(encaps_gen_mutex_);
  if (auto e = encapsulation()) {
    if (e->weight == h) return;
    throw InvalidArgument("cannot generate encapsulation keys of weight " + std::to_string(h) +
                          ": this context has keys of weight " + std::to_string(e->weight) +
                          " and keys never change once made; create another context");
  }
  auto out = std::make_shared<EncapsulationKeys>();
  Prng prng = fork_prng();
  Buffer sparse(static_cast<size_t>(all) * n, true);
  add_small_poly_ntt(c, sample_ternary_hamming(prng, n, static_cast<u64>(h)), sparse.data(), range(0, all));
  // s -> s' modulo q_0 * p_0 only, encrypted under s':
  //   b = -a s' + e + p_0 s (mod q_0),  b = -a s' + e (mod p_0).
  const int primes[2] = {0, c.p_index(0)};
  out->to_sparse = Buffer(static_cast<size_t>(4) * n, true);
  u64* b = out->to_sparse.data();
  u64* a = out->to_sparse.data() + 2 * n;
  out->to_sparse_seed = prng.next_key();
  expand_uniform(c, out->to_sparse_seed, a, {primes[0], primes[1]});
  add_small_poly_ntt(c, sample_gaussian(prng, n, c.params().sigma()), b, {primes[0], primes[1]});
  for (int t = 0; t < 2; ++t) {
    const Modulus& m = c.modulus(primes[t]);
    const u64* sp = sparse.data() + static_cast<size_t>(primes[t]) * n;
    const u64* sd = sk_.s.data() + static_cast<size_t>(primes[t]) * n;
    const u64 p0 = t == 0 ? reduce_u64(c.prime(primes[1]), m) : 0;
    for (u64 k = 0; k < n; ++k) {
      u64 v = sub_mod(b[t * n + k], mul_mod(a[t * n + k], sp[k], m), m.value);
      if (t == 0) v = add_mod(v, mul_mod(p0, sd[k], m), m.value);
      b[t * n + k] = v;
    }
  }
  // s' -> s over the whole chain: an ordinary switching key, under s.
  out->to_dense = make_switch_key(sparse.data());
  out->weight = h;
  set_encapsulation(std::move(out));
}

void KeyChain::set_encapsulation(std::shared_ptr<const EncapsulationKeys> keys) {
  std::lock_guard<std::mutex> lock(encaps_mutex_);
  if (encaps_) throw InvalidArgument("this context already has encapsulation keys; they never change once made");
  encaps_ = std::move(keys);
}

std::shared_ptr<const EncapsulationKeys> KeyChain::encapsulation() const {
  std::lock_guard<std::mutex> lock(encaps_mutex_);
  return encaps_;
}

bool KeyChain::has_encapsulation() const { return encapsulation() != nullptr; }

int KeyChain::encapsulation_weight() const {
  auto e = encapsulation();
  return e ? e->weight : 0;
}

const EncapsulationKeys& KeyChain::encapsulation_checked() const {
  // Set once and never replaced: the reference stays valid while the chain lives.
  auto e = encapsulation();
  if (!e) throw InvalidArgument("this context has no encapsulation keys (bootstrapping keys)");
  return *e;
}

const SecretKey& KeyChain::secret() const {
  require_secret("use the secret key");
  return sk_;
}

void KeyChain::require_secret(const char* op) const {
  if (!has_secret())
    throw InvalidArgument(std::string("cannot ") + op +
                          ": this is a public (evaluation-only) context without the secret key; use the "
                          "context that made the keys");
}

u64 KeyChain::key_id() const {
  // The first limb of b is uniform: a fingerprint of the key pair.
  u64 h = ctx_->params().hash();
  const u64* b = pk_->b.data();
  for (u64 k = 0; k < ctx_->n(); ++k) {
    h ^= b[k] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  }
  return h;
}

KeyChain::KeyChain(std::shared_ptr<const Tables> ctx, std::shared_ptr<const PublicKey> pk,
                   std::shared_ptr<const SwitchKey> relin, Buffer secret)
    : ctx_(std::move(ctx)), pk_(std::move(pk)), relin_(std::move(relin)) {
  sk_.s = std::move(secret);
}

std::unique_ptr<KeyChain> KeyChain::public_copy() const {
  auto out = std::make_unique<KeyChain>(ctx_, pk_, relin_);
  {
    std::lock_guard<std::mutex> lock(galois_mutex_);
    out->galois_ = galois_;
  }
  out->encaps_ = encapsulation();
  return out;
}

void expand_uniform_limb(const Tables& ctx, const Seed& seed, int prime, u64* out) {
  uniform_mod_q(Aes256(seed), static_cast<u32>(prime), ctx.prime(prime), out, ctx.n());
}

void expand_uniform(const Tables& ctx, const Seed& seed, u64* out, const std::vector<int>& primes) {
  const Aes256 key(seed);
  parallel_for(primes.size(), [&](size_t i) {
    uniform_mod_q(key, static_cast<u32>(primes[i]), ctx.prime(primes[i]), out + i * ctx.n(), ctx.n());
  });
}

Prng KeyChain::fork_prng() {
  std::lock_guard<std::mutex> lock(prng_mutex_);
  return prng_.fork();
}

}  // namespace ht
