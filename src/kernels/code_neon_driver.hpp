// The block and query-pass loops shared by the NEON code files (codes_neon.cpp, codes_neon_dot.cpp).
// Include it inside the file's anonymous namespace, after the file defines
//   template <int M> constexpr int blocks_per_step();          blocks per step for M queries
//   template <int NB, int M> void bf16_group(blocks, lines, queries, query_stride, scores, score_stride);
//   template <int NB, int M> void int8_group(blocks, row_scales, lines, queries, terms, query_stride,
//                                            scores, score_stride);
//   template <int M> void int8_terms(queries, lines, offsets, query_stride, std::int32_t (&terms)[M]);
// where `terms` is what the file's int8_group combines with each sum (the offsets themselves, or a
// residual its dot-product scheme needs), so each file keeps only its arithmetic.

// Calls f.template operator()<M>() for M = min(count, Max) (count >= 1).
template <int Max, class F>
inline void with_query_count(std::size_t count, F&& f) {
  if constexpr (Max > 1) {
    if (count < static_cast<std::size_t>(Max)) return with_query_count<Max - 1>(count, f);
  }
  f.template operator()<Max>();
}

template <int M>
void bf16_queries(const std::uint16_t* blocks, std::size_t nblocks, std::size_t lines, const std::uint16_t* queries,
                  std::size_t query_stride, float* scores, std::size_t score_stride) {
  constexpr int NB = blocks_per_step<M>();
  const std::size_t block_elems = lines * (kCodeLineBytes / sizeof(std::uint16_t));
  std::size_t b = 0;
  for (; b + NB <= nblocks; b += NB)
    bf16_group<NB, M>(blocks + b * block_elems, lines, queries, query_stride, scores + b * kBlockRows, score_stride);
  for (; b < nblocks; ++b)
    bf16_group<1, M>(blocks + b * block_elems, lines, queries, query_stride, scores + b * kBlockRows, score_stride);
}

template <int M>
void int8_queries(const std::uint8_t* blocks, const float* row_scales, std::size_t nblocks, std::size_t lines,
                  const std::int8_t* queries, const std::int32_t* offsets, std::size_t query_stride, float* scores,
                  std::size_t score_stride) {
  std::int32_t terms[M];
  int8_terms<M>(queries, lines, offsets, query_stride, terms);
  constexpr int NB = blocks_per_step<M>();
  const std::size_t block_bytes = lines * kCodeLineBytes;
  std::size_t b = 0;
  for (; b + NB <= nblocks; b += NB)
    int8_group<NB, M>(blocks + b * block_bytes, row_scales + b * kBlockRows, lines, queries, terms, query_stride,
                      scores + b * kBlockRows, score_stride);
  for (; b < nblocks; ++b)
    int8_group<1, M>(blocks + b * block_bytes, row_scales + b * kBlockRows, lines, queries, terms, query_stride,
                     scores + b * kBlockRows, score_stride);
}

// Any nq: passes of Pass queries, then the remainder (so `many` can be the same function as `few`).
template <int Pass>
void bf16_passes(const std::uint16_t* blocks, std::size_t nblocks, std::size_t lines, const std::uint16_t* queries,
                 std::size_t query_stride, std::size_t nq, float* scores, std::size_t score_stride) {
  for (std::size_t q = 0; q < nq; q += Pass)
    with_query_count<Pass>(nq - q, [&]<int M>() {
      bf16_queries<M>(blocks, nblocks, lines, queries + q * query_stride, query_stride, scores + q * score_stride,
                      score_stride);
    });
}

template <int Pass>
void int8_passes(const std::uint8_t* blocks, const float* row_scales, std::size_t nblocks, std::size_t lines,
                 const std::int8_t* queries, const std::int32_t* offsets, std::size_t query_stride, std::size_t nq,
                 float* scores, std::size_t score_stride) {
  for (std::size_t q = 0; q < nq; q += Pass)
    with_query_count<Pass>(nq - q, [&]<int M>() {
      int8_queries<M>(blocks, row_scales, nblocks, lines, queries + q * query_stride, offsets + q, query_stride,
                      scores + q * score_stride, score_stride);
    });
}
