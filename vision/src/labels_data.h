#pragma once
#include <string>
#include <vector>

namespace mcv::vision {
extern const std::vector<std::string> kImageNet1kLabels;   // 1000 names, index order
extern const std::vector<std::string> kFashionMnistLabels; // 10 names
}  // namespace mcv::vision
