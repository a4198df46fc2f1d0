// Which micro-kernels run: the AVX512-BF16 set when the CPU has it (checked here, in code compiled
// for any x86-64), else the portable Highway set.
#include "kernels/cpu/microkernels.h"

#include <cstdlib>
#include <cstring>

namespace bringup::cpu {

extern const MicroKernels kAvx512Bf16Kernels;

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  // VBMI's byte shuffles decode block-float codes (every AVX512-BF16 CPU but Cooper Lake has it).
  return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512vbmi");
#else
  return false;
#endif
}

const MicroKernels* avx512_bf16_kernels() {
  static const MicroKernels* set = []() -> const MicroKernels* {
    if (!cpu_has_avx512_bf16()) return nullptr;
    static MicroKernels k = kAvx512Bf16Kernels;
    // fp32 products (the fp32 policy, ggml's block types) have no faster instruction to use.
    k.f32 = portable_kernels().f32;
    k.q8_0 = portable_kernels().q8_0;
    k.q4_k = portable_kernels().q4_k;
    k.q6_k = portable_kernels().q6_k;
    return &k;
  }();
  return set;
}

const MicroKernels& best_kernels() {
  static const MicroKernels* best = [] {
    const char* force = std::getenv("BRINGUP_KERNELS");
    if (force && std::strcmp(force, "portable") == 0) return &portable_kernels();
    const MicroKernels* fast = avx512_bf16_kernels();
    return fast ? fast : &portable_kernels();
  }();
  return *best;
}

}  // namespace bringup::cpu
