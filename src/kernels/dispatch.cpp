// Runtime CPU detection: resolves the kernel table once, in a function-local static.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/kernels.hpp"

namespace nndex::kernels {
namespace {

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
#if defined(NNDEX_HAVE_AVX2)
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if defined(NNDEX_HAVE_AVX512)
    case Isa::avx512: return __builtin_cpu_supports("avx512f");
#endif
#if defined(NNDEX_HAVE_NEON)
    case Isa::neon: return true;  // baseline on AArch64
#endif
    default: return false;
  }
}

const KernelTable& table_of(Isa isa) {
  switch (isa) {
#if defined(NNDEX_HAVE_AVX512)
    case Isa::avx512: return avx512_table();
#endif
#if defined(NNDEX_HAVE_AVX2)
    case Isa::avx2: return avx2_table();
#endif
#if defined(NNDEX_HAVE_NEON)
    case Isa::neon: return neon_table();
#endif
    default: return scalar_table();
  }
}

const KernelTable& resolve() {
  Isa best = Isa::scalar;
  for (Isa isa : {Isa::neon, Isa::avx2, Isa::avx512})
    if (cpu_supports(isa)) best = isa;
  if (const char* forced = std::getenv("NNDEX_ISA"); forced != nullptr && *forced != '\0') {
    // "amx" caps only the compressed-row kernels (code_dispatch.cpp); float32 runs its best level.
    bool known = std::strcmp(forced, "amx") == 0;
    for (Isa isa : {Isa::scalar, Isa::neon, Isa::avx2, Isa::avx512}) {
      if (isa_name(isa) != forced) continue;
      known = true;
      if (cpu_supports(isa) && static_cast<int>(isa) <= static_cast<int>(best)) best = isa;
      else std::fprintf(stderr, "[nndex] NNDEX_ISA=%s is not available on this CPU; using %s\n", forced,
                        table_of(best).name);
    }
    if (!known)
      std::fprintf(stderr, "[nndex] NNDEX_ISA=%s is unknown (scalar, neon, avx2, avx512, amx); using %s\n", forced,
                   table_of(best).name);
  }
  return table_of(best);
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::neon: return "neon";
    default: return "scalar";
  }
}

const KernelTable& active() {
  static const KernelTable& table = resolve();
  return table;
}

const KernelTable* for_isa(Isa isa) { return cpu_supports(isa) ? &table_of(isa) : nullptr; }

}  // namespace nndex::kernels
