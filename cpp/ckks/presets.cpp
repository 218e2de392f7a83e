#include "ckks/presets.hpp"

#include "core/error.hpp"

namespace ht {

namespace {
ParamsLiteral make(const char* name, int log_n, int levels, int dnum, int special_bits, int special_primes,
                   bool insecure) {
  ParamsLiteral p;
  p.name = name;
  p.log_n = log_n;
  p.levels = levels;
  p.first_prime_bits = 60;
  p.scale_bits = 40;
  p.dnum = dnum;
  p.special_prime_bits = special_bits;
  p.special_primes = special_primes;
  p.allow_insecure = insecure;
  return p;
}

// A bootstrappable chain at a 2^45 scale: q_0 at 60 bits, `low` levels at 45
// bits (computation, SlotToCoeff) below 13 at 60 bits (EvalMod, CoeffToSlot);
// P sized per key-switching digit (no fixed count of special primes).
ParamsLiteral boot_chain(const char* name, int log_n, int low, int dnum, int special_bits, bool insecure) {
  ParamsLiteral p = make(name, log_n, low + 13, dnum, special_bits, 0, insecure);
  p.scale_bits = 45;
  p.level_bits.assign(low, 45);
  p.level_bits.insert(p.level_bits.end(), 13, 60);
  return p;
}
}  // namespace

// Shapes follow OpenFHE's / desilofhe's defaults (60-bit q_0, 40-bit scale):
// P is at least as large as the largest key-switching digit.
//  n14: N=2^14, 7 levels,  log Q = 340,  dnum 8, P = 1 x 61 bits,  log QP = 401 <= 438
//  n15: N=2^15, 15 levels, log Q = 660,  dnum 4, P = 3 x 60 bits,  log QP = 840 <= 881
//  n16: N=2^16, 24 levels, log Q = 1020, dnum 2, P = 9 x 60 bits,  log QP = 1560 <= 1747
std::vector<std::string> preset_names() {
  return {"toy-insecure", "n13-insecure", "n14", "n15", "n16", "n16-boot", "toy-boot-insecure",
          "n12-boot9-insecure"};
}

ParamsLiteral preset_literal(const std::string& name) {
  if (name == "toy-insecure") return make("toy-insecure", 12, 6, 2, 60, 4, true);
  if (name == "n13-insecure") return make("n13-insecure", 13, 10, 3, 60, 4, true);
  if (name == "n14") return make("n14", 14, 7, 8, 61, 1, false);
  if (name == "n15") return make("n15", 15, 15, 4, 60, 3, false);
  if (name == "n16") return make("n16", 16, 24, 2, 50, 11, false);
  if (name == "n16-boot") {
    // Bootstrappable N=2^16 chain (hetensor/boot.py, BOOT_PRESETS): q_0 60
    // bits; 9 computation and 3 SlotToCoeff levels at 45 bits; 10 EvalMod
    // levels (cosine degree 63, 2 double angles, arcsine degree 3) and 3
    // CoeffToSlot levels at 60 bits. log Q = 1380, dnum 5 (digits of <= 6
    // primes), P = 6 x 61 bits: log QP = 1746 <= 1747. Dense ternary secret;
    // ModRaise under an encapsulated h = 32 secret so |I| <= 16.
    return boot_chain("n16-boot", 16, 12, 5, 61, false);
  }
  if (name == "toy-boot-insecure") {
    // The same shape at N=2^12 (insecure, for tests): 4 computation levels.
    return boot_chain("toy-boot-insecure", 12, 7, 3, 60, true);
  }
  if (name == "n12-boot9-insecure") {
    // n16-boot's chain (9 computation levels between bootstraps) at N=2^12 (insecure, for
    // tests and short training runs that need n16-boot's depth per polynomial).
    return boot_chain("n12-boot9-insecure", 12, 12, 5, 61, true);
  }
  std::string known;
  for (auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
  throw InvalidArgument("unknown preset '" + name + "'; known presets: " + known);
}

}  // namespace ht
