// The rules that combine IndexOptions: which approximate structure they ask for, and which
// combinations are refused (each with an nndex::InvalidArgument naming the options involved).
#pragma once

#include "nndex/types.hpp"

namespace nndex::engine {

// The structure `approx` builds: the graph unless IVF is asked for by name, by its options (nlist,
// nprobe) or by bf16 storage (the graph navigates on int8 codes).
ApproxMethod resolve_method(const IndexOptions& options);

// Throws InvalidArgument for a value out of range or options that do not go together.
void check_options(const IndexOptions& options);

}  // namespace nndex::engine
