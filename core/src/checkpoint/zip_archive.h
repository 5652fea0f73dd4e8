#pragma once
// A zip reader for the archives torch.save writes: central directory (ZIP64 included), local
// headers, stored entries viewed in place and deflated entries inflated under hard limits.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "byte_source.h"

namespace mcv::checkpoint {

struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;  // 0 stored, 8 deflated
  std::uint32_t crc = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;
  std::uint64_t header_offset = 0;
  std::uint64_t data_offset = 0;
};

class ZipArchive {
 public:
  /// Parses and checks the directory of `source`: every entry must lie inside the file, before
  /// the central directory, without overlapping another one.
  explicit ZipArchive(ByteSource source);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;

  /// The contents of `entry`: a view into the archive for stored entries, an inflated copy for
  /// deflated ones. Sizes above `max_size` are an error. `verify_crc` checks the CRC-32 (always
  /// done for deflated entries; stored ones are left unread so that mapping stays lazy).
  ByteSource read(const ZipEntry& entry, std::uint64_t max_size, bool verify_crc) const;

  /// Deflate cannot expand data by more than about 1032:1; a larger declared ratio is a lie.
  static constexpr std::uint64_t kMaxDeflateRatio = 1032;

 private:
  ByteSource source_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, std::size_t> by_name_;
};

/// CRC-32 (the zip/zlib polynomial).
std::uint32_t crc32_of(const std::uint8_t* data, std::size_t size);

}  // namespace mcv::checkpoint
