#include "zip_archive.h"

#include <algorithm>
#include <array>
#include <limits>

#include "mcv/error.h"

#ifdef MCV_HAVE_ZLIB
#include <zlib.h>
#endif

namespace mcv::checkpoint {

namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50;
constexpr std::uint32_t kCentralSig = 0x02014b50;
constexpr std::uint32_t kEndSig = 0x06054b50;
constexpr std::uint32_t kEnd64Sig = 0x06064b50;
constexpr std::uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr std::size_t kEndSize = 22, kEnd64Size = 56, kLocatorSize = 20;
constexpr std::size_t kCentralSize = 46, kLocalSize = 30;
constexpr std::uint64_t kMaxEntries = 1u << 20;

#ifndef MCV_HAVE_ZLIB
std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
#endif

}  // namespace

std::uint32_t crc32_of(const std::uint8_t* data, std::size_t size) {
#ifdef MCV_HAVE_ZLIB
  uLong crc = ::crc32(0L, Z_NULL, 0);
  while (size > 0) {
    const uInt n = static_cast<uInt>(std::min<std::size_t>(size, 1u << 30));
    crc = ::crc32(crc, data, n);
    data += n;
    size -= n;
  }
  return static_cast<std::uint32_t>(crc);
#else
  static const auto table = make_crc_table();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
#endif
}

ZipArchive::ZipArchive(ByteSource source) : source_(std::move(source)) {
  const std::uint8_t* base = source_.data;
  const std::uint64_t size = source_.size;
  const std::string& file = source_.name;
  auto fail = [&](const std::string& problem) -> Error { return Error(file, "corrupt zip archive: " + problem); };

  // The end record sits in the last 22 bytes plus an optional comment of up to 64 KiB.
  if (size < kEndSize) throw fail("too short to hold an end-of-central-directory record");
  std::uint64_t end = size - kEndSize;
  const std::uint64_t lowest = size > kEndSize + 0xFFFF ? size - kEndSize - 0xFFFF : 0;
  bool found = false;
  for (std::uint64_t at = end + 1; at-- > lowest;) {
    if (load_u32(base + at) == kEndSig && at + kEndSize + load_u16(base + at + 20) <= size) {
      end = at;
      found = true;
      break;
    }
  }
  if (!found) throw fail("no end-of-central-directory record");
  const std::uint8_t* e = base + end;
  if (load_u16(e + 4) != 0 || load_u16(e + 6) != 0) throw fail("multi-disk archives are not supported");
  std::uint64_t count = load_u16(e + 10);
  std::uint64_t dir_size = load_u32(e + 12);
  std::uint64_t dir_offset = load_u32(e + 16);
  std::uint64_t dir_end_limit = end;

  // torch writes a ZIP64 end record (always, in fact); when its locator is there it is the truth.
  if (end >= kLocatorSize && load_u32(base + end - kLocatorSize) == kEnd64LocatorSig) {
    const std::uint64_t rec = load_u64(base + end - kLocatorSize + 8);
    if (rec > end - kLocatorSize || end - kLocatorSize - rec < kEnd64Size)
      throw fail("ZIP64 end record offset " + std::to_string(rec) + " is out of range");
    const std::uint8_t* z = base + rec;
    if (load_u32(z) != kEnd64Sig) throw fail("bad ZIP64 end record signature");
    if (load_u32(z + 16) != 0 || load_u32(z + 20) != 0) throw fail("multi-disk archives are not supported");
    count = load_u64(z + 32);
    dir_size = load_u64(z + 40);
    dir_offset = load_u64(z + 48);
    dir_end_limit = rec;
  }
  if (count > kMaxEntries) throw fail("claims " + std::to_string(count) + " entries");
  if (dir_offset > dir_end_limit || dir_size > dir_end_limit - dir_offset)
    throw fail("central directory (offset " + std::to_string(dir_offset) + ", " + std::to_string(dir_size) +
               " bytes) lies outside the file");
  if (count * kCentralSize > dir_size) throw fail("central directory too small for its entry count");

  entries_.reserve(static_cast<std::size_t>(count));
  std::uint64_t at = dir_offset;
  const std::uint64_t dir_end = dir_offset + dir_size;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (dir_end - at < kCentralSize) throw fail("central directory entry " + std::to_string(i) + " is truncated");
    const std::uint8_t* c = base + at;
    if (load_u32(c) != kCentralSig) throw fail("bad central directory signature at entry " + std::to_string(i));
    ZipEntry entry;
    const std::uint16_t flags = load_u16(c + 8);
    entry.method = load_u16(c + 10);
    entry.crc = load_u32(c + 16);
    entry.compressed_size = load_u32(c + 20);
    entry.size = load_u32(c + 24);
    const std::uint16_t name_len = load_u16(c + 28), extra_len = load_u16(c + 30), comment_len = load_u16(c + 32);
    entry.header_offset = load_u32(c + 42);
    if (dir_end - at - kCentralSize < std::uint64_t(name_len) + extra_len + comment_len)
      throw fail("central directory entry " + std::to_string(i) + " is truncated");
    entry.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    if (flags & 1) throw Error(file, "zip entry '" + entry.name + "' is encrypted");
    if (entry.method != 0 && entry.method != 8)
      throw Error(file, "zip entry '" + entry.name + "' uses compression method " + std::to_string(entry.method) +
                            " (only stored and deflate are supported)");

    // ZIP64 extended information: 64-bit values for the fields saturated at 0xFFFFFFFF, in order.
    const std::uint8_t* x = c + kCentralSize + name_len;
    const std::uint8_t* x_end = x + extra_len;
    while (x_end - x >= 4) {
      const std::uint16_t id = load_u16(x), len = load_u16(x + 2);
      if (x_end - x - 4 < len) throw fail("extra field of '" + entry.name + "' is truncated");
      if (id == 0x0001) {
        const std::uint8_t* f = x + 4;
        std::uint16_t left = len;
        auto take = [&](std::uint64_t& field) {
          if (field != 0xFFFFFFFFu) return;
          if (left < 8) throw fail("ZIP64 field of '" + entry.name + "' is truncated");
          field = load_u64(f);
          f += 8;
          left = static_cast<std::uint16_t>(left - 8);
        };
        take(entry.size);
        take(entry.compressed_size);
        take(entry.header_offset);
      }
      x += 4 + len;
    }
    at += kCentralSize + name_len + extra_len + comment_len;

    // Local header: its name and extra field decide where the data starts. Its sizes and CRC are
    // zero when a data descriptor follows (torch does that), so the central values are used.
    if (entry.header_offset > dir_offset || dir_offset - entry.header_offset < kLocalSize)
      throw fail("local header of '" + entry.name + "' lies outside the file");
    const std::uint8_t* l = base + entry.header_offset;
    if (load_u32(l) != kLocalSig) throw fail("bad local header signature for '" + entry.name + "'");
    const std::uint64_t local_name = load_u16(l + 26), local_extra = load_u16(l + 28);
    entry.data_offset = entry.header_offset + kLocalSize + local_name + local_extra;
    if (entry.data_offset > dir_offset || dir_offset - entry.data_offset < entry.compressed_size)
      throw fail("data of '" + entry.name + "' (" + std::to_string(entry.compressed_size) +
                 " bytes) runs past the end of the archive data");
    if (local_name != name_len || std::memcmp(l + kLocalSize, entry.name.data(), name_len) != 0)
      throw fail("local header name of '" + entry.name + "' disagrees with the central directory");
    if (entry.method == 0 && entry.compressed_size != entry.size)
      throw fail("stored entry '" + entry.name + "' has different compressed and uncompressed sizes");
    if (!by_name_.emplace(entry.name, entries_.size()).second)
      throw fail("entry '" + entry.name + "' appears twice");
    entries_.push_back(std::move(entry));
  }

  // Overlapping entries are how some zip bombs multiply their output; no honest writer makes them.
  std::vector<const ZipEntry*> sorted;
  sorted.reserve(entries_.size());
  for (const auto& entry : entries_) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(),
            [](const ZipEntry* a, const ZipEntry* b) { return a->header_offset < b->header_offset; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->header_offset < sorted[i - 1]->data_offset + sorted[i - 1]->compressed_size)
      throw fail("entries '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap");
  }
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  const auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

ByteSource ZipArchive::read(const ZipEntry& entry, std::uint64_t max_size, bool verify_crc) const {
  const std::string subject = source_.name;
  const std::string what = "zip entry '" + entry.name + "'";
  if (entry.size > max_size)
    throw Error(subject, what + " holds " + std::to_string(entry.size) + " bytes, above the limit of " +
                             std::to_string(max_size));
  ByteSource out;
  out.name = subject;
  if (entry.method == 0) {
    out.owner = source_.owner;
    out.data = source_.data + entry.data_offset;
    out.size = static_cast<std::size_t>(entry.size);
    if (verify_crc && crc32_of(out.data, out.size) != entry.crc)
      throw Error(subject, what + " fails its CRC-32 check (the file is corrupt)");
    return out;
  }
  if (entry.size / kMaxDeflateRatio > entry.compressed_size + 1)
    throw Error(subject, what + " declares " + std::to_string(entry.size) + " bytes from " +
                             std::to_string(entry.compressed_size) +
                             " compressed, an impossible ratio (zip bomb?)");
#ifdef MCV_HAVE_ZLIB
  // Exactly the declared size (plus one byte that must stay unused) is allocated, uninitialised:
  // a stream that inflates past its declared size is cut off there, so a lying header cannot make
  // us produce more than it admitted to.
  const std::size_t n = static_cast<std::size_t>(entry.size);
  std::shared_ptr<std::uint8_t[]> buffer(new std::uint8_t[n + 1]);
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw Error(subject, what + ": cannot start zlib");
  std::uint64_t in_left = entry.compressed_size;
  std::uint64_t out_left = std::uint64_t(n) + 1;
  zs.next_in = const_cast<Bytef*>(source_.data + entry.data_offset);
  zs.next_out = buffer.get();
  const char* problem = nullptr;
  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      zs.avail_in = static_cast<uInt>(std::min<std::uint64_t>(in_left, 1u << 30));
      in_left -= zs.avail_in;
    }
    if (zs.avail_out == 0 && out_left > 0) {
      zs.avail_out = static_cast<uInt>(std::min<std::uint64_t>(out_left, 1u << 30));
      out_left -= zs.avail_out;
    }
    if (zs.avail_out == 0) {
      problem = "inflates past its declared size (zip bomb?)";
      break;
    }
    const int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && !(zs.avail_in == 0 && in_left == 0)) continue;
    problem = rc == Z_BUF_ERROR ? "has a truncated deflate stream" : "has a corrupt deflate stream";
    break;
  }
  const std::uint64_t produced = zs.total_out;
  inflateEnd(&zs);
  if (problem) throw Error(subject, what + " " + problem);
  if (produced != n)
    throw Error(subject, what + " inflates to " + std::to_string(produced) + " bytes, not the declared " +
                             std::to_string(n));
  if (crc32_of(buffer.get(), n) != entry.crc)
    throw Error(subject, what + " fails its CRC-32 check (the file is corrupt)");
  out.data = buffer.get();
  out.size = n;
  out.owner = std::shared_ptr<void>(buffer, buffer.get());
  return out;
#else
  (void)verify_crc;
  throw Error(subject, what + " is deflate-compressed and this build has no zlib");
#endif
}

}  // namespace mcv::checkpoint
