#include "io/graph_sections.hpp"

namespace nndex::io {

using namespace format;

void add_graph_sections(const graph::GraphIndex::Parts& g, GraphInfo& info, std::vector<Section>& sections) {
  info = {g.degree, g.ef, g.entry, g.top_level};
  sections.push_back({kGraphInfo, 8, info.data(), sizeof(GraphInfo)});
  sections.push_back({kNavCodes, 1, g.nav.codes(), g.rows * g.nav.row_bytes()});
  sections.push_back({kNavScales, 4, g.nav.scales(), g.rows * sizeof(float)});
  sections.push_back({kLinks, 4, g.links.data(), g.links.size() * sizeof(std::uint32_t)});
  sections.push_back({kUpperOffsets, 4, g.upper_offsets.data(), g.upper_offsets.size() * sizeof(std::uint32_t)});
  sections.push_back({kUpperLinks, 4, g.upper.data(), g.upper.size() * sizeof(std::uint32_t)});
}

graph::GraphIndex::Parts read_graph_sections(const std::string& name, std::span<const std::byte> bytes,
                                             const std::shared_ptr<const void>& owner, bool verify, std::size_t rows,
                                             std::size_t dims, const FindSection& find) {
  if (rows > bytes.size() || dims > bytes.size() || rows > std::numeric_limits<std::uint32_t>::max())
    bad(name, "absurd shape " + std::to_string(rows) + " x " + std::to_string(dims) + " for a file of " +
                  std::to_string(bytes.size()) + " bytes");
  const auto* info = section_data<std::uint64_t>(name, bytes, find(kGraphInfo, "graph"), sizeof(GraphInfo), "graph", verify);
  graph::GraphIndex::Parts p;
  p.rows = rows;
  p.dims = dims;
  if (info[0] < graph::kMinDegree || info[0] > graph::kMaxDegree) bad(name, "graph degree " + std::to_string(info[0]) + " out of range");
  if (info[2] >= rows || info[3] > 64) bad(name, "graph entry or top level out of range");
  p.degree = info[0];
  p.ef = info[1];
  p.entry = static_cast<std::uint32_t>(info[2]);
  p.top_level = static_cast<std::uint32_t>(info[3]);
  const std::size_t row_bytes = graph::NavCodes::row_bytes_for(dims);
  const auto code_bytes = mul(rows, row_bytes);
  const auto link_words = mul(rows, p.degree + 1);
  if (!code_bytes || !link_words || *code_bytes > bytes.size() || *link_words > bytes.size() / 4)
    bad(name, "absurd graph sizes for a file of " + std::to_string(bytes.size()) + " bytes");
  const auto* codes = section_data<std::uint8_t>(name, bytes, find(kNavCodes, "navigation codes"), *code_bytes,
                                                 "navigation codes", verify);
  const float* scales = section_data<float>(name, bytes, find(kNavScales, "navigation scales"), rows * sizeof(float),
                                            "navigation scales", verify);
  if (verify)
    for (std::size_t r = 0; r < rows; ++r)
      if (!(scales[r] >= 0.0f)) bad(name, "negative scale in the navigation scales section");
  const auto* links = section_data<std::uint32_t>(name, bytes, find(kLinks, "graph links"), *link_words * 4,
                                                  "graph links", verify);
  const auto* offsets = section_data<std::uint32_t>(name, bytes, find(kUpperOffsets, "graph levels"), (rows + 1) * 4,
                                                    "graph levels", verify);
  const SectionEntry& upper = find(kUpperLinks, "graph upper links");
  const auto* upper_links = section_data<std::uint32_t>(name, bytes, upper, upper.bytes / 4 * 4, "graph upper links", verify);
  p.nav = graph::NavCodes(codes, scales, rows, dims, owner);
  p.links = decltype(p.links)(links, *link_words, owner);
  p.upper_offsets = core::Array<std::uint32_t>(offsets, rows + 1, owner);
  p.upper = core::Array<std::uint32_t>(upper_links, upper.bytes / 4, owner);
  graph::GraphIndex::validate(p, name);  // every id, count and offset, whatever `verify` says
  return p;
}

}  // namespace nndex::io
