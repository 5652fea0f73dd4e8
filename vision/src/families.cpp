// The model families of this build, listed explicitly.
#include "model.h"

namespace mcv::vision {

Family mambavision_family();  // vision/src/mambavision/variants.cpp
Family vmamba_family();       // vision/src/vmamba/variants.cpp
Family vim_family();          // vision/src/vim/vim_family.cpp

std::vector<ModelSpec> embedded_variants(const std::string& family);  // vision/src/embedded/

std::vector<Family> builtin_families() {
  std::vector<Family> families = {mambavision_family(), vmamba_family(), vim_family()};
  // The small models trained by the project itself (Fashion-MNIST) join their family's list.
  for (Family& f : families)
    for (ModelSpec& spec : embedded_variants(f.name)) f.variants.push_back(std::move(spec));
  return families;
}

}  // namespace mcv::vision
