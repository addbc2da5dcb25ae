// The graph index's sections of the file (format 4): its scalars (degree, ef, entry, top level), the
// navigation codes and their scales, the level-0 links, the upper-level table and links. The float32
// rows travel in the shared rows section.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "graph/graph_index.hpp"
#include "io/format.hpp"

namespace nndex::io {

using GraphInfo = std::array<std::uint64_t, 4>;  // degree, ef, entry, top level

// Appends the graph's sections (not the rows); `info` backs the first one and must outlive them.
void add_graph_sections(const graph::GraphIndex::Parts& g, GraphInfo& info, std::vector<format::Section>& sections);

using FindSection = std::function<const format::SectionEntry&(format::SectionKind, const char*)>;

// Reads and validates the graph sections of a file of rows x dims; the rows are read by the caller.
graph::GraphIndex::Parts read_graph_sections(const std::string& name, std::span<const std::byte> bytes,
                                             const std::shared_ptr<const void>& owner, bool verify, std::size_t rows,
                                             std::size_t dims, const FindSection& find);

}  // namespace nndex::io
