// Serialising an index to the single-file format and validating a file before use (the layout and the
// rules are in docs/index-format.md); the platform file calls are in file_access.cpp.
#include "io/index_file.hpp"

#include <bit>
#include <cstring>
#include <limits>
#include <type_traits>

#include "io/checksum.hpp"
#include "io/file_access.hpp"
#include "io/format.hpp"
#include "io/graph_sections.hpp"
#include "nndex/errors.hpp"

namespace nndex::io {
namespace {

using namespace format;


// Lays out header and sections; `emit(offset, data, bytes)` writes each piece.
template <class Emit>
std::size_t serialise(const IndexContents& c, Emit&& emit) {
  std::vector<Section> sections;
  std::vector<std::uint64_t> cluster_words;
  std::vector<float> materialised;  // float32 rows of an index that borrows them from the caller
  GraphInfo graph_info{};
  FixedHeader h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kFormatVersion;
  h.flags = (c.normalized ? kNormalized : 0) | (c.approx ? kApprox : 0) | (c.ivf ? kIvf : 0);
  if (c.codes != nullptr) h.flags |= c.codes->codec() == kernels::Codec::int8 ? kInt8 : kBf16;
  if (c.graph != nullptr) h.flags |= kGraph | (c.graph_storage == Storage::int8 ? kInt8 : 0);
  h.block_rows = static_cast<std::uint32_t>(kernels::kBlockRows);
  h.rows = c.rows;
  h.dims = c.dims;
  if (c.ivf != nullptr) {
    const auto& p = *c.ivf;
    for (const auto& s : p.clusters) cluster_words.insert(cluster_words.end(), {s.block_begin, s.block_end, s.rows});
    h.nlist = p.clusters.size();
    h.nprobe = p.nprobe;
    if (c.codes == nullptr) sections.push_back({kTiles, 4, p.data.data(), p.data.bytes()});
    sections.push_back({kIds, 8, p.ids.data(), p.ids.size() * sizeof(std::int64_t)});
    sections.push_back({kClusters, 8, cluster_words.data(), cluster_words.size() * sizeof(std::uint64_t)});
    sections.push_back({kCentroids, 4, p.centroids.data(), p.centroids.bytes()});
  } else if (c.codes == nullptr && c.graph == nullptr) {
    sections.push_back({kTiles, 4, c.matrix->data(), c.matrix->bytes()});
  }
  if (c.codes != nullptr) {
    const auto& m = *c.codes;
    // The codes section carries the readable slack the kernels may touch past the last block.
    sections.push_back({kCodes, m.codec() == kernels::Codec::int8 ? 1u : 2u, m.codes(),
                        m.code_bytes() + kernels::kCodeSlackBytes});
    if (m.codec() == kernels::Codec::int8) sections.push_back({kScales, 4, m.scales(), m.scale_count() * sizeof(float)});
  }
  if (c.graph != nullptr) add_graph_sections(*c.graph, graph_info, sections);
  if (c.codes != nullptr || c.graph != nullptr) {
    const storage::ExactRows& rows = *c.exact_rows;
    const float* prepared = rows.prepared();
    if (prepared == nullptr) {
      materialised.resize(rows.rows() * rows.dims());
      for (std::size_t r = 0; r < rows.rows(); ++r) rows.read(r, kernels::active(), materialised.data() + r * rows.dims());
      prepared = materialised.data();
    }
    sections.push_back({kRows, 4, prepared, rows.rows() * rows.dims() * sizeof(float)});
  }
  h.sections = sections.size();
  h.header_bytes = static_cast<std::uint32_t>(kFixedHeader + kSectionEntry * sections.size());

  std::vector<SectionEntry> table;
  std::size_t offset = align_up(h.header_bytes + sizeof(std::uint64_t));
  for (const auto& s : sections) {
    table.push_back({s.kind, s.element_bytes, offset, s.bytes, xxh64(s.data, s.bytes)});
    offset = align_up(offset + s.bytes);
  }
  std::vector<std::byte> header(h.header_bytes + sizeof(std::uint64_t));
  std::memcpy(header.data(), &h, sizeof h);
  std::memcpy(header.data() + kFixedHeader, table.data(), table.size() * kSectionEntry);
  const std::uint64_t header_sum = xxh64(header.data(), h.header_bytes);
  std::memcpy(header.data() + h.header_bytes, &header_sum, sizeof header_sum);

  emit(0, header.data(), header.size());
  for (std::size_t i = 0; i < sections.size(); ++i) emit(table[i].offset, sections[i].data, sections[i].bytes);
  return offset;  // total size, padded to the alignment
}

// The layout is canonical, so no byte of a file goes unchecked: the sections follow the header in
// table order, each at the first page boundary after the previous piece, the file ends at the page
// boundary after the last one, and every padding byte in between is zero.
void check_layout(const std::string& name, std::span<const std::byte> bytes, std::size_t header_end,
                  const std::vector<SectionEntry>& table) {
  auto zero_padding = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i)
      if (bytes[i] != std::byte{0})
        bad(name, "non-zero padding byte at offset " + std::to_string(i) + " (the file is corrupt)");
  };
  std::size_t at = header_end;
  for (const auto& e : table) {
    if (e.offset != align_up(at))
      bad(name, "a section starts at offset " + std::to_string(e.offset) + ", expected " + std::to_string(align_up(at)));
    zero_padding(at, e.offset);  // in the file: section_data checked every section's extent
    at = e.offset + e.bytes;
  }
  if (bytes.size() != align_up(at))
    bad(name, "the file holds " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(align_up(at)) +
                  " (truncated, or bytes appended)");
  zero_padding(at, bytes.size());
}

// The compressed sections: `stored` code rows (the IVF's padded slots, or the rows), their scales for
// int8, and the float32 rows (`rows` of them, row order) that re-rank them.
template <class Find>
void read_compressed(const std::string& name, std::span<const std::byte> bytes, const std::shared_ptr<const void>& owner,
                     bool verify, std::size_t stored, std::size_t dims, kernels::Codec codec, std::size_t rows,
                     Find&& find, LoadedIndex& out) {
  const auto code_bytes = mul(stored + kernels::kBlockRows, dims * 2);  // bound before the exact size
  const auto row_bytes = mul(rows, dims * sizeof(float));
  if (!code_bytes || !row_bytes || *code_bytes / 2 > bytes.size() || *row_bytes > bytes.size())
    bad(name, "absurd shape " + std::to_string(rows) + " x " + std::to_string(dims) + " for a file of " +
                  std::to_string(bytes.size()) + " bytes");
  const std::size_t expect = storage::CodeMatrix::code_bytes_for(codec, stored, dims) + kernels::kCodeSlackBytes;
  const auto* codes = section_data<std::byte>(name, bytes, find(kCodes, "codes"), expect, "codes", verify);
  if (verify && codec == kernels::Codec::bf16) {
    // A bf16 NaN or infinity would rank rows arbitrarily, as a float one would.
    const auto* words = reinterpret_cast<const std::uint16_t*>(codes);
    std::uint32_t bad_bits = 0;
    for (std::size_t i = 0; i < expect / 2; ++i) bad_bits |= static_cast<std::uint32_t>((words[i] & 0x7f80u) == 0x7f80u);
    if (bad_bits != 0) bad(name, "non-finite values in the codes section");
  }
  const float* scales = nullptr;
  if (codec == kernels::Codec::int8) {
    const std::size_t count = (stored + kernels::kBlockRows - 1) / kernels::kBlockRows * kernels::kBlockRows;
    scales = section_data<float>(name, bytes, find(kScales, "scales"), count * sizeof(float), "scales", verify);
    if (verify)
      for (std::size_t i = 0; i < count; ++i)
        if (!(scales[i] >= 0.0f)) bad(name, "negative scale in the scales section");
  }
  const float* exact = section_data<float>(name, bytes, find(kRows, "rows"), *row_bytes, "rows", verify);
  out.codes = storage::CodeMatrix(codec, stored, dims, codes, scales, owner);
  out.exact_rows = storage::ExactRows::mapped(exact, rows, dims, owner);
}

}  // namespace

std::size_t write_index(const IndexContents& contents, const WriteAt& write_at, std::size_t base) {
  return serialise(contents, [&](std::size_t off, const void* data, std::size_t n) { write_at(base + off, data, n); });
}

void save_file(const std::string& path, const IndexContents& contents) {
  write_file_atomically(path, [&](const WriteAt& write_at) { return serialise(contents, write_at); });
}

std::vector<std::byte> to_bytes(const IndexContents& contents) {
  std::vector<std::byte> out;
  serialise(contents, [&](std::size_t off, const void* data, std::size_t n) {
    if (out.size() < off + n) out.resize(align_up(off + n));
    std::memcpy(out.data() + off, data, n);
  });
  return out;
}

LoadedIndex read_index(const std::string& name, std::span<const std::byte> bytes, std::shared_ptr<const void> owner,
                       bool verify) {
  if (bytes.size() < kFixedHeader + sizeof(std::uint64_t))
    bad(name, "too short to be an index (" + std::to_string(bytes.size()) + " bytes)");
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) bad(name, "not an nndex index (wrong magic bytes)");
  FixedHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.version > kFormatVersion)
    bad(name, "written in format version " + std::to_string(h.version) + " by a newer nndex; this build reads " +
                  "version " + std::to_string(kFormatVersion) + " (upgrade nndex)");
  if (h.version == 0) bad(name, "format version 0 is invalid");
  if (h.version < kOldestReadableVersion)
    bad(name, "written in format version " + std::to_string(h.version) + ", which this build no longer reads (it reads " +
                  "version " + std::to_string(kFormatVersion) + "); the file must be re-saved by this version of " +
                  "nndex: rebuild the index from its data and save it again");
  if (h.sections == 0 || h.sections > kMaxSections || h.header_bytes != kFixedHeader + kSectionEntry * h.sections)
    bad(name, "the header's section table is malformed");
  if (bytes.size() < h.header_bytes + sizeof(std::uint64_t)) bad(name, "truncated header");
  std::uint64_t header_sum;
  std::memcpy(&header_sum, bytes.data() + h.header_bytes, sizeof header_sum);
  if (xxh64(bytes.data(), h.header_bytes) != header_sum) bad(name, "header checksum mismatch (the file is corrupt)");
  if (h.block_rows != kernels::kBlockRows)
    bad(name, "block size " + std::to_string(h.block_rows) + " is not supported (expected 16)");
  if (h.rows == 0 || h.dims == 0) bad(name, "empty index (rows or dims is 0)");
  std::vector<SectionEntry> table(h.sections);
  std::memcpy(table.data(), bytes.data() + kFixedHeader, h.sections * kSectionEntry);
  auto find = [&](SectionKind kind, const char* what) -> const SectionEntry& {
    for (const auto& e : table)
      if (e.kind == kind) return e;
    bad(name, std::string("missing ") + what + " section");
  };

  LoadedIndex out;
  out.rows = h.rows;
  out.dims = h.dims;
  out.normalized = (h.flags & kNormalized) != 0;
  out.approx = (h.flags & kApprox) != 0;
  if ((h.flags & ~kKnownFlags) != 0) bad(name, "unknown flags in header");
  if ((h.flags & kBf16) && (h.flags & kInt8)) bad(name, "flagged both bf16 and int8");
  const bool compressed = (h.flags & (kBf16 | kInt8)) != 0;
  const kernels::Codec codec = (h.flags & kInt8) ? kernels::Codec::int8 : kernels::Codec::bf16;
  out.storage = !compressed ? Storage::f32 : (h.flags & kInt8) ? Storage::int8 : Storage::bf16;
  if ((h.flags & kIvf) && !(h.flags & kApprox)) bad(name, "an IVF index must be flagged approximate");
  if (!(h.flags & kIvf) && (h.nlist != 0 || h.nprobe != 0)) bad(name, "nlist/nprobe set on an index without IVF");
  const bool is_graph = (h.flags & kGraph) != 0;
  if (is_graph && ((h.flags & (kIvf | kBf16)) || !(h.flags & kApprox)))
    bad(name, "a graph index must be approximate, without IVF or bf16 flags");
  for (const auto& e : table) {
    const std::uint32_t want = e.kind == kIds || e.kind == kClusters || e.kind == kGraphInfo ? 8
                               : e.kind == kCodes ? (codec == kernels::Codec::int8 ? 1 : 2)
                               : e.kind == kNavCodes ? 1
                                                     : 4;
    if (e.kind < kTiles || e.kind > kUpperLinks) bad(name, "unknown section kind " + std::to_string(e.kind));
    if (e.element_bytes != want) bad(name, "section element size " + std::to_string(e.element_bytes) + " is wrong");
    for (const auto& other : table)
      if (&other != &e && other.kind == e.kind) bad(name, "section kind " + std::to_string(e.kind) + " appears twice");
  }
  // float32: tiles (+ ids, clusters, centroids with IVF); compressed: codes, rows, scales for int8, and
  // the same IVF sections without tiles.
  const std::size_t expected_sections =
      is_graph ? 7u : ((h.flags & kIvf) ? 3u : 0u) + (!compressed ? 1u : (codec == kernels::Codec::int8 ? 3u : 2u));
  if (h.sections != expected_sections)
    bad(name, std::to_string(h.sections) + " sections, expected " + std::to_string(expected_sections));
  const std::size_t header_end = h.header_bytes + sizeof(std::uint64_t);

  if (is_graph) {
    if (h.nlist != 0 || h.nprobe != 0) bad(name, "nlist/nprobe set on a graph index");
    out.graph = read_graph_sections(name, bytes, owner, verify, h.rows, h.dims, find);
    const auto row_bytes = mul(h.rows, h.dims * sizeof(float));
    if (!row_bytes) bad(name, "absurd shape");
    const float* rows = section_data<float>(name, bytes, find(kRows, "rows"), *row_bytes, "rows", verify);
    out.graph->exact_rows = storage::ExactRows::mapped(rows, h.rows, h.dims, owner);
    check_layout(name, bytes, header_end, table);
    return out;
  }
  // Sizes are checked against the file before anything is allocated or read.
  if (!(h.flags & kIvf)) {
    const auto floats = mul(h.rows + (kernels::kBlockRows - 1), h.dims);
    if (!floats || h.rows > bytes.size() || h.dims > bytes.size()) bad(name, "absurd shape " + std::to_string(h.rows) + " x " + std::to_string(h.dims) + " for a file of " + std::to_string(bytes.size()) + " bytes");
    if (compressed) {
      read_compressed(name, bytes, owner, verify, h.rows, h.dims, codec, h.rows, find, out);
      check_layout(name, bytes, header_end, table);
      return out;
    }
    const std::size_t expect = core::TiledMatrix::bytes_for(h.rows, h.dims);
    const float* tiles = section_data<float>(name, bytes, find(kTiles, "tiles"), expect, "tiles", verify);
    check_layout(name, bytes, header_end, table);
    out.matrix = core::TiledMatrix(h.rows, h.dims, tiles, owner);
    return out;
  }

  const std::size_t nlist = h.nlist;
  if (nlist == 0 || nlist > h.rows) bad(name, "invalid nlist " + std::to_string(nlist));
  if (h.nprobe == 0 || h.nprobe > nlist) bad(name, "invalid nprobe " + std::to_string(h.nprobe));
  if (h.rows > bytes.size() || h.dims > bytes.size() || nlist > bytes.size())
    bad(name, "absurd shape " + std::to_string(h.rows) + " x " + std::to_string(h.dims) + " for a file of " +
                  std::to_string(bytes.size()) + " bytes");
  const SectionEntry& cl = find(kClusters, "clusters");
  const auto* words = section_data<std::uint64_t>(name, bytes, cl, nlist * 3 * sizeof(std::uint64_t), "clusters", verify);
  ivf::IvfIndex::Parts p;
  p.rows = h.rows;
  p.dims = h.dims;
  p.nprobe = h.nprobe;
  std::size_t block = 0, total_rows = 0;
  for (std::size_t c = 0; c < nlist; ++c) {
    const scan::Segment s{words[3 * c], words[3 * c + 1], words[3 * c + 2]};
    if (s.block_begin != block || s.block_end < s.block_begin || s.block_end - s.block_begin > h.rows ||
        s.rows > (s.block_end - s.block_begin) * kernels::kBlockRows || s.rows + kernels::kBlockRows <= (s.block_end - s.block_begin) * kernels::kBlockRows)
      bad(name, "cluster table is inconsistent at cluster " + std::to_string(c));
    block = s.block_end;
    total_rows += s.rows;
    p.clusters.push_back(s);
  }
  if (total_rows != h.rows) bad(name, "clusters hold " + std::to_string(total_rows) + " rows, expected " + std::to_string(h.rows));
  const std::size_t stored = block * kernels::kBlockRows;
  const auto tile_bytes = mul(stored, h.dims * sizeof(float));
  const auto id_bytes = mul(stored, sizeof(std::int64_t));
  if (!tile_bytes || !id_bytes || *id_bytes > bytes.size()) bad(name, "absurd sizes in the cluster table");
  const float* tiles = nullptr;
  if (compressed) read_compressed(name, bytes, owner, verify, stored, h.dims, codec, h.rows, find, out);
  else tiles = section_data<float>(name, bytes, find(kTiles, "tiles"), *tile_bytes, "tiles", verify);
  const auto* ids = section_data<std::int64_t>(name, bytes, find(kIds, "ids"), *id_bytes, "ids", verify);
  const float* centroids = section_data<float>(name, bytes, find(kCentroids, "centroids"),
                                               core::TiledMatrix::bytes_for(nlist, h.dims), "centroids", verify);
  for (const auto& s : p.clusters)
    for (std::size_t r = 0; r < (s.block_end - s.block_begin) * kernels::kBlockRows; ++r) {
      const std::int64_t id = ids[s.block_begin * kernels::kBlockRows + r];
      if (r < s.rows ? (id < 0 || static_cast<std::uint64_t>(id) >= h.rows) : id != -1)
        bad(name, "row ids are out of range");
    }
  check_layout(name, bytes, header_end, table);
  if (!compressed) p.data = core::TiledMatrix(stored, h.dims, tiles, owner);
  p.ids = core::Array<std::int64_t>(ids, stored, owner);
  p.centroids = core::TiledMatrix(nlist, h.dims, centroids, owner);
  out.ivf = std::move(p);
  return out;
}

}  // namespace nndex::io
