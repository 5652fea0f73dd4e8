#include "mcv/device.h"

#include <charconv>

#include "mcv/error.h"

namespace mcv {

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

Device parse_device(std::string_view text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda" || text == "gpu") return Device::cuda(0);
  if (text.substr(0, 5) == "cuda:") {
    int index = -1;
    const auto digits = text.substr(5);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && index >= 0) return Device::cuda(index);
  }
  throw Error(std::string(text), "unknown device (expected cpu, cuda or cuda:N)");
}

}  // namespace mcv
