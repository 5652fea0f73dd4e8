#include "byte_source.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "mcv/error.h"

namespace mcv::checkpoint {

namespace {

struct Mapping {
  void* data = nullptr;
  std::size_t size = 0;
  ~Mapping() {
    if (data) ::munmap(data, size);
  }
};

struct Fd {
  int fd;
  ~Fd() { ::close(fd); }
};

}  // namespace

ByteSource map_file(const std::filesystem::path& path) {
  ByteSource source;
  source.name = path.string();
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is then refused as not regular.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error(source.name, std::string("cannot open: ") + std::strerror(errno));
  Fd guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(source.name, std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw Error(source.name, "is a directory, not a file");
  if (!S_ISREG(st.st_mode)) throw Error(source.name, "is not a regular file");
  auto mapping = std::make_shared<Mapping>();
  mapping->size = static_cast<std::size_t>(st.st_size);
  if (mapping->size > 0) {
    // MAP_NORESERVE: pages are only charged when a caller actually writes to a tensor.
    void* p = ::mmap(nullptr, mapping->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED && errno == ENOMEM)  // strict overcommit: fall back to a read-only view
      p = ::mmap(nullptr, mapping->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) throw Error(source.name, std::string("cannot map: ") + std::strerror(errno));
    mapping->data = p;
  }
  static const std::uint8_t kEmpty = 0;
  source.data = mapping->size ? static_cast<const std::uint8_t*>(mapping->data) : &kEmpty;
  source.size = mapping->size;
  source.owner = std::move(mapping);
  return source;
}

ByteSource own_bytes(std::string bytes, std::string name) {
  auto holder = std::make_shared<std::string>(std::move(bytes));
  ByteSource source;
  source.data = reinterpret_cast<const std::uint8_t*>(holder->data());
  source.size = holder->size();
  source.owner = std::move(holder);
  source.name = std::move(name);
  return source;
}

}  // namespace mcv::checkpoint
