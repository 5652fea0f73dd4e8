// mcv inspect FILE [--ema] [--json]: what a checkpoint holds (format, where the state dict was
// found, every tensor's dtype and shape, the parameter count, the other top-level entries).

#include <cstdio>
#include <nlohmann/json.hpp>

#include "command.h"
#include "mcv/checkpoint.h"

namespace mcv::cli::cmd_inspect {
namespace {

struct InspectOptions {
  std::string file;
  bool ema = false;
  bool json = false;
};

int run_inspect(const InspectOptions& o) {
  CheckpointOptions options;
  options.prefer_ema = o.ema;
  const Checkpoint ckpt = Checkpoint::open(o.file, options);
  if (o.json) {
    nlohmann::ordered_json j;
    j["file"] = o.file;
    j["format"] = ckpt.format();
    j["state_dict_key"] = ckpt.state_dict_key();
    j["tensor_count"] = ckpt.names().size();
    j["parameter_count"] = ckpt.parameter_count();
    j["module_prefix"] = ckpt.has_module_prefix();
    j["other_keys"] = nlohmann::ordered_json::array();
    for (const auto& e : ckpt.other_entries()) j["other_keys"].push_back({{"key", e.key}, {"kind", e.kind}});
    j["metadata"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : ckpt.metadata()) j["metadata"][k] = v;
    j["tensors"] = nlohmann::ordered_json::array();
    for (const auto& name : ckpt.names()) {
      const Tensor& t = ckpt.at(name);
      j["tensors"].push_back({{"name", name}, {"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}});
    }
    // Names come from the file: invalid UTF-8 is replaced rather than failing the listing.
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::detail::error_handler_t::replace).c_str());
    return kExitOk;
  }
  std::printf("file:        %s\n", o.file.c_str());
  std::printf("format:      %s\n", ckpt.format().c_str());
  std::printf("state dict:  %s\n", ckpt.state_dict_key().empty() ? "(top level)" : ckpt.state_dict_key().c_str());
  std::printf("tensors:     %zu\n", ckpt.names().size());
  std::printf("parameters:  %lld elements\n", static_cast<long long>(ckpt.parameter_count()));
  if (ckpt.has_module_prefix())
    std::printf("note:        every name starts with 'module.' (saved from a DataParallel wrapper); names are kept\n");
  for (const auto& e : ckpt.other_entries()) std::printf("other key:   %s: %s\n", e.key.c_str(), e.kind.c_str());
  for (const auto& [k, v] : ckpt.metadata()) std::printf("metadata:    %s = %s\n", k.c_str(), v.c_str());
  std::size_t width = 4;
  for (const auto& name : ckpt.names()) width = std::max(width, name.size());
  std::printf("\n%-*s  %-5s  %s\n", static_cast<int>(width), "name", "dtype", "shape");
  for (const auto& name : ckpt.names()) {
    const Tensor& t = ckpt.at(name);
    std::printf("%-*s  %-5s  %s\n", static_cast<int>(width), name.c_str(), dtype_name(t.dtype()),
                shape_str(t.shape()).c_str());
  }
  return kExitOk;
}

const McvCommand kCommand("inspect", "List the tensors of a checkpoint (.pth, .pth.tar, .bin, .safetensors)",
                          [](CLI::App& app) {
                            auto o = std::make_shared<InspectOptions>();
                            app.add_option("file", o->file, "Checkpoint file")->required();
                            app.add_flag("--ema", o->ema, "Use the EMA copy of the weights");
                            app.add_flag("--json", o->json, "Print JSON");
                            return [o] { return run_inspect(*o); };
                          });

}  // namespace
}  // namespace mcv::cli::cmd_inspect
