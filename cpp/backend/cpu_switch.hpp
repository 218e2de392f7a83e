// The fused key switch (backend/switch_fused.hpp) run on the CPU: the same
// bodies as the CUDA launches, in loops over host memory. The CPU backend
// runs key switches as the coarse-op sequence (faster on a CPU); this path
// exists so that the CPU tests check the fused arithmetic a GPU runs, word
// for word against that sequence (set_cpu_fused_switch switches the CPU
// backend to it, process-wide, for tests).
#pragma once
#include <cstddef>

#include "backend/backend.hpp"
#include "backend/switch.hpp"

namespace ht::backend {

void cpu_fused_key_switch(Backend& be, const SwitchConstants& c, const SwitchJob* jobs, std::size_t count,
                          bool rescale);
// Returns the previous setting.
bool set_cpu_fused_switch(bool on);
bool cpu_fused_switch();

}  // namespace ht::backend
