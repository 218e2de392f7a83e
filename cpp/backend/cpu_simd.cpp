#include "backend/cpu_simd.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace ht::cpu {

namespace {
std::atomic<int> g_simd{-1};  // -1: not decided yet

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
}  // namespace

void set_simd_enabled(bool enabled) { g_simd = (enabled && cpu_has_avx2_fma()) ? 1 : 0; }

bool simd_enabled() {
  int s = g_simd.load();
  if (s < 0) {
    const char* env = std::getenv("HETENSOR_SIMD");
    s = (env && std::strcmp(env, "0") == 0) ? 0 : (cpu_has_avx2_fma() ? 1 : 0);
    g_simd = s;
  }
  return s == 1;
}

}  // namespace ht::cpu
