// Saving and loading an Index: a plain image (io/index_file.hpp) for an index of one segment with
// default ids and nothing removed, a segment set (io/segment_set.hpp) otherwise.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/thread_pool.hpp"
#include "core/trace.hpp"
#include "engine/engine.hpp"
#include "index_impl.hpp"
#include "io/file_access.hpp"
#include "io/index_file.hpp"
#include "io/segment_set.hpp"
#include "kernels/code_kernels.hpp"

namespace nndex {

std::string isa_of(const kernels::KernelTable& kt, Storage storage) {
  std::string name = kt.name;
  if (storage == Storage::bf16) name += kernels::active_bf16().isa_tag;
  if (storage == Storage::int8) name += kernels::active_int8().isa_tag;
  return name;
}

namespace {

io::IndexContents contents_of(const Index::Impl& impl, const collection::Segment& seg) {
  io::IndexContents c;
  c.rows = seg.rows();
  c.dims = impl.dims;
  c.normalized = impl.normalized;
  c.approx = impl.approx;
  seg.engine->describe_storage(c);
  c.graph_storage = impl.storage;
  return c;
}

bool plain(const collection::Snapshot& snap) {
  return snap.segments.size() == 1 && snap.segments[0].ids.is_range() && snap.segments[0].ids.first() == 0 &&
         !snap.segments[0].live && snap.next_id == static_cast<std::int64_t>(snap.segments[0].rows());
}

std::size_t write_snapshot(const Index::Impl& impl, const collection::Snapshot& snap, const io::WriteAt& write_at) {
  if (plain(snap)) return io::write_index(contents_of(impl, snap.segments[0]), write_at, 0);
  std::vector<io::SegmentImage> images;
  for (const auto& s : snap.segments) images.push_back({contents_of(impl, s), &s.ids, s.live.get()});
  // An index with every row removed still records its dims and options: an empty exact image.
  const io::SetInfo info{snap.next_id, impl.dims, impl.normalized, impl.approx, impl.storage};
  return io::write_segment_set(images, info, write_at);
}

// The engine of one loaded image. `file_base`: where the whole file starts (mapped rows are read
// with positioned reads at their offset in it).
std::unique_ptr<engine::Engine> engine_of(io::LoadedIndex& loaded, const std::byte* file_base,
                                          const std::shared_ptr<const storage::FileReader>& reader) {
  if (reader != nullptr && loaded.exact_rows.prepared() != nullptr) {
    // Re-ranked rows are read with pread, not through the mapping (storage/exact_rows.hpp).
    const auto* rows = reinterpret_cast<const std::byte*>(loaded.exact_rows.prepared());
    io::unmap_resident_pages(rows, loaded.exact_rows.rows() * loaded.exact_rows.dims() * sizeof(float));
    loaded.exact_rows.read_through(reader, static_cast<std::size_t>(rows - file_base));
  }
  if (loaded.graph)
    return engine::make_graph_engine(std::make_unique<graph::GraphIndex>(std::move(*loaded.graph)), loaded.storage);
  if (loaded.ivf) {
    if (loaded.codes) {
      loaded.ivf->codes = std::move(loaded.codes);
      loaded.ivf->exact_rows = std::move(loaded.exact_rows);
    }
    return engine::make_ivf_engine(std::make_unique<ivf::IvfIndex>(std::move(*loaded.ivf)));
  }
  if (loaded.codes) return engine::make_compressed_engine(std::move(*loaded.codes), std::move(loaded.exact_rows));
  return engine::make_exact_engine(std::move(loaded.matrix));
}

// What later segments are built with, from what the file says of the first.
IndexOptions options_of(const io::LoadedIndex& loaded, const engine::Engine& engine, std::size_t threads) {
  IndexOptions o;
  o.normalized = loaded.normalized;
  o.approx = loaded.approx;
  o.storage = loaded.storage;
  o.threads = threads;
  const std::string_view method = engine.method();
  o.method = method == "graph" ? ApproxMethod::graph : method == "ivf" ? ApproxMethod::ivf : ApproxMethod::automatic;
  if (loaded.graph) o.graph_degree = loaded.graph->degree;
  return o;
}

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

void save_snapshot(const Index::Impl& impl, const std::string& path) {
  const auto snap = impl.collection->snapshot();
  io::write_file_atomically(path, [&](const io::WriteAt& write_at) { return write_snapshot(impl, *snap, write_at); });
}

std::vector<std::byte> snapshot_bytes(const Index::Impl& impl) {
  const auto snap = impl.collection->snapshot();
  std::vector<std::byte> out;
  const std::size_t total = write_snapshot(impl, *snap, [&](std::size_t off, const void* data, std::size_t n) {
    if (out.size() < off + n) out.resize(off + n);
    std::memcpy(out.data() + off, data, n);
  });
  out.resize(total);
  return out;
}

std::unique_ptr<Index::Impl> load_snapshot(const std::string& name, std::span<const std::byte> bytes,
                                           std::shared_ptr<const void> owner, const LoadOptions& options,
                                           std::shared_ptr<const storage::FileReader> reader) {
  const auto start = std::chrono::steady_clock::now();
  auto impl = std::make_unique<Index::Impl>();
  impl->file_buffer_bytes = reader != nullptr ? 0 : bytes.size();
  impl->threads = options.threads == 0 ? core::hardware_threads() : options.threads;
  impl->kernels = &kernels::active();

  // The device first: a missing GPU fails the call before any work.
  engine::Placement placement = engine::resolve_placement(options.backend, options.gpu_device);
  std::vector<io::LoadedSegment> parts;
  collection::Snapshot snap;
  std::optional<IndexOptions> settings;
  const bool set_file = io::is_segment_set(bytes);
  if (set_file) {
    io::LoadedSegmentSet set = io::read_segment_set(name, bytes, options.verify);
    parts = std::move(set.segments);
    snap.next_id = set.info.next_id;
    impl->dims = set.info.dims;
    impl->normalized = set.info.normalized;
    impl->approx = set.info.approx;
    impl->storage = set.info.storage;
    if (parts.empty()) {  // every row removed: later segments are built from what the table says
      settings.emplace();
      settings->normalized = impl->normalized;
      settings->approx = impl->approx;
      settings->storage = impl->storage;
    }
  } else {
    parts.emplace_back();
    parts[0].image = bytes;
  }
  for (io::LoadedSegment& part : parts) {
    io::LoadedIndex loaded = io::read_index(name, part.image, owner, options.verify);
    if ((set_file || settings) &&
        (loaded.dims != impl->dims || loaded.normalized != impl->normalized || loaded.storage != impl->storage))
      throw FileFormatError("nndex index file '" + name + "': segments disagree on dims, normalisation or storage");
    collection::Segment seg;
    const std::size_t rows = loaded.rows;
    impl->dims = loaded.dims;
    impl->normalized = loaded.normalized;
    impl->approx = loaded.approx;
    impl->storage = loaded.storage;
    std::unique_ptr<engine::Engine> cpu_engine = engine_of(loaded, bytes.data(), reader);
    if (!settings) settings = options_of(loaded, *cpu_engine, options.threads);
    seg.engine = engine::place(std::move(cpu_engine), placement, *impl->kernels);
    if (!set_file) {
      seg.ids = collection::IdMap::range(0, rows);
      snap.next_id = static_cast<std::int64_t>(rows);
    } else {
      io::finish_segment(name, part, rows);
      seg.ids = part.ids;
      seg.live = part.live;
    }
    snap.segments.push_back(std::move(seg));
  }
  // Live ids are distinct and below the next default id.
  std::vector<std::int64_t> live;
  for (const auto& s : snap.segments)
    for (std::size_t r = 0; r < s.rows(); ++r)
      if (s.is_live(r)) live.push_back(s.ids.at(r));
  std::sort(live.begin(), live.end());
  if (std::adjacent_find(live.begin(), live.end()) != live.end() || (!live.empty() && live.back() >= snap.next_id))
    throw FileFormatError("nndex index file '" + name + "': segment ids are not distinct or exceed the next id");
  impl->isa = isa_of(*impl->kernels, impl->storage);
  settings->backend = options.backend;
  settings->gpu_device = options.gpu_device;
  impl->collection = std::make_unique<collection::Collection>(
      collection::Settings{*settings, impl->dims, impl->threads, impl->kernels, std::move(placement)}, std::move(snap));
  if (core::verbose())
    core::TraceLine(("load " + name).c_str())
        .add("rows", impl->collection->snapshot()->live)
        .add("dims", impl->dims)
        .add("segments", parts.size())
        .add_ms("time", elapsed_ms(start))
        .emit();
  return impl;
}

}  // namespace nndex
