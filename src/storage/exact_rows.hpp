// The float32 rows that re-rank a compressed index's shortlist, one row-major vector per row so a
// shortlisted row is one contiguous read (a mapped file pages in only those rows). Three homes:
//   owned:     prepared rows copied in at build (an index built from an array);
//   mapped:    prepared rows inside a mapped index file (NNdex.load(..., mmap=True)), read with pread
//              rather than through the mapping: a page fault maps its neighbours in too (Linux fault-
//              around, 64 KiB), so shortlists would fill the process's resident memory with rows no
//              search needed; a read copies only the row (from the page cache, which the OS may drop);
//   borrowed:  the caller's own matrix (e.g. a memory-mapped .npy), prepared on each read exactly as
//              the build prepared it, so the scores match a float32 index bit for bit; read with
//              pread from the file under it when the caller says where it is (nndex::RowFile).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "kernels/kernels.hpp"
#include "nndex/types.hpp"

namespace nndex::storage {

// Positioned reads from the file holding mapped rows (io/file_access.cpp implements it).
class FileReader {
 public:
  virtual ~FileReader() = default;
  virtual void read(std::size_t offset, std::size_t bytes, void* out) const = 0;
};

class ExactRows {
 public:
  ExactRows() = default;
  static ExactRows owned(std::vector<float> prepared, std::size_t dims);
  static ExactRows mapped(const float* prepared, std::size_t rows, std::size_t dims, std::shared_ptr<const void> owner);
  static ExactRows borrowed(const MatrixView& source, bool normalize, std::shared_ptr<const void> owner);
  // Rows read through `file` from `file_offset` instead of through memory: the prepared rows of a
  // mapped index file, or a borrowed C-order view's raw rows (the view stays for the build and save).
  void read_through(std::shared_ptr<const FileReader> file, std::size_t file_offset);

  std::size_t rows() const { return rows_; }
  std::size_t dims() const { return dims_; }
  // Writes row r, prepared (validated and normalised as at build), to out[0..dims).
  void read(std::size_t r, const kernels::KernelTable& kt, float* out) const;
  // Prepared rows laid out row-major, or nullptr when the rows are prepared on read (borrowed).
  const float* prepared() const { return prepared_; }
  // Row r in memory, ready to use, or nullptr when it must be read (a file, or a borrowed view).
  const float* in_memory(std::size_t r) const {
    return prepared_ != nullptr && file_ == nullptr ? prepared_ + r * dims_ : nullptr;
  }
  std::size_t memory_bytes() const { return owned_.size() * sizeof(float); }

 private:
  std::size_t rows_ = 0, dims_ = 0;
  std::vector<float> owned_;
  const float* prepared_ = nullptr;
  MatrixView source_{};
  bool normalize_ = false;
  std::shared_ptr<const void> owner_;
  std::shared_ptr<const FileReader> file_;
  std::size_t file_offset_ = 0;
};

}  // namespace nndex::storage
