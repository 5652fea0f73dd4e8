// mcv: the command line of mambacv. Errors print as one line `mcv: <subject>: <problem>`.

#include <cstdio>
#include <exception>
#include <algorithm>
#include <map>

#include "command.h"
#include "mcv/error.h"

namespace mcv::cli {
std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> registry;
  return registry;
}
}  // namespace mcv::cli

int main(int argc, char** argv) {
  using namespace mcv::cli;
  CLI::App app{"mcv: Mamba vision and multimodal models (mambacv)", "mcv"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mambacv 0.1.0");
  std::map<CLI::App*, Runner> runners;
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(), [](auto& a, auto& b) { return a.name < b.name; });
  for (auto& spec : registry) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.help);
    runners[sub] = spec.setup(*sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (what.empty()) what = e.get_name();
    std::fprintf(stderr, "mcv: %s (see mcv --help)\n", what.c_str());
    return kExitNothingRan;
  }
  try {
    for (auto* sub : app.get_subcommands()) return runners.at(sub)();
  } catch (const mcv::Error& e) {
    std::fprintf(stderr, "mcv: %s\n", e.what());
    return kExitNothingRan;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "mcv: out of memory\n");
    return kExitNothingRan;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mcv: internal error: %s\n", e.what());
    return kExitNothingRan;
  }
  return kExitNothingRan;
}
