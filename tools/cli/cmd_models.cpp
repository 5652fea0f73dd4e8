// mcv models: the registered model variants.

#include <cstdio>

#include "command.h"
#include "mcv/vision.h"

namespace mcv::cli::cmd_models {
namespace {

int run_models(bool json) {
  const auto models = vision::list_models();
  if (json) {
    std::printf("[\n");
    for (std::size_t i = 0; i < models.size(); ++i) {
      const auto& m = models[i];
      std::printf("  {\"name\": \"%s\", \"family\": \"%s\", \"parameters\": %lld, \"resolution\": %d, \"top1\": %.2f}%s\n",
                  m.name.c_str(), m.family.c_str(), static_cast<long long>(m.parameters), m.preprocess.input_height,
                  m.published_top1, i + 1 < models.size() ? "," : "");
    }
    std::printf("]\n");
    return kExitOk;
  }
  std::printf("%-72s %-12s %-11s %8s %5s %6s\n", "name", "alias", "family", "params", "res", "top-1");
  for (const auto& m : models) {
    char top1[16] = "-";
    if (m.published_top1 > 0) std::snprintf(top1, sizeof top1, "%.1f", m.published_top1);
    std::printf("%-72s %-12s %-11s %7.1fM %5d %6s\n", m.name.c_str(), m.aliases.empty() ? "" : m.aliases[0].c_str(),
                m.family.c_str(), m.parameters / 1e6, m.preprocess.input_height, top1);
  }
  return kExitOk;
}

const McvCommand kCommand("models", "List the registered models", [](CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  app.add_flag("--json", *json, "Machine-readable output");
  return [json] { return run_models(*json); };
});

}  // namespace
}  // namespace mcv::cli::cmd_models
