// Files for the index format: an atomic write (a unique temporary file beside the target, flushed and
// renamed into place) and reading a whole file, mapped or into an aligned buffer.
// POSIX (Linux, macOS, the BSDs): mkstemp/pwrite/fsync for saving, mmap or pread for loading.
// Windows: a portable fallback (stdio and std::filesystem) that always reads into memory, since a
// mapping there needs CreateFileMapping/MapViewOfFile, which is not written yet.
#include "io/file_access.hpp"
#include "io/index_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>

#if defined(_WIN32)
#include <io.h>
#include <malloc.h>
#include <random>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "nndex/errors.hpp"

namespace nndex::io {
namespace {

constexpr std::size_t kAlign = 4096;  // read buffers are page-aligned, like a mapping
std::size_t align_up(std::size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

[[noreturn]] void io_fail(const std::string& what, const std::string& path, int err) {
  throw IoError("nndex: cannot " + what + " '" + path + "': " + std::strerror(err), err, path);
}

#if defined(_WIN32)
// Windows fallback: a randomly named temporary file beside the target, written with stdio.
class FileWriter {
 public:
  FileWriter(std::string tmp_template, const std::string& target) : target_(target), tmp_(std::move(tmp_template)) {
    std::random_device rd;
    const char* digits = "0123456789abcdef";
    for (char& c : tmp_)
      if (c == 'X') c = digits[rd() % 16];
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (f_ == nullptr) io_fail("create", target_, errno);
  }
  ~FileWriter() {
    if (f_ != nullptr) std::fclose(f_);
  }
  const std::string& tmp_path() const { return tmp_; }
  void write_at(std::size_t offset, const void* data, std::size_t bytes) {
    if (_fseeki64(f_, static_cast<long long>(offset), SEEK_SET) != 0 || std::fwrite(data, 1, bytes, f_) != bytes)
      io_fail("write", target_, errno);
  }
  void finish(std::size_t total) {
    if (std::fflush(f_) != 0 || _chsize_s(_fileno(f_), static_cast<long long>(total)) != 0) io_fail("write", target_, errno);
    if (_commit(_fileno(f_)) != 0) io_fail("flush", target_, errno);
    std::FILE* f = f_;
    f_ = nullptr;
    if (std::fclose(f) != 0) io_fail("close", target_, errno);
  }

 private:
  std::string target_;
  std::string tmp_;
  std::FILE* f_ = nullptr;
};

void* aligned_buffer(std::size_t bytes) { return _aligned_malloc(bytes, kAlign); }
void free_aligned(const void* p) { _aligned_free(const_cast<void*>(p)); }
#else
// A uniquely named temporary file beside the target (mkstemp), so concurrent saves to one path never
// share it; errors name the target, which is what the caller asked for.
class FileWriter {
 public:
  FileWriter(std::string tmp_template, const std::string& target) : target_(target), tmp_(std::move(tmp_template)) {
    fd_ = ::mkstemp(tmp_.data());
    if (fd_ < 0) io_fail("create", target_, errno);
    ::fchmod(fd_, 0644);
  }
  ~FileWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  const std::string& tmp_path() const { return tmp_; }
  void write_at(std::size_t offset, const void* data, std::size_t bytes) {
    const auto* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ssize_t n = ::pwrite(fd_, p, std::min<std::size_t>(bytes, std::size_t{1} << 30), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        io_fail("write", target_, errno);
      }
      p += n;
      offset += static_cast<std::size_t>(n);
      bytes -= static_cast<std::size_t>(n);
    }
  }
  void finish(std::size_t total) {
    if (::ftruncate(fd_, static_cast<off_t>(total)) != 0) io_fail("write", target_, errno);
    if (::fsync(fd_) != 0) io_fail("flush", target_, errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) io_fail("close", target_, errno);
  }

 private:
  std::string target_;
  std::string tmp_;
  int fd_ = -1;
};

void* aligned_buffer(std::size_t bytes) { return std::aligned_alloc(kAlign, bytes); }
void free_aligned(const void* p) { std::free(const_cast<void*>(p)); }
#endif

}  // namespace

void write_file_atomically(const std::string& path, const std::function<std::size_t(const WriteAt&)>& fill) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::string tmp_name = ".";  // appended piecewise: GCC 12 warns (-Wrestrict) on "." + string
  tmp_name += target.filename().string();
  tmp_name += ".tmp-XXXXXX";
  const fs::path tmp_template = target.parent_path() / tmp_name;
  FileWriter out(tmp_template.string(), path);
  try {
    const std::size_t total = fill([&](std::size_t off, const void* data, std::size_t n) { out.write_at(off, data, n); });
    out.finish(total);
#if defined(_WIN32)
    std::error_code ec;
    fs::rename(out.tmp_path(), target, ec);  // replaces an existing target
    if (ec) io_fail("rename into place", path, ec.value());
#else
    if (::rename(out.tmp_path().c_str(), target.c_str()) != 0) io_fail("rename into place", path, errno);
#endif
  } catch (...) {
    std::remove(out.tmp_path().c_str());
    throw;
  }
}

#if defined(_WIN32)
void unmap_resident_pages(const void*, std::size_t) {}  // Windows loads read the file (no mapping yet)

std::shared_ptr<const storage::FileReader> open_reader(const std::string&, std::uint64_t*) { return nullptr; }

FileBytes open_file(const std::string& path, bool /*use_mmap: not on Windows yet, always read*/) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) io_fail("open", path, EISDIR);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) io_fail("open", path, errno);
  const auto size = static_cast<std::size_t>(fs::file_size(path, ec));
  if (ec) {
    std::fclose(f);
    io_fail("stat", path, ec.value());
  }
  if (size == 0) {
    std::fclose(f);
    return {{}, nullptr, false, nullptr};
  }
  void* p = aligned_buffer(align_up(size));
  if (p == nullptr) {
    std::fclose(f);
    throw std::bad_alloc();
  }
  auto owner = std::shared_ptr<const void>(p, free_aligned);
  const std::size_t got = std::fread(p, 1, size, f);
  std::fclose(f);
  if (got != size) io_fail("read", path, EIO);
  return {{static_cast<const std::byte*>(p), size}, owner, false, nullptr};
}
#else
void unmap_resident_pages(const void* data, std::size_t bytes) {
  // Whole pages inside the region only: the neighbouring sections are scanned in full.
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<std::uintptr_t>(data) + page - 1) / page * page;
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) / page * page;
  if (end <= begin) return;
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);  // shared file mapping: PTEs only
}

namespace {

class PosixFileReader final : public storage::FileReader {
 public:
  PosixFileReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFileReader() override { ::close(fd_); }
  void read(std::size_t offset, std::size_t bytes, void* out) const override {
    std::size_t done = 0;
    while (done < bytes) {
      const ssize_t n = ::pread(fd_, static_cast<char*>(out) + done, bytes - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) io_fail("read", path_, n < 0 ? errno : EIO);
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

std::shared_ptr<const storage::FileReader> open_reader(const std::string& path, std::uint64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_fail("open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    io_fail("stat", path, err);
  }
  *size = static_cast<std::uint64_t>(st.st_size);
  return std::make_shared<PosixFileReader>(fd, path);
}

FileBytes open_file(const std::string& path, bool use_mmap) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_fail("open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    io_fail("stat", path, err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    io_fail("open", path, EISDIR);
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return {{}, nullptr, false, nullptr};
  }
  if (use_mmap) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    const int err = errno;
    if (p == MAP_FAILED) {
      ::close(fd);
      io_fail("map", path, err);
    }
    auto owner = std::shared_ptr<const void>(p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
    // The descriptor stays open for positioned reads of rows that should not be mapped in.
    return {{static_cast<const std::byte*>(p), size}, owner, true, std::make_shared<PosixFileReader>(fd, path)};
  }
  void* p = aligned_buffer(align_up(size));
  if (p == nullptr) {
    ::close(fd);
    throw std::bad_alloc();
  }
  auto owner = std::shared_ptr<const void>(p, free_aligned);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, static_cast<char*>(p) + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      io_fail("read", path, err);
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return {{static_cast<const std::byte*>(p), size}, owner, false, nullptr};
}
#endif

}  // namespace nndex::io
