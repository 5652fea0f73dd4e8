// Oracle runner for the kernel-level `selective_scan` family: the call recorded in config.json
// (`selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)`)
// run through mcv::kernels::selective_scan.

#include "mcv/error.h"
#include "mcv/kernels/selective_scan.h"
#include "oracle.h"

namespace mcv::oracle {

std::map<std::string, Tensor> run_selective_scan_oracle(const OracleFolder& folder, Context& ctx,
                                                        const OracleOptions& options) {
  const auto args = folder.config.value("official", nlohmann::json::object()).value("args", nlohmann::json::object());
  for (const auto& [name, value] : args.items())
    if (name != "D" && name != "z" && name != "delta_bias" && name != "delta_softplus" && name != "return_last_state")
      throw Error("argument " + name, "not supported by the selective_scan oracle runner (value " + value.dump() + ")");
  ContextScope scope(ctx);
  const Device dev = options.device;
  // I/O tensors in the compute dtype; A, D, delta_bias and states stay f32 (as the models keep them).
  auto io = [&](const std::string& name) { return folder.io_tensor(name).to(options.dtype).to(dev); };
  auto f32 = [&](const std::string& name) { return folder.io_tensor(name).to(DType::f32).to(dev); };
  kernels::SelectiveScanArgs a;
  a.u = io("u");
  a.delta = io("delta");
  a.A = f32("A");
  a.B = io("B");
  a.C = io("C");
  // An argument recorded as null (e.g. "D": null) was not passed to the official call.
  auto given = [&](const char* name) { return args.contains(name) && !args[name].is_null(); };
  if (given("D")) a.D = f32("D");
  if (given("z")) a.z = io("z");
  if (given("delta_bias")) a.delta_bias = f32("delta_bias");
  a.delta_softplus = args.value("delta_softplus", false);
  a.out = Tensor::empty(a.u.shape(), options.dtype, dev);
  std::map<std::string, Tensor> produced;
  if (args.value("return_last_state", false)) {
    a.final_state = Tensor::empty({a.u.size(0), a.u.size(1), a.A.size(1)}, DType::f32, dev);
    produced["last_state"] = a.final_state;
  }
  kernels::selective_scan(ctx, a);
  produced["out"] = a.out;
  return produced;
}

}  // namespace mcv::oracle
