// libFuzzer target: PyTorch checkpoints on arbitrary bytes. Inputs that start like a zip go
// through the zip reader, the unpickler, the state-dict search and tensor materialisation.
// Anything else is a raw data.pkl: it is fed to the restricted unpickler alone, then wrapped in a
// well-formed archive (with storages "0".."7" of 16 * key bytes) so that mutated tensor
// geometry reaches the materialisation code too, which a CRC-checked zip would otherwise hide.
// Any outcome but a result or an mcv::Error is a bug.
//
// Seeds: tests/fuzz/corpus/pickle (whole small .pth archives and their data.pkl).
// Run: fuzz_pickle -max_total_time=60 -rss_limit_mb=2048 tests/fuzz/corpus/pickle

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mcv/checkpoint.h"
#include "mcv/error.h"

namespace {

std::string le(std::uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

std::uint32_t crc32(std::string_view data) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

// A stored zip archive: what torch.save writes, minus alignment padding.
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out, dir;
  for (const auto& [name, data] : entries) {
    const std::string common = le(0, 2) + le(0, 2) + le(0, 4) + le(crc32(data), 4) + le(data.size(), 4) +
                               le(data.size(), 4) + le(name.size(), 2) + le(0, 2);
    dir += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + common + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
           le(out.size(), 4) + name;
    out += le(0x04034b50, 4) + le(20, 2) + common + name + data;
  }
  const std::size_t dir_offset = out.size();
  out += dir + le(0x06054b50, 4) + le(0, 4) + le(entries.size(), 2) + le(entries.size(), 2) + le(dir.size(), 4) +
         le(dir_offset, 4) + le(0, 2);
  return out;
}

void touch(const mcv::Checkpoint& ckpt) {
  double sum = 0;
  for (const auto& [name, t] : ckpt.tensors())
    if (t.numel() > 0) sum += t.item(0) + t.item(t.numel() - 1);
  (void)sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.substr(0, 2) == "PK") {
    for (const bool ema : {false, true}) {
      try {
        mcv::CheckpointOptions options;
        options.prefer_ema = ema;
        touch(mcv::Checkpoint::from_bytes(std::string(bytes), "fuzz.pth", options));
      } catch (const mcv::Error&) {
      }
    }
    return 0;
  }
  try {
    mcv::parse_torch_pickle(bytes, "fuzz.pkl");
  } catch (const mcv::Error&) {
  }
  try {
    std::vector<std::pair<std::string, std::string>> entries{{"archive/data.pkl", std::string(bytes)}};
    for (int key = 0; key < 8; ++key)
      entries.emplace_back("archive/data/" + std::to_string(key), std::string(16 * key, static_cast<char>(key)));
    touch(mcv::Checkpoint::from_bytes(make_zip(entries), "fuzz.pth"));
  } catch (const mcv::Error&) {
  }
  return 0;
}
