// The oracle families this build can check.
#include "model.h"
#include "oracle.h"

namespace mcv::oracle {

std::map<std::string, Tensor> run_vision_oracle(const OracleFolder&, Context&, const OracleOptions&);
std::map<std::string, Tensor> run_selective_scan_oracle(const OracleFolder&, Context&, const OracleOptions&);

void register_builtin_runners(std::map<std::string, FamilyRunner>& runners) {
  runners["selective_scan"] = run_selective_scan_oracle;
  for (const std::string& family : vision::family_names()) runners[family] = run_vision_oracle;
}

}  // namespace mcv::oracle
