// mcv convert IN OUT [--ema]: an official PyTorch checkpoint (or any file mcv reads) to a
// safetensors file, tensor names unchanged, written atomically.

#include <cstdio>
#include <filesystem>

#include "command.h"
#include "mcv/checkpoint.h"
#include "mcv/error.h"

namespace mcv::cli::cmd_convert {
namespace {

struct ConvertOptions {
  std::string input, output;
  bool ema = false;
};

int run_convert(const ConvertOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(o.output, ec) && fs::equivalent(o.input, o.output, ec))
    throw Error(o.output, "is the input file; choose another output");
  CheckpointOptions options;
  options.prefer_ema = o.ema;
  const Checkpoint ckpt = Checkpoint::open(o.input, options);
  std::map<std::string, std::string> metadata = ckpt.metadata();
  metadata.emplace("format", "pt");  // what the Hugging Face loaders look for
  save_safetensors(o.output, ckpt.tensors(), metadata);
  std::printf("%s: %zu tensors (%lld parameters) from %s%s%s written as safetensors\n", o.output.c_str(),
              ckpt.names().size(), static_cast<long long>(ckpt.parameter_count()), o.input.c_str(),
              ckpt.state_dict_key().empty() ? "" : ", state dict ",
              ckpt.state_dict_key().empty() ? "" : ("'" + ckpt.state_dict_key() + "'").c_str());
  return kExitOk;
}

const McvCommand kCommand("convert", "Convert a PyTorch checkpoint to safetensors (names unchanged)",
                          [](CLI::App& app) {
                            auto o = std::make_shared<ConvertOptions>();
                            app.add_option("input", o->input, "Checkpoint to read (.pth, .pth.tar, .bin, ...)")->required();
                            app.add_option("output", o->output, "safetensors file to write")->required();
                            app.add_flag("--ema", o->ema, "Convert the EMA copy of the weights");
                            return [o] { return run_convert(*o); };
                          });

}  // namespace
}  // namespace mcv::cli::cmd_convert
