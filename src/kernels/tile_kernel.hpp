// The register-blocked tile micro-kernel, written once and instantiated by every ISA file with its own
// `Ops` (a 16-float block type with zero/load/broadcast/fma/store). Include it only from an ISA file,
// inside an anonymous namespace, so each instantiation keeps internal linkage and its own ISA flags.
//
// Shape: M queries x NB blocks of 16 rows are accumulated in M*NB registers; each step over j loads NB
// tile lines and broadcasts M query values, so one loaded line feeds M multiply-adds.

template <class Ops, int NB, int M, bool Prefetch>
inline void score_group(const float* tiles, std::size_t dims, const float* queries, float* scores,
                        std::size_t score_stride) {
  using Block = typename Ops::Block;
  const std::size_t block_floats = dims * nndex::kernels::kBlockRows;
  Block acc[M][NB];
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) acc[m][b] = Ops::zero();
  // A single query over a matrix larger than the caches streams it from memory, and its NB
  // interleaved block streams defeat the hardware prefetcher; so it prefetches the next NB blocks
  // (one contiguous region) in address order, NB lines per step. In-cache data and batches (which
  // reuse an L2-resident panel) run without it: the extra instructions cost ~15% there.
  const float* next_region = tiles + NB * block_floats;
  for (std::size_t j = 0; j < dims; ++j) {
    const float* line = tiles + j * nndex::kernels::kBlockRows;
    if constexpr (Prefetch) {
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) Ops::prefetch(next_region + (j * NB + b) * nndex::kernels::kBlockRows);
    }
    Block rows[NB];
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) rows[b] = Ops::load(line + b * block_floats);
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) {
      const auto q = Ops::broadcast(queries[m * dims + j]);
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) acc[m][b] = Ops::fma(rows[b], q, acc[m][b]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < M; ++m)
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) Ops::store(scores + m * score_stride + b * nndex::kernels::kBlockRows, acc[m][b]);
}

template <class Ops, int NB, int M, bool Prefetch = false>
inline void score_blocks(const float* tiles, std::size_t nblocks, std::size_t dims, const float* queries,
                         float* scores, std::size_t score_stride) {
  const std::size_t block_floats = dims * nndex::kernels::kBlockRows;
  std::size_t b = 0;
  for (; b + NB <= nblocks; b += NB)
    score_group<Ops, NB, M, Prefetch>(tiles + b * block_floats, dims, queries, scores + b * nndex::kernels::kBlockRows,
                            score_stride);
  for (; b < nblocks; ++b)
    score_group<Ops, 1, M, false>(tiles + b * block_floats, dims, queries, scores + b * nndex::kernels::kBlockRows,
                           score_stride);
}

// NB1: blocks per step for a single query (independent chains to hide FMA latency);
// NBM: blocks per step when several queries share each loaded line.
template <class Ops, int NB1, int NBM>
void score_tiles_impl(const float* tiles, std::size_t nblocks, std::size_t dims, const float* queries,
                      std::size_t nqueries, float* scores, std::size_t score_stride) {
  switch (nqueries) {
    case 1: score_blocks<Ops, NB1, 1>(tiles, nblocks, dims, queries, scores, score_stride); break;
    case 2: score_blocks<Ops, NBM, 2>(tiles, nblocks, dims, queries, scores, score_stride); break;
    case 3: score_blocks<Ops, NBM, 3>(tiles, nblocks, dims, queries, scores, score_stride); break;
    case 4: score_blocks<Ops, NBM, 4>(tiles, nblocks, dims, queries, scores, score_stride); break;
    case 5: score_blocks<Ops, NBM, 5>(tiles, nblocks, dims, queries, scores, score_stride); break;
    default: score_blocks<Ops, NBM, 6>(tiles, nblocks, dims, queries, scores, score_stride); break;
  }
}

// One query over a matrix streamed from memory (see score_group): same scores, with prefetching.
template <class Ops, int NB1>
void score_tiles_streaming_impl(const float* tiles, std::size_t nblocks, std::size_t dims, const float* query,
                                float* scores) {
  score_blocks<Ops, NB1, 1, true>(tiles, nblocks, dims, query, scores, 0);
}
