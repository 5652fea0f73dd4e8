#pragma once
/// \file
/// Reading and writing files safely: read-only memory maps, bounded whole-file reads, and atomic
/// writes (temporary file in the same folder, fsync, rename), so an interrupted run never leaves a
/// half-written output. Every error names the file.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace mcv {

/// A read-only memory map of a whole regular file. Directories, missing or unreadable paths and
/// special files are errors. An empty file maps to size() == 0 with a non-null data().
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
};

/// Reads a whole regular file; files larger than `max_bytes` are an error (no surprise 50 GB reads).
std::string read_file_bytes(const std::filesystem::path& path, std::size_t max_bytes = std::size_t(1) << 32);

/// Writes `bytes` to `path` atomically: a sibling temporary file is written, flushed to disk and
/// renamed over `path`. On failure the temporary is removed and `path` is untouched.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

/// Incremental atomic writer for large outputs: write() pieces, then commit(); destroying an
/// uncommitted writer removes the temporary and leaves `path` untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  void write(const void* data, std::size_t bytes);
  void commit();

 private:
  std::filesystem::path path_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace mcv
