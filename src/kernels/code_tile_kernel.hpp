// The register-blocked micro-kernel over compressed blocks (layout: code_kernels.hpp), written once
// and instantiated by every x86 code file with its own `Ops`. Include it only from an ISA file,
// inside an anonymous namespace, so each instantiation keeps internal linkage and that file's flags.
//
// Both codecs look the same here: a line is 64 bytes holding one 32-bit lane per row, and a query
// contributes one 32-bit group (a bf16 pair or an int8 quad) per line. Ops provides:
//   Vec zero(); Line load(const uint8_t* line); Q query(const uint8_t* group);
//   Vec step(Line rows, Q q, Vec acc);  void prefetch(const uint8_t* p);
//   void store(float* dst, Vec acc, const Epi& epi, size_t q, size_t row);
// Shape: M queries x NB blocks accumulate in M*NB registers; each line step loads NB lines and
// broadcasts M groups, so one loaded line feeds M dot steps.

template <class Ops, int NB, int M, bool Prefetch, class Epi>
inline void code_group(const std::uint8_t* blocks, std::size_t lines, const std::uint8_t* queries,
                       std::size_t query_bytes, const Epi& epi, std::size_t row0, float* scores,
                       std::size_t score_stride) {
  using Vec = typename Ops::Vec;
  const std::size_t block_bytes = lines * nndex::kernels::kCodeLineBytes;
  Vec acc[M][NB];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) acc[m][b] = Ops::zero();
  // One query over a matrix beyond the caches is bound by memory, and the NB interleaved block
  // streams defeat the hardware prefetcher: prefetch the next NB blocks (one contiguous region) in
  // address order, NB lines per step, as score_tiles_streaming does for float32.
  const std::uint8_t* next_region = blocks + NB * block_bytes;
  for (std::size_t l = 0; l < lines; ++l) {
    const std::uint8_t* line = blocks + l * nndex::kernels::kCodeLineBytes;
    if constexpr (Prefetch) {
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) Ops::prefetch(next_region + (l * NB + b) * nndex::kernels::kCodeLineBytes);
    }
    typename Ops::Line rows[NB];
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) rows[b] = Ops::load(line + b * block_bytes);
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      const auto q = Ops::query(queries + m * query_bytes + l * 4);
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) acc[m][b] = Ops::step(rows[b], q, acc[m][b]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b)
      Ops::store(scores + m * score_stride + b * nndex::kernels::kBlockRows, acc[m][b], epi,
                 static_cast<std::size_t>(m), row0 + static_cast<std::size_t>(b) * nndex::kernels::kBlockRows);
}

template <class Ops, int NB, int M, bool Prefetch, class Epi>
inline void code_blocks(const std::uint8_t* blocks, std::size_t nblocks, std::size_t lines,
                        const std::uint8_t* queries, std::size_t query_bytes, const Epi& epi, float* scores,
                        std::size_t score_stride) {
  const std::size_t block_bytes = lines * nndex::kernels::kCodeLineBytes;
  std::size_t b = 0;
  for (; b + NB <= nblocks; b += NB)
    code_group<Ops, NB, M, Prefetch>(blocks + b * block_bytes, lines, queries, query_bytes, epi,
                                     b * nndex::kernels::kBlockRows, scores + b * nndex::kernels::kBlockRows,
                                     score_stride);
  for (; b < nblocks; ++b)
    code_group<Ops, 1, M, false>(blocks + b * block_bytes, lines, queries, query_bytes, epi,
                                 b * nndex::kernels::kBlockRows, scores + b * nndex::kernels::kBlockRows,
                                 score_stride);
}

// NB1: blocks per step for one query (streams with prefetch: the single-query path runs over
// matrices beyond the caches); NBM: blocks per step when 2..kMaxQueryGroup queries share each line.
// Epi carries what the store needs besides the sum (int8: offsets and row scales).
template <class Ops, int NB1, int NBM, class Epi>
void code_scores(const std::uint8_t* blocks, std::size_t nblocks, std::size_t lines, const std::uint8_t* queries,
                 std::size_t query_bytes, std::size_t nq, const Epi& epi, float* scores, std::size_t score_stride) {
  switch (nq) {
    case 1: code_blocks<Ops, NB1, 1, true>(blocks, nblocks, lines, queries, query_bytes, epi, scores, score_stride); break;
    case 2: code_blocks<Ops, NBM, 2, false>(blocks, nblocks, lines, queries, query_bytes, epi, scores, score_stride); break;
    case 3: code_blocks<Ops, NBM, 3, false>(blocks, nblocks, lines, queries, query_bytes, epi, scores, score_stride); break;
    case 4: code_blocks<Ops, NBM, 4, false>(blocks, nblocks, lines, queries, query_bytes, epi, scores, score_stride); break;
    case 5: code_blocks<Ops, NBM, 5, false>(blocks, nblocks, lines, queries, query_bytes, epi, scores, score_stride); break;
    default: code_blocks<Ops, NBM, 6, false>(blocks, nblocks, lines, queries, query_bytes, epi, scores, score_stride); break;
  }
}

// The two codecs' entry points over code_scores (the ScoreBf16Fn / ScoreInt8Fn signatures).
struct NoEpi {};
struct Int8Epi {
  const float* row_scales;
  const std::int32_t* offsets;
};

template <class Ops, int NB1, int NBM>
void bf16_scores(const std::uint16_t* blocks, std::size_t nblocks, std::size_t lines, const std::uint16_t* queries,
                 std::size_t query_stride, std::size_t nq, float* scores, std::size_t score_stride) {
  code_scores<Ops, NB1, NBM>(reinterpret_cast<const std::uint8_t*>(blocks), nblocks, lines,
                             reinterpret_cast<const std::uint8_t*>(queries), query_stride * sizeof(std::uint16_t), nq,
                             NoEpi{}, scores, score_stride);
}

template <class Ops, int NB1, int NBM>
void int8_scores(const std::uint8_t* blocks, const float* row_scales, std::size_t nblocks, std::size_t lines,
                 const std::int8_t* queries, const std::int32_t* offsets, std::size_t query_stride, std::size_t nq,
                 float* scores, std::size_t score_stride) {
  code_scores<Ops, NB1, NBM>(blocks, nblocks, lines, reinterpret_cast<const std::uint8_t*>(queries), query_stride, nq,
                             Int8Epi{row_scales, offsets}, scores, score_stride);
}
