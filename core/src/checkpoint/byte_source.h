#pragma once
// Bytes a checkpoint is read from, and the little-endian readers the parsers share.

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

namespace mcv::checkpoint {

/// A span of bytes with whatever keeps it alive. `name` is the file (or entry) it stands for in
/// error messages.
struct ByteSource {
  std::shared_ptr<void> owner;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  std::string name;
};

/// Maps a whole regular file copy-on-write: tensors viewing the mapping may be written to without
/// touching the file (a read-only mapping would turn such a write into a crash).
ByteSource map_file(const std::filesystem::path& path);
/// Takes ownership of bytes held in memory.
ByteSource own_bytes(std::string bytes, std::string name);

inline std::uint16_t load_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint32_t load_u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
inline std::uint64_t load_u64(const std::uint8_t* p) {
  return static_cast<std::uint64_t>(load_u32(p)) | (static_cast<std::uint64_t>(load_u32(p + 4)) << 32);
}

}  // namespace mcv::checkpoint
