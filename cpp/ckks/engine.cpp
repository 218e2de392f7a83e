#include "ckks/engine.hpp"

#include <cmath>
#include <sstream>

#include "core/error.hpp"
#include "core/sampling.hpp"

namespace ht {

namespace {
double max_abs(const cplx* v, size_t count, bool& finite) {
  double m = 0;
  finite = true;
  for (size_t i = 0; i < count; ++i) {
    const double a = std::abs(v[i]);
    if (!std::isfinite(v[i].real()) || !std::isfinite(v[i].imag())) { finite = false; return 0; }
    m = std::max(m, a);
  }
  return m;
}
}  // namespace

Engine::Engine(const ParamsLiteral& literal, std::optional<u64> seed)
    : ctx_(std::make_shared<Tables>(literal)),
      keys_(std::make_unique<KeyChain>(ctx_, seed)),
      encoder_(std::make_unique<Encoder>(ctx_)),
      seeded_(seed.has_value()) {}

Engine::Engine(std::shared_ptr<Tables> ctx, std::unique_ptr<KeyChain> keys)
    : ctx_(std::move(ctx)), keys_(std::move(keys)), encoder_(std::make_unique<Encoder>(ctx_)) {
  if (&keys_->tables() != ctx_.get()) throw InvalidArgument("the keys belong to another context");
}

std::unique_ptr<Engine> Engine::public_view() const {
  auto out = std::make_unique<Engine>(ctx_, keys_->public_copy());
  out->seeded_ = seeded_;
  return out;
}

std::string Engine::describe() const {
  std::string d = ctx_->params().describe();
  if (seeded_) {
    const std::string secure = "128-bit secure";
    const auto at = d.find(secure);
    if (at != std::string::npos) d.replace(at, secure.size(), "INSECURE: seeded (deterministic) keys");
  }
  if (!keys_->has_secret()) d.insert(d.size() - 1, ", public (no secret key)");
  return d;
}

double Engine::max_encrypt_magnitude() const {
  // The binding constraint is level 0, where the value sits at scale s_0 in q_0.
  return static_cast<double>(ctx_->prime(0)) / 4.0 / ctx_->scale_at(0);
}

Ciphertext Engine::encrypt(const cplx* values, int batch, u64 count, bool symmetric, int level) {
  bool finite;
  const double m = max_abs(values, static_cast<size_t>(batch) * count, finite);
  if (!finite) fail("encrypt", "the input contains NaN or Inf");
  if (m >= max_encrypt_magnitude()) {
    std::ostringstream os;
    os << "a value of magnitude " << m << " is too large for the scale 2^" << std::log2(ctx_->scale_at(0))
       << ": inputs must satisfy |x| < " << max_encrypt_magnitude()
       << " to survive down to the last level; divide the input by a constant first";
    fail("encrypt", os.str());
  }
  const int L = level < 0 ? ctx_->max_level() : level;
  if (L > ctx_->max_level()) fail("encrypt", "level " + std::to_string(L) + " is above the chain");
  Ciphertext ct;
  if (symmetric) {
    ct = encrypt_symmetric(*keys_, encoder_->encode(values, batch, count, L, ctx_->scale_at(L)));
  } else {  // the message joins inside ModDown: no NTTs of its own
    double bound = 0;
    ct = encrypt_public_coefficients(*keys_, encoder_->coefficients(values, batch, count, ctx_->scale_at(L), &bound),
                                     L, ctx_->scale_at(L));
  }
  // The value bound: the next power of two, so the metadata reveals only its exponent.
  ct.bound = m > 0 ? std::exp2(std::ceil(std::log2(m))) : 0.0;
  return ct;
}

std::vector<cplx> Engine::decrypt(const Ciphertext& ct) const {
  int limbs = 0;
  Buffer m = decrypt_message(*keys_, ct, limbs);
  std::vector<cplx> out(static_cast<size_t>(ct.batch) * ctx_->slots());
  encoder_->decode(m.data(), ct.batch, limbs, ct.scale, out.data());
  return out;
}

std::vector<cplx> Engine::decrypt_flooded(const Ciphertext& ct, double flood_sigma) {
  if (!(flood_sigma >= 16.0 && flood_sigma <= std::ldexp(1.0, 50)))
    fail("decrypt", "the flooding noise must have a standard deviation in [2^4, 2^50]");
  int limbs = 0;
  Buffer m = decrypt_message(*keys_, ct, limbs);
  std::vector<int> primes;
  for (int i = 0; i < limbs; ++i) primes.push_back(i);
  Prng prng = keys_->fork_prng();
  for (int b = 0; b < ct.batch; ++b)
    add_small_poly_ntt(*ctx_, sample_gaussian_wide(prng, ctx_->n(), flood_sigma),
                       m.data() + static_cast<size_t>(b) * limbs * ctx_->n(), primes);
  std::vector<cplx> out(static_cast<size_t>(ct.batch) * ctx_->slots());
  encoder_->decode(m.data(), ct.batch, limbs, ct.scale, out.data());
  return out;
}

Plaintext Engine::plain_for_add(u64 context_id, int level, double scale, const cplx* values, int rows,
                                u64 count) const {
  if (context_id != ctx_->id()) fail("add", "the ciphertext belongs to another context");
  bool finite;
  max_abs(values, static_cast<size_t>(rows) * count, finite);
  if (!finite) fail("add", "the plaintext operand contains NaN or Inf");
  return encoder_->encode(values, rows, count, level, scale);
}

Plaintext Engine::plain_for_mul(u64 context_id, int level, const cplx* values, int rows, u64 count) const {
  if (context_id != ctx_->id()) fail("multiply", "the ciphertext belongs to another context");
  bool finite;
  max_abs(values, static_cast<size_t>(rows) * count, finite);
  if (!finite) fail("multiply", "the plaintext operand contains NaN or Inf");
  if (level < 1)
    fail("multiply", "the ciphertext is at level 0 and no level is left to rescale; use a preset with more levels");
  return encoder_->encode(values, rows, count, level, plain_mul_scale(*ctx_, level));
}

Ciphertext Engine::add_values(const Ciphertext& a, const cplx* values, int rows, u64 count, bool subtract,
                              bool reverse) {
  const Plaintext pt = plain_for_add(a.context_id, a.level, a.scale, values, rows, count);
  return sub_plain(*ctx_, a, pt, subtract && !reverse, reverse);
}

Ciphertext Engine::mul_values(const Ciphertext& a, const cplx* values, int rows, u64 count) {
  return mul_plain(*ctx_, a, plain_for_mul(a.context_id, a.level, values, rows, count));
}

}  // namespace ht
