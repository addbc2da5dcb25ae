#include "engine/options.hpp"

#include <string>

#include "graph/graph_index.hpp"
#include "nndex/errors.hpp"

namespace nndex::engine {
namespace {

bool ivf_options(const IndexOptions& o) { return o.nlist != 0 || o.nprobe != 0; }
bool graph_options(const IndexOptions& o) { return o.graph_degree != 0 || o.ef_construction != 0 || o.ef != 0; }

}  // namespace

ApproxMethod resolve_method(const IndexOptions& o) {
  if (o.method != ApproxMethod::automatic) return o.method;
  return ivf_options(o) || o.storage == Storage::bf16 ? ApproxMethod::ivf : ApproxMethod::graph;
}

void check_options(const IndexOptions& o) {
  if (o.storage != Storage::f32 && o.storage != Storage::bf16 && o.storage != Storage::int8)
    throw InvalidArgument("storage must be f32, bf16 or int8");
  if (o.method != ApproxMethod::automatic && o.method != ApproxMethod::ivf && o.method != ApproxMethod::graph)
    throw InvalidArgument("method must be auto, ivf or graph");
  if (!o.approx && (ivf_options(o) || graph_options(o) || o.recall != 0.0 || o.method != ApproxMethod::automatic))
    throw InvalidArgument(
        "nlist, nprobe, ef, graph_degree, ef_construction, recall and method apply only to approximate indexes "
        "(approx=true)");
  if (o.approx && ivf_options(o) && graph_options(o))
    throw InvalidArgument("give IVF options (nlist, nprobe) or graph options (ef, graph_degree, ef_construction), not both");
  const ApproxMethod method = resolve_method(o);
  if (o.approx && method == ApproxMethod::ivf && graph_options(o))
    throw InvalidArgument("ef, graph_degree and ef_construction apply only to graph indexes (method graph)");
  if (o.approx && method == ApproxMethod::graph && ivf_options(o))
    throw InvalidArgument("nlist and nprobe apply only to IVF indexes (method ivf)");
  if (o.approx && method == ApproxMethod::graph && o.storage == Storage::bf16)
    throw InvalidArgument("a graph index navigates on int8 codes: use storage f32 or int8 with it, or method ivf for bf16");
  if (o.graph_degree != 0 && (o.graph_degree < graph::kMinDegree || o.graph_degree > graph::kMaxDegree))
    throw InvalidArgument("graph_degree must be in [" + std::to_string(graph::kMinDegree) + ", " +
                          std::to_string(graph::kMaxDegree) + "], got " + std::to_string(o.graph_degree));
  if (o.recall != 0.0 && o.ef != 0) throw InvalidArgument("give ef or recall, not both: recall calibrates ef");
  if (o.recall != 0.0 && !(o.recall > 0.0 && o.recall <= 1.0))
    throw InvalidArgument("recall must be in (0, 1], got " + std::to_string(o.recall));
  if (o.recall != 0.0 && o.nprobe != 0)
    throw InvalidArgument("give nprobe or recall, not both: recall calibrates nprobe");
}

}  // namespace nndex::engine
