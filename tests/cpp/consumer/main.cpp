// Builds an index through the installed package and checks a search whose answer is known.
#include <cmath>
#include <cstdio>
#include <vector>

#include <nndex/nndex.hpp>

int main() {
  // Rows 0..3 point along the axes; row 4 is a scaled copy of row 2.
  const std::vector<float> data = {
      1, 0, 0,  //
      0, 1, 0,  //
      0, 0, 1,  //
      -1, 0, 0, //
      0, 0, 5,  //
  };
  try {
    nndex::Index index(data, 5, 3, nndex::IndexOptions{false, 1});
    if (index.rows() != 5 || index.dims() != 3) {
      std::fprintf(stderr, "wrong shape %zu x %zu\n", index.rows(), index.dims());
      return 1;
    }
    const std::vector<float> query = {0.0f, 0.1f, 2.0f};
    const auto hits = index.search(query, 3);
    // Cosine: rows 2 and 4 tie (same direction), lower index first; then row 1.
    if (hits.size() != 3 || hits[0].index != 2 || hits[1].index != 4 || hits[2].index != 1) {
      std::fprintf(stderr, "wrong neighbours:");
      for (const auto& h : hits) std::fprintf(stderr, " %lld(%g)", static_cast<long long>(h.index), h.similarity);
      std::fprintf(stderr, "\n");
      return 1;
    }
    const double expected = 2.0 / std::sqrt(0.01 + 4.0);
    if (std::fabs(hits[0].similarity - expected) > 1e-5 || hits[0].similarity != hits[1].similarity) {
      std::fprintf(stderr, "wrong similarity %g, expected %g\n", hits[0].similarity, expected);
      return 1;
    }
    // Errors arrive as the documented types.
    try {
      index.search(std::vector<float>{1.0f, 2.0f}, 1);
      std::fprintf(stderr, "dimension mismatch not reported\n");
      return 1;
    } catch (const nndex::DimensionMismatch& e) {
      if (e.expected() != 3 || e.actual() != 2) return 1;
    }
    std::printf("nndex %s consumer ok (isa %.*s)\n", NNDEX_VERSION_STRING, static_cast<int>(index.isa().size()),
                index.isa().data());
  } catch (const nndex::Error& e) {
    std::fprintf(stderr, "nndex error: %s\n", e.what());
    return 1;
  }
  return 0;
}
