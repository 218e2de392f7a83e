// The stream a CUDA backend orders its work on, for timers outside the
// backend (kernel_timing.cu) that record CUDA events on it.
#pragma once

#include <cuda_runtime.h>

#include "backend/backend.hpp"

namespace ht::cuda {

// `be` must be a backend made by make_backend; anything else is refused.
cudaStream_t stream_of(backend::Backend& be);

}  // namespace ht::cuda
