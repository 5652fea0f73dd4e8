// libFuzzer target: the safetensors reader (header length, JSON header, tensor table, offsets,
// conversions) on arbitrary bytes. Any outcome but a tensor map or an mcv::Error is a bug.

#include <cstddef>
#include <cstdint>
#include <string>

#include "mcv/checkpoint.h"
#include "mcv/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Give the header-length sniff something to find: most mutations of a seed keep the '{' at 8.
  std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const mcv::Checkpoint ckpt = mcv::Checkpoint::from_bytes(std::move(bytes), "fuzz.safetensors");
    // Touch every element so a view past the buffer would be caught by ASan.
    double sum = 0;
    for (const auto& [name, t] : ckpt.tensors())
      for (std::int64_t i = 0; i < t.numel() && i < 4096; ++i) sum += t.item(i);
    for (const auto& [name, t] : ckpt.tensors())
      if (t.numel() > 0) sum += t.item(t.numel() - 1);
    // Writing back what was read must work and read back the same names.
    const std::string again = mcv::encode_safetensors(ckpt.tensors(), ckpt.metadata());
    const mcv::Checkpoint round = mcv::Checkpoint::from_bytes(again, "round.safetensors");
    if (round.tensors().size() != ckpt.tensors().size()) __builtin_trap();
    (void)sum;
  } catch (const mcv::Error&) {
  }
  return 0;
}
