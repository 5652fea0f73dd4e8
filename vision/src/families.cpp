// The model families of this build, listed explicitly.
#include "model.h"

namespace mcv::vision {

Family mambavision_family();  // vision/src/mambavision/variants.cpp

std::vector<Family> builtin_families() { return {mambavision_family()}; }

}  // namespace mcv::vision
