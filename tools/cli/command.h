#pragma once
// Subcommand registry of the mcv CLI. Each cli/cmd_*.cpp registers one subcommand with a static
// McvCommand object: a setup function that adds options to its CLI11 subcommand and returns the
// function to run. Exit codes (the CLI contract): 0 success; 1 the run finished but a check failed
// or some inputs failed; 2 nothing ran (bad usage, or an input/config/checkpoint error).

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace mcv::cli {

constexpr int kExitOk = 0;
constexpr int kExitCheckFailed = 1;
constexpr int kExitNothingRan = 2;

using Runner = std::function<int()>;

struct CommandSpec {
  std::string name;
  std::string help;
  std::function<Runner(CLI::App&)> setup;
};

std::vector<CommandSpec>& command_registry();

struct McvCommand {
  McvCommand(std::string name, std::string help, std::function<Runner(CLI::App&)> setup) {
    command_registry().push_back({std::move(name), std::move(help), std::move(setup)});
  }
};

}  // namespace mcv::cli
