#include "runtime/parallel.hpp"

#include "core/error.hpp"

namespace ht {

void set_num_threads(int threads) {
  if (threads < 1) throw InvalidArgument("set_num_threads needs a positive thread count");
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
}

int get_num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace ht
