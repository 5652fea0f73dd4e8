#include "mcv/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mcv/error.h"

namespace mcv {

namespace {

std::string errno_text() { return std::strerror(errno); }

int open_regular_file(const std::filesystem::path& path, struct stat* st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path.string(), "cannot open: " + errno_text());
  if (::fstat(fd, st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw Error(path.string(), "cannot stat: " + why);
  }
  if (!S_ISREG(st->st_mode)) {
    ::close(fd);
    throw Error(path.string(), S_ISDIR(st->st_mode) ? "is a directory, not a file" : "is not a regular file");
  }
  return fd;
}

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::filesystem::path& path) {
  struct stat st {};
  const int fd = open_regular_file(path, &st);
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<std::size_t>(st.st_size);
  if (file->size_ == 0) {
    static const std::uint8_t kEmpty = 0;
    file->data_ = &kEmpty;
    ::close(fd);
    return file;
  }
  void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const std::string why = p == MAP_FAILED ? errno_text() : "";
  ::close(fd);
  if (p == MAP_FAILED) throw Error(path.string(), "cannot map: " + why);
  file->data_ = static_cast<const std::uint8_t*>(p);
  file->mapped_ = true;
  return file;
}

MappedFile::~MappedFile() {
  if (mapped_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

std::string read_file_bytes(const std::filesystem::path& path, std::size_t max_bytes) {
  struct stat st {};
  const int fd = open_regular_file(path, &st);
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size > max_bytes) {
    ::close(fd);
    throw Error(path.string(), "file of " + std::to_string(size) + " bytes exceeds the limit of " +
                                   std::to_string(max_bytes));
  }
  std::string bytes(size, '\0');
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, bytes.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? errno_text() : "file shrank while reading";
      ::close(fd);
      throw Error(path.string(), "read failed: " + why);
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return bytes;
}

AtomicFileWriter::AtomicFileWriter(std::filesystem::path path) : path_(std::move(path)) {
  const auto dir = path_.has_parent_path() ? path_.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw Error(path_.string(), "output folder " + dir.string() + " does not exist");
  if (std::filesystem::is_directory(path_, ec)) throw Error(path_.string(), "is a directory");
  std::string pattern = (dir / ("." + path_.filename().string() + ".tmp-XXXXXX")).string();
  fd_ = ::mkstemp(pattern.data());
  if (fd_ < 0) throw Error(path_.string(), "cannot create a temporary file: " + errno_text());
  ::fchmod(fd_, 0644);
  temp_ = pattern;
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFileWriter::write(const void* data, std::size_t bytes) {
  MCV_CHECK(fd_ >= 0 && !committed_, path_.string(), ": write after commit");
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(path_.string(), "write failed: " + errno_text());
    p += n;
    bytes -= static_cast<std::size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  MCV_CHECK(fd_ >= 0 && !committed_, path_.string(), ": commit twice");
  if (::fsync(fd_) != 0) throw Error(path_.string(), "fsync failed: " + errno_text());
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_.c_str(), path_.c_str()) != 0)
    throw Error(path_.string(), "cannot move the finished file into place: " + errno_text());
  committed_ = true;
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  AtomicFileWriter writer(path);
  writer.write(bytes.data(), bytes.size());
  writer.commit();
}

}  // namespace mcv
