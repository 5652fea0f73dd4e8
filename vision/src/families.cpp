// The model families of this build, listed explicitly.
#include "model.h"

namespace mcv::vision {

std::vector<Family> builtin_families() { return {}; }

}  // namespace mcv::vision
