// Which micro-kernels run: the AVX512-BF16 set when the CPU has it (checked here, in code compiled
// for any x86-64), else the portable Highway set; BRINGUP_KERNELS picks one by name (the AMX set
// where the CPU and the kernel allow it).
#include "kernels/cpu/microkernels.h"

#include <cstdlib>
#include <string>

#include "bringup/error.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace bringup::cpu {

extern const MicroKernels kAvx512Bf16Kernels;
extern const MicroKernels kAmxBf16Kernels;

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

const MicroKernels* amx_bf16_kernels() {
  static const MicroKernels* set = []() -> const MicroKernels* {
#if defined(__x86_64__)
    const MicroKernels* avx512 = avx512_bf16_kernels();
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!avx512 || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return nullptr;
    const bool amx_bf16 = (edx >> 22) & 1, amx_tile = (edx >> 24) & 1;
    // Linux hands out the 8 KiB of tile state only on request (ARCH_REQ_XCOMP_PERM for
    // XFEATURE_XTILEDATA); the permission holds for every thread of the process.
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (!amx_bf16 || !amx_tile || syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata)) {
      return nullptr;
    }
    static MicroKernels k = kAmxBf16Kernels;
    k.bfp_to_bf16 = avx512->bfp_to_bf16;
    k.f32 = avx512->f32;
    k.q8_0 = avx512->q8_0;
    k.q4_k = avx512->q4_k;
    k.q6_k = avx512->q6_k;
    return &k;
#else
    return nullptr;
#endif
  }();
  return set;
}

const MicroKernels& best_kernels() {
  static const MicroKernels* best = [] {
    const char* force = std::getenv("BRINGUP_KERNELS");
    const MicroKernels* avx512 = avx512_bf16_kernels();
    // A set is chosen once, for every batch size, so that a row's result does not depend on its
    // batch. AMX's is now as fast as AVX512-BF16's for one row and faster from two
    // (docs/kernels.md), but stays on request until the whole suite has run under it.
    if (!force || !*force) return avx512 ? avx512 : &portable_kernels();
    const std::string name = force;
    const MicroKernels* set = nullptr;
    if (name == "portable") {
      set = &portable_kernels();
    } else if (name == "avx512-bf16") {
      set = avx512;
    } else if (name == "avx512-amx") {
      set = amx_bf16_kernels();
    } else {
      throw Error("BRINGUP_KERNELS: '" + name +
                  "' is not a kernel set (expected portable, avx512-bf16 or avx512-amx)");
    }
    if (!set) {
      throw Error("BRINGUP_KERNELS: this CPU or operating system cannot run the " + name +
                  " kernel set");
    }
    return set;
  }();
  return *best;
}

}  // namespace bringup::cpu
