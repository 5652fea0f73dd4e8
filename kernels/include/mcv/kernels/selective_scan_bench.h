#pragma once
/// \file
/// Benchmark of the selective scan (for `mcv bench kernels` and the kernel notes): the six
/// reference shapes S1-S6 in bf16 and f32, the two model compositions fused vs unfused
/// (Vim bidirectional at S1 size, VMamba SS2D cross-scan at S3 size), and the depthwise conv1d
/// that produces the scan's input in Vim and MambaVision ("conv1d ...", bytes-bound).
///
/// CUDA: CUDA events, warm-up, median of >= 50 runs, random non-zero data generated on the
/// device, input sets rotated so L2 cannot hold them; the device-to-device copy bandwidth is
/// measured in the same run. floor = max(bytes / copy bandwidth, transcendentals / (16 per clock
/// per SM x SMs x 1.98 GHz)) where bytes count every input read once and the output written
/// once, and transcendentals are N exponentials per (batch, direction, channel, step) plus one
/// each for softplus and the silu gate. CPU: wall clock, median of a few runs, a subset of shapes
/// (no floor).

#include <string>
#include <vector>

#include "mcv/context.h"

namespace mcv::kernels {

struct ScanBenchResult {
  std::string name;          ///< e.g. "S1", "vim-bidir fused", "vmamba-ss2d unfused"
  std::string dtype;         ///< "bf16" / "f32"
  std::string shape;         ///< batch x D x L, N, G (and K for fused directions)
  double ms = 0;             ///< median time of one call (or of the whole composition)
  double bytes = 0;          ///< bytes the op must move (inputs once + output once)
  double gbps = 0;           ///< bytes / ms
  double floor_ms = 0;       ///< 0 when not computed (CPU)
  double ratio = 0;          ///< ms / floor_ms
  double reference_ms = 0;   ///< official selective_scan_cuda.fwd bf16 time on H100 where known
  std::string note;
};

struct ScanBenchOptions {
  int runs = 50;                   ///< timed runs (median); CPU uses min(runs, 3)
  int warmup = 5;
  bool bf16 = true, f32 = true;
  bool compositions = true;
  /// Also each single-call shape reversed, without z (what direction and gate cost), at the next
  /// multiple of 8 steps where L is not one (aligned rows) and token-major (the models' layout).
  bool variants = false;
  std::vector<std::string> only;   ///< names to run (e.g. {"S1", "S6"}); empty: all
};

/// Runs the benchmark on the context's device. Also returns the measured copy bandwidth as a
/// result named "copy" (gbps) on CUDA.
std::vector<ScanBenchResult> bench_selective_scan(Context& ctx, const ScanBenchOptions& options = {});

/// Fixed-width table of results (one line each).
std::string format_scan_bench(const std::vector<ScanBenchResult>& results);

}  // namespace mcv::kernels
