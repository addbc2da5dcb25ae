// Runtime choice of the compressed-row kernels: the best level the CPU (and, for AMX, the OS) allows,
// capped by NNDEX_ISA like the float32 table.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/code_kernels.hpp"

#if defined(NNDEX_HAVE_AMX)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(NNDEX_HAVE_NEON) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace nndex::kernels {
namespace {

#if defined(NNDEX_HAVE_AMX)
// Linux hands out the 8 KiB AMX tile state only on request, once per process; without it the first
// tile instruction faults. Any refusal (old kernel, seccomp, a VM that hides the feature) means no AMX.
bool amx_usable() {
  static const bool usable = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool tile = (d >> 24) & 1u, bf16 = (d >> 22) & 1u, int8 = (d >> 25) & 1u;
    if (!(tile && bf16 && int8)) return false;
    constexpr long kArchReqXcompPerm = 0x1023;
    constexpr long kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
}
#endif

#if defined(NNDEX_HAVE_NEON)
bool neon_has(bool bf16) {
#if defined(__linux__)
  constexpr unsigned long kHwcapAsimddp = 1ul << 20;
  constexpr unsigned long kHwcap2Bf16 = 1ul << 14;
  return bf16 ? (getauxval(AT_HWCAP2) & kHwcap2Bf16) != 0 : (getauxval(AT_HWCAP) & kHwcapAsimddp) != 0;
#elif defined(__APPLE__)
  return !bf16;  // every Apple core has dotprod; bf16 (M2 on) is not probed, so it widens
#else
  return false;
#endif
}
#endif

bool supports(Codec codec, CodeIsa level) {
  switch (level) {
    case CodeIsa::scalar: return true;
#if defined(NNDEX_HAVE_NEON)
    case CodeIsa::neon: return true;
    case CodeIsa::neon_dot: return neon_has(codec == Codec::bf16);
#endif
#if defined(NNDEX_HAVE_AVX2)
    case CodeIsa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CodeIsa::avx2_vnni:
      return codec == Codec::int8 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
#endif
#if defined(NNDEX_HAVE_AVX512)
    case CodeIsa::avx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    case CodeIsa::avx512_dot:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") &&
             (codec == Codec::bf16 ? __builtin_cpu_supports("avx512bf16") : __builtin_cpu_supports("avx512vnni"));
#endif
#if defined(NNDEX_HAVE_AMX)
    case CodeIsa::amx: return supports(codec, CodeIsa::avx512_dot) && amx_usable();
#endif
    default: return false;
  }
}

template <class Table>
const Table* table_for(Codec codec, CodeIsa level);

template <>
const Bf16Kernels* table_for<Bf16Kernels>(Codec, CodeIsa level) {
  switch (level) {
    case CodeIsa::scalar: return &bf16_scalar_table();
#if defined(NNDEX_HAVE_NEON)
    case CodeIsa::neon: return &bf16_neon_table();
    case CodeIsa::neon_dot: return &bf16_neon_dot_table();
#endif
#if defined(NNDEX_HAVE_AVX2)
    case CodeIsa::avx2: return &bf16_avx2_table();
#endif
#if defined(NNDEX_HAVE_AVX512)
    case CodeIsa::avx512: return &bf16_avx512_table();
    case CodeIsa::avx512_dot: return &bf16_avx512_dot_table();
#endif
#if defined(NNDEX_HAVE_AMX)
    case CodeIsa::amx: return &bf16_amx_table();
#endif
    default: return nullptr;
  }
}

template <>
const Int8Kernels* table_for<Int8Kernels>(Codec, CodeIsa level) {
  switch (level) {
    case CodeIsa::scalar: return &int8_scalar_table();
#if defined(NNDEX_HAVE_NEON)
    case CodeIsa::neon: return &int8_neon_table();
    case CodeIsa::neon_dot: return &int8_neon_dot_table();
#endif
#if defined(NNDEX_HAVE_AVX2)
    case CodeIsa::avx2: return &int8_avx2_table();
    case CodeIsa::avx2_vnni: return &int8_avx2_vnni_table();
#endif
#if defined(NNDEX_HAVE_AVX512)
    case CodeIsa::avx512: return &int8_avx512_table();
    case CodeIsa::avx512_dot: return &int8_avx512_dot_table();
#endif
#if defined(NNDEX_HAVE_AMX)
    case CodeIsa::amx: return &int8_amx_table();
#endif
    default: return nullptr;
  }
}

constexpr CodeIsa kLevels[] = {CodeIsa::scalar,    CodeIsa::neon,   CodeIsa::neon_dot,   CodeIsa::avx2,
                               CodeIsa::avx2_vnni, CodeIsa::avx512, CodeIsa::avx512_dot, CodeIsa::amx};

// The highest level NNDEX_ISA allows: each float32 level name caps the code levels of its family.
CodeIsa cap_from_env() {
  const char* forced = std::getenv("NNDEX_ISA");
  if (forced == nullptr || *forced == '\0') return CodeIsa::amx;
  if (std::strcmp(forced, "scalar") == 0) return CodeIsa::scalar;
  if (std::strcmp(forced, "neon") == 0) return CodeIsa::neon_dot;
  if (std::strcmp(forced, "avx2") == 0) return CodeIsa::avx2_vnni;
  if (std::strcmp(forced, "avx512") == 0) return CodeIsa::avx512_dot;
  return CodeIsa::amx;  // "amx" or an unknown name (dispatch.cpp reports unknown names once)
}

template <class Table>
const Table& resolve(Codec codec) {
  const CodeIsa cap = cap_from_env();
  const Table* best = table_for<Table>(codec, CodeIsa::scalar);
  for (CodeIsa level : kLevels) {
    if (static_cast<int>(level) > static_cast<int>(cap) || !supports(codec, level)) continue;
    if (const Table* t = table_for<Table>(codec, level)) best = t;
  }
  return *best;
}

}  // namespace

const char* code_isa_name(CodeIsa level) {
  switch (level) {
    case CodeIsa::neon: return "neon";
    case CodeIsa::neon_dot: return "neon-dot";
    case CodeIsa::avx2: return "avx2";
    case CodeIsa::avx2_vnni: return "avx2-vnni";
    case CodeIsa::avx512: return "avx512";
    case CodeIsa::avx512_dot: return "avx512-dot";
    case CodeIsa::amx: return "amx";
    default: return "scalar";
  }
}

const Bf16Kernels& active_bf16() {
  static const Bf16Kernels& table = resolve<Bf16Kernels>(Codec::bf16);
  return table;
}

const Int8Kernels& active_int8() {
  static const Int8Kernels& table = resolve<Int8Kernels>(Codec::int8);
  return table;
}

const Bf16Kernels* bf16_for(CodeIsa level) {
  return supports(Codec::bf16, level) ? table_for<Bf16Kernels>(Codec::bf16, level) : nullptr;
}

const Int8Kernels* int8_for(CodeIsa level) {
  return supports(Codec::int8, level) ? table_for<Int8Kernels>(Codec::int8, level) : nullptr;
}

}  // namespace nndex::kernels
