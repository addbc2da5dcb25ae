// Validation and normalisation of input vectors (matrix rows and queries share this code, so a row and
// an identical query always become the same floats).
#pragma once

#include <cstddef>
#include <string>

#include "kernels/kernels.hpp"
#include "nndex/types.hpp"

namespace nndex::core {

// How errors name the vector: "row 12", "query 3", or "query".
struct VectorLabel {
  const char* kind;  // "row" or "query"
  std::size_t index;
  bool numbered = true;
  std::string str() const;
};

// Reads row `r` of `src` into `out` (dims floats), checks every value is finite and, when `normalize`,
// scales it to unit L2 norm. Throws NonFiniteValue / ZeroNorm naming `label`.
void prepare_vector(const MatrixView& src, std::size_t r, bool normalize, const kernels::KernelTable& kt,
                    float* out, const VectorLabel& label);

}  // namespace nndex::core
