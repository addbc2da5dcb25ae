// The query-result cache behind NNdex(enable_cache=True): a bounded LRU of recent search results,
// looked up and filled inside the same native call as the search, so a miss costs one hash of the
// query bytes and one lookup.
//
// Keys are a 64-bit hash of the query's bytes, dtype, shape, k, nprobe, ef and oversampling; a hash match is confirmed
// by comparing the stored query bytes and every other key field in full, so equal hashes never
// suffice. Results are stored as private copies and copied out on a hit, so callers can never reach
// (or corrupt) what the cache holds. Bounded by entries and by bytes; every member is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace nndex_py {

// One search's identity: the query elements in C order plus everything that shapes its result.
struct QueryKey {
  const std::byte* data = nullptr;
  std::size_t bytes = 0;
  std::uint8_t dtype = 0;  // 0: float32, 1: float64
  bool two_d = false;      // a (rows, cols) batch rather than one 1-D query
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t k = 0;
  std::size_t nprobe = 0;
  std::size_t ef = 0;
  double oversampling = 0.0;  // compared bit for bit (the search refuses NaN before anything is stored)
};

struct QueryCacheStats {
  std::size_t hits = 0;
  std::size_t misses = 0;
  std::size_t entries = 0;
  std::size_t bytes = 0;
};

class QueryCache {
 public:
  // Bytes charged per entry on top of the query and result arrays (list node, map slot, arrays).
  static constexpr std::size_t kEntryOverhead = 256;
  // Entries from this size on reuse the buffer of an evicted one (see spare_).
  static constexpr std::size_t kReuseFrom = std::size_t{16} << 10;

  // `colliding_hash` (tests only) gives every key the same hash, so lookups must rely on the full
  // comparison.
  QueryCache(std::size_t max_entries, std::size_t max_bytes, bool colliding_hash = false);

  std::uint64_t hash(const QueryKey& key) const noexcept;
  // On a hit copies the stored result (`count` ids and similarities) out and returns true; counts a
  // hit or a miss.
  bool lookup(const QueryKey& key, std::uint64_t hash, std::int64_t* ids, float* sims, std::size_t count);
  // Stores private copies of a result; keeps an identical entry another thread stored meanwhile.
  void insert(const QueryKey& key, std::uint64_t hash, const std::int64_t* ids, const float* sims,
              std::size_t count);
  void clear();  // forgets every entry and resets the counts
  QueryCacheStats stats() const;

  std::size_t max_entries() const noexcept { return max_entries_; }
  std::size_t max_bytes() const noexcept { return max_bytes_; }

 private:
  // One allocation an entry: `count` ids, then `count` similarities, then the query bytes.
  struct Entry {
    std::uint64_t hash;
    std::uint8_t dtype;
    bool two_d;
    std::size_t rows, cols, k, nprobe, ef;
    double oversampling;
    std::size_t query_bytes;
    std::size_t count;
    std::unique_ptr<std::byte[]> buffer;
    std::size_t capacity;  // bytes of `buffer` (at least what the entry uses)
    std::size_t charge;

    const std::int64_t* ids() const noexcept { return reinterpret_cast<const std::int64_t*>(buffer.get()); }
    const float* sims() const noexcept {
      return reinterpret_cast<const float*>(buffer.get() + count * sizeof(std::int64_t));
    }
    const std::byte* query() const noexcept { return buffer.get() + count * (sizeof(std::int64_t) + sizeof(float)); }
  };
  using List = std::list<Entry>;

  List::iterator find(const QueryKey& key, std::uint64_t hash);  // with the lock held
  void evict_oldest();                                            // with the lock held

  const std::size_t max_entries_;
  const std::size_t max_bytes_;
  const bool colliding_hash_;
  mutable std::mutex mutex_;
  List lru_;  // most recently used first
  std::unordered_multimap<std::uint64_t, List::iterator> by_hash_;
  // The largest buffer of a recently evicted entry of kReuseFrom bytes or more, reused by the next
  // insert that fits in it (and uses at least half): a full cache replaces an entry at every miss,
  // and freeing and allocating a large batch's entry each time costs more than copying it. At most
  // one buffer, dropped by clear().
  std::unique_ptr<std::byte[]> spare_;
  std::size_t spare_capacity_ = 0;
  std::size_t bytes_ = 0;
  std::size_t hits_ = 0;
  std::size_t misses_ = 0;
};

}  // namespace nndex_py
