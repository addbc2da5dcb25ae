// Typed errors thrown by nndex. Every error derives from nndex::Error so callers can catch one type.
// The Python bindings map IoError to OSError (FileNotFoundError, PermissionError, ... by errno),
// Interrupted to KeyboardInterrupt, and every other error to ValueError.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace nndex {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A shape, size, option or k that cannot be used (empty matrix, zero dims, k < 1, ...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A query whose length differs from the index's dims.
class DimensionMismatch : public InvalidArgument {
 public:
  DimensionMismatch(std::size_t expected, std::size_t actual, const std::string& what);
  std::size_t expected() const noexcept { return expected_; }
  std::size_t actual() const noexcept { return actual_; }

 private:
  std::size_t expected_;
  std::size_t actual_;
};

// A NaN or infinite value (or a vector whose squared norm overflows float32).
class NonFiniteValue : public InvalidArgument {
 public:
  NonFiniteValue(std::string message, std::size_t row) : InvalidArgument(std::move(message)), row_(row) {}
  std::size_t row() const noexcept { return row_; }

 private:
  std::size_t row_;
};

// An all-zero row or query where cosine similarity needs a unit vector.
class ZeroNorm : public InvalidArgument {
 public:
  ZeroNorm(std::string message, std::size_t row) : InvalidArgument(std::move(message)), row_(row) {}
  std::size_t row() const noexcept { return row_; }

 private:
  std::size_t row_;
};

// An index file that is not a valid nndex index (wrong magic, truncated, newer format, corrupt).
class FileFormatError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

// The operating system refused a file operation (missing file, permission, disk full).
class IoError : public Error {
 public:
  IoError(const std::string& message, int error_code, std::string path)
      : Error(message), error_code_(error_code), path_(std::move(path)) {}
  int error_code() const noexcept { return error_code_; }  // errno
  const std::string& path() const noexcept { return path_; }

 private:
  int error_code_;
  std::string path_;
};

// The GPU backend cannot serve the call: no Vulkan loader, no such device, a device or driver failure,
// or device memory exhausted. The index is unchanged; an index built with Backend::cpu never throws it.
class GpuError : public Error {
 public:
  using Error::Error;
};

// The caller's stop check returned true; the call was abandoned and the index is unchanged.
class Interrupted : public Error {
 public:
  Interrupted() : Error("nndex: interrupted") {}
};

}  // namespace nndex
