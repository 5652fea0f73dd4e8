// The model families of this build, listed explicitly.
#include "model.h"

namespace mcv::vision {

Family mambavision_family();  // vision/src/mambavision/variants.cpp
Family vmamba_family();       // vision/src/vmamba/variants.cpp

std::vector<Family> builtin_families() { return {mambavision_family(), vmamba_family()}; }

}  // namespace mcv::vision
