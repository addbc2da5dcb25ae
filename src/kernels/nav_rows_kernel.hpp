// The loop of DotRowsInt8Fn (code_kernels.hpp) shared by every level: four rows at a time, each its
// own accumulator chain against one load of the query, so the chains overlap; the remainder one by one.
// Included inside each ISA file's anonymous namespace after its Ops, which provide:
//   kBytes              codes consumed per step (row_bytes is a multiple of it);
//   Acc, Q              accumulator and loaded-query types; zero(), load_query(p);
//   step(acc, row, q)   acc += the step's products (exact int32);
//   total(acc)          the horizontal sum;
//   kSubtractsOffset    false where step sums (stored - 128) * q already (NEON).
// Not a header of its own translation unit: each ISA file compiles it with its own flags.

template <class Ops>
void dot_rows_loop(const std::uint8_t* rows, std::size_t row_bytes, const std::uint32_t* ids, std::size_t n,
                   const std::int8_t* query, std::int32_t offset, std::int32_t* out) {
  const std::int32_t minus = Ops::kSubtractsOffset ? offset : 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const std::uint8_t* r0 = rows + std::size_t{ids[i]} * row_bytes;
    const std::uint8_t* r1 = rows + std::size_t{ids[i + 1]} * row_bytes;
    const std::uint8_t* r2 = rows + std::size_t{ids[i + 2]} * row_bytes;
    const std::uint8_t* r3 = rows + std::size_t{ids[i + 3]} * row_bytes;
    typename Ops::Acc a0 = Ops::zero(), a1 = Ops::zero(), a2 = Ops::zero(), a3 = Ops::zero();
    for (std::size_t b = 0; b < row_bytes; b += Ops::kBytes) {
      const typename Ops::Q q = Ops::load_query(query + b);
      a0 = Ops::step(a0, r0 + b, q);
      a1 = Ops::step(a1, r1 + b, q);
      a2 = Ops::step(a2, r2 + b, q);
      a3 = Ops::step(a3, r3 + b, q);
    }
    out[i] = Ops::total(a0) - minus;
    out[i + 1] = Ops::total(a1) - minus;
    out[i + 2] = Ops::total(a2) - minus;
    out[i + 3] = Ops::total(a3) - minus;
  }
  for (; i < n; ++i) {
    const std::uint8_t* r = rows + std::size_t{ids[i]} * row_bytes;
    typename Ops::Acc a = Ops::zero();
    for (std::size_t b = 0; b < row_bytes; b += Ops::kBytes) a = Ops::step(a, r + b, Ops::load_query(query + b));
    out[i] = Ops::total(a) - minus;
  }
}
