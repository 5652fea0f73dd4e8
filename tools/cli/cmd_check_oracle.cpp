// mcv check-oracle DIR... : runs the port on official oracle folders and compares every output
// and named intermediate. Exit 0 when all pass, 1 when a comparison fails, 2 when nothing could
// run (unknown family, unsupported constructor argument, unreadable files).

#include <cstdio>

#include "command.h"
#include "mcv/error.h"
#include "oracle.h"

namespace mcv::cli::cmd_check_oracle {
namespace {

struct CheckOracleOptions {
  std::vector<std::string> dirs;
  std::string device = "cpu";
  std::string dtype = "f32";
  bool verbose = false;
};

int run_check_oracle(const CheckOracleOptions& o) {
  oracle::OracleOptions options;
  options.device = parse_device(o.device);
  options.dtype = parse_dtype(o.dtype);
  if (options.dtype != DType::f32 && options.dtype != DType::bf16 && options.dtype != DType::f16)
    throw Error("--dtype " + o.dtype, "must be f32, bf16 or f16");
  bool all_passed = true;
  for (const auto& dir : o.dirs) {
    const oracle::OracleResult r = oracle::run_oracle(dir, options);
    std::printf("%s  [%s, %s, %s]  %s  (%.2f s)\n", r.name.c_str(), r.family.c_str(), o.device.c_str(),
                o.dtype.c_str(), r.passed ? "PASS" : "FAIL", r.seconds);
    for (const auto& c : r.checks) {
      if (!o.verbose && c.passed && !c.is_output) continue;
      std::printf("  %-4s %-28s max_abs %.3e (limit %s)  rel_l2 %.3e (limit %s)%s\n", c.passed ? "ok" : "FAIL",
                  c.name.c_str(), c.max_abs, c.limit_max_abs > 0 ? (std::to_string(c.limit_max_abs)).c_str() : "-",
                  c.rel_l2, c.limit_rel_l2 > 0 ? (std::to_string(c.limit_rel_l2)).c_str() : "-",
                  c.non_finite ? ("  NON-FINITE: " + std::to_string(c.non_finite)).c_str() : "");
    }
    all_passed = all_passed && r.passed;
  }
  return all_passed ? kExitOk : kExitCheckFailed;
}

const McvCommand kCommand("check-oracle", "Compare the port with official oracle outputs", [](CLI::App& app) {
  auto o = std::make_shared<CheckOracleOptions>();
  app.add_option("dirs", o->dirs, "Oracle folders")->required();
  app.add_option("--device", o->device, "cpu, cuda or cuda:N");
  app.add_option("--dtype", o->dtype, "f32, bf16 or f16");
  app.add_flag("-v,--verbose", o->verbose, "Print every intermediate, not only failures and outputs");
  return [o] { return run_check_oracle(*o); };
});

}  // namespace
}  // namespace mcv::cli::cmd_check_oracle
