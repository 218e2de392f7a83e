// parallel_for: the CPU launcher. An OpenMP loop over independent work items
// (limbs, ciphertexts of a batch); serial when built without OpenMP.
#pragma once
#include <cstddef>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ht {

template <class F>
void parallel_for(std::size_t count, F&& body) {
#ifdef _OPENMP
  if (count > 1 && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < static_cast<long long>(count); ++i) body(static_cast<std::size_t>(i));
    return;
  }
#endif
  for (std::size_t i = 0; i < count; ++i) body(i);
}

// Clamped to max_num_threads(); returns the count now in use.
int set_num_threads(int threads);
int max_num_threads();
int get_num_threads();

}  // namespace ht
