// Oracle runner for the image-classification families (vim, vmamba, mambavision): builds the model
// from the official constructor arguments in config.json (never from a name lookup), loads
// weights.safetensors strictly, runs `input`, and returns the logits and every tapped intermediate.

#include "model.h"
#include "oracle.h"

namespace mcv::oracle {

std::map<std::string, Tensor> run_vision_oracle(const OracleFolder& folder, Context& ctx, const OracleOptions& options) {
  const auto& official = folder.config.value("official", nlohmann::json::object());
  if (!official.contains("args")) throw Error((folder.dir / "config.json").string(), "no official.args");
  const vision::Family& family = vision::find_family(folder.family);
  std::unique_ptr<vision::VisionModel> model = family.build(official["args"]);
  if (!folder.weights) throw Error(folder.dir.string(), "no weights.safetensors");
  vision::LoadOptions load;
  load.device = options.device;
  load.dtype = options.dtype;
  vision::load_state_dict(*model, *folder.weights, ctx, load);
  const Tensor& input = folder.io_tensor("input");
  model->check_input(input.shape());
  vision::Taps taps;
  model->taps = &taps;
  ContextScope scope(ctx);
  Tensor images = input.to(options.device);
  std::map<std::string, Tensor> produced;
  produced["output"] = model->forward(ctx, images);
  for (auto& [name, t] : taps.values)
    if (folder.io.contains("feat." + name)) produced["feat." + name] = t;
  ctx.synchronize();
  return produced;
}

}  // namespace mcv::oracle
