// XXH64, the 64-bit xxHash (Yann Collet's published algorithm, implemented here from its description),
// checksums index files. Written in-tree so the build needs no system library; the tests check it
// against published vectors (GoogleTest) and against the PyPI `xxhash` package (pytest).
#pragma once

#include <cstddef>
#include <cstdint>

namespace nndex::io {

// XXH64 of `bytes` bytes at `data` (any alignment) with `seed`.
std::uint64_t xxh64(const void* data, std::size_t bytes, std::uint64_t seed = 0) noexcept;

}  // namespace nndex::io
