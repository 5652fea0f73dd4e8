// Selective scan on CUDA against the CPU path (itself checked against a float64 reference in
// test_selective_scan.cpp), over a pairwise selection of lengths (incl. 65536 and 262144, which
// take the chunked long-sequence path), state sizes (every N bucket), dtypes, layouts,
// directions, groups and options; forced launch variants (lanes per channel, L-chunks with fast
// and slow decay); a small run of every kernel for compute-sanitizer (*Sanitizer*); device
// mismatches. Skipped (reported as such) without a GPU.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "mcv/context.h"
#include "mcv/error.h"
#include "mcv/kernels/selective_scan.h"
#include "test_selective_scan_common.h"
#include "test_support.h"

namespace mcv::test::scan {
namespace {

struct CudaCase {
  ScanCase c;
  int lanes = 0;   ///< MCV_SCAN_LANES (0: heuristic)
  int chunks = 0;  ///< MCV_SCAN_CHUNKS (0: heuristic)
  int serial = 0;  ///< MCV_SCAN_SERIAL_DIRS (1: every direction in one thread, in turn)
  bool tiled = false;  ///< MCV_SCAN_PIPE=0: the older tiled kernel where the pipelined one would run
  int segments = 0;    ///< MCV_SCAN_SEGMENTS (2: step segments for one-state channels; 0: heuristic)
  /// MCV_SCAN_TMA: 0 where they apply (default), off: the cp.async copies, required: an error
  /// unless the launch moves its rows as TMA boxes.
  enum class Tma { heuristic, off, required } tma = Tma::heuristic;
  /// MCV_SCAN_WARP_TMA: the warp pipelines where 16-bit 16-state launches and f32 8 x 2 staged
  /// cross2d take them (each warp its own boxes, B/C included; default), one box per block
  /// instead (block), or required: an error unless the launch takes them.
  enum class Warp { heuristic, block, required } warp = Warp::heuristic;
  /// MCV_SCAN_COLS: cross2d's column orders staged as transposed channel rows where u is in
  /// channel rows (default), never (off: channel-major streams staged token-major instead), or
  /// for every layout (forced).
  enum class Cols { heuristic, off, forced } cols = Cols::heuristic;
  /// MCV_SCAN_STEP_TMA: token-major 16-bit rows as step-row boxes where they apply (default),
  /// never (off), or required: an error unless the launch takes them.
  enum class StepTma { heuristic, off, required } step = StepTma::heuristic;
  /// MCV_SCAN_REDUCE_OUT: a bidirectional scan on them adds both directions into out where it
  /// can (default), never (off: slices and the merge pass), or required.
  enum class Reduce { heuristic, off, required } reduce = Reduce::heuristic;
  /// MCV_SCAN_WARP_CORRECTION: L-chunks corrected by one warp per (chunk, channel) where it
  /// applies (default), by the pass kernels' blocks (block), or required: an error unless the
  /// chunked launch takes the warp correction.
  enum class Corr { heuristic, block, required } corr = Corr::heuristic;
  std::string name() const {
    return c.name() + (lanes ? "_lanes" + std::to_string(lanes) : "") + (chunks ? "_chunks" + std::to_string(chunks) : "") +
           (serial ? "_serial" : "") + (tiled ? "_tiled" : "") + (segments ? "_seg" + std::to_string(segments) : "") +
           (tma == Tma::off ? "_tmaoff" : tma == Tma::required ? "_tma" : "") + (warp == Warp::block ? "_blockboxes" : warp == Warp::required ? "_warp" : "") + (cols == Cols::off ? "_colsoff" : cols == Cols::forced ? "_cols" : "") + (step == StepTma::off ? "_stepoff" : step == StepTma::required ? "_step" : "") + (reduce == Reduce::off ? "_mergepass" : reduce == Reduce::required ? "_reduce" : "") +
           (corr == Corr::block ? "_blockcorr" : corr == Corr::required ? "_warpcorr" : "");
  }
};

void PrintTo(const CudaCase& c, std::ostream* os) { *os << c.name(); }

class EnvGuard {
 public:
  EnvGuard(const char* name, int value) : EnvGuard(name, value ? std::to_string(value).c_str() : nullptr) {}
  EnvGuard(const char* name, const char* value) : name_(name) {
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~EnvGuard() { unsetenv(name_); }

 private:
  const char* name_;
};

std::vector<double> state_values(const Tensor& t) {
  const std::vector<float> f = t.to(Device::cpu()).to_vector();
  return std::vector<double>(f.begin(), f.end());
}

void check_cuda_against_cpu(const CudaCase& cc) {
  const ScanCase& c = cc.c;
  Context cpu(Device::cpu()), gpu(Device::cuda(0));
  const ScanInputs in = make_inputs(c);
  const Stored out_cpu = make_out(c, Device::cpu());
  const Stored st_cpu = c.final_state ? make_state(c, Device::cpu()) : Stored{};
  kernels::selective_scan(cpu, make_args(c, in, out_cpu.get(), st_cpu.get()));

  const ScanInputs din = in.to(Device::cuda(0));
  const Stored out_gpu = make_out(c, Device::cuda(0));
  const Stored st_gpu = c.final_state ? make_state(c, Device::cuda(0)) : Stored{};
  {
    EnvGuard lanes("MCV_SCAN_LANES", cc.lanes), chunks("MCV_SCAN_CHUNKS", cc.chunks),
        serial("MCV_SCAN_SERIAL_DIRS", cc.serial), pipe("MCV_SCAN_PIPE", cc.tiled ? "0" : nullptr),
        segments("MCV_SCAN_SEGMENTS", cc.segments),
        tma("MCV_SCAN_TMA", cc.tma == CudaCase::Tma::off ? "0" : cc.tma == CudaCase::Tma::required ? "2" : nullptr),
        cols("MCV_SCAN_COLS", cc.cols == CudaCase::Cols::off ? "0" : cc.cols == CudaCase::Cols::forced ? "2" : nullptr),
        warp_tma("MCV_SCAN_WARP_TMA", cc.warp == CudaCase::Warp::block ? "0" : cc.warp == CudaCase::Warp::required ? "2" : nullptr),
        step_tma("MCV_SCAN_STEP_TMA", cc.step == CudaCase::StepTma::off ? "0" : cc.step == CudaCase::StepTma::required ? "2" : nullptr),
        reduce("MCV_SCAN_REDUCE_OUT", cc.reduce == CudaCase::Reduce::off ? "0" : cc.reduce == CudaCase::Reduce::required ? "2" : nullptr),
        corr("MCV_SCAN_WARP_CORRECTION", cc.corr == CudaCase::Corr::block ? "0" : cc.corr == CudaCase::Corr::required ? "2" : nullptr);
    kernels::selective_scan(gpu, make_args(c, din, out_gpu.get(), st_gpu.get()));
  }
  gpu.synchronize();
  const Error e = compare(logical_values(out_gpu.get()), logical_values(out_cpu.get()));
  const double tol = tolerance(c.dtype);
  EXPECT_EQ(e.bad, 0) << "unwritten or non-finite outputs";
  EXPECT_LE(e.rel_l2, tol) << "max_abs " << e.max_abs << " ref_max " << e.ref_max;
  EXPECT_LE(e.max_abs, 20 * tol * std::max(1.0, e.ref_max));
  if (c.final_state) {
    const Error s = compare(state_values(st_gpu.get()), state_values(st_cpu.get()));
    EXPECT_EQ(s.bad, 0);
    EXPECT_LE(s.rel_l2, 2e-5) << "final state, max_abs " << s.max_abs;
  }
}

std::vector<CudaCase> cuda_cases() {
  std::vector<CudaCase> v;
  auto add = [&](auto&& edit) {
    CudaCase cc;
    cc.c.seed = 1000 + v.size();
    edit(cc, cc.c);
    v.push_back(cc);
  };
  using C = ScanCase;
  // Lengths x N buckets x dtypes, paired.
  add([](CudaCase&, C& c) { c.seqlen = 1; c.n_state = 16; });
  add([](CudaCase&, C& c) { c.seqlen = 2; c.n_state = 4; c.dtype = DType::bf16; });
  add([](CudaCase&, C& c) { c.seqlen = 7; c.n_state = 1; c.dtype = DType::f16; c.dim = 5; });
  add([](CudaCase&, C& c) { c.seqlen = 197; c.n_state = 8; c.dim = 33; });
  add([](CudaCase& k, C& c) { c.seqlen = 197; c.n_state = 8; c.dim = 33; c.dtype = DType::bf16; k.lanes = 1; });
  add([](CudaCase& k, C& c) { c.seqlen = 197; c.n_state = 16; c.dim = 200; k.lanes = 1; });
  add([](CudaCase& k, C& c) { c.seqlen = 100; c.n_state = 13; c.dim = 70; c.dtype = DType::bf16; k.lanes = 2; });
  add([](CudaCase&, C& c) { c.seqlen = 1000; c.n_state = 32; c.dtype = DType::bf16; c.dim = 17; });
  add([](CudaCase&, C& c) { c.seqlen = 197; c.n_state = 64; c.dtype = DType::f16; c.groups = 2; c.dim = 10; });
  add([](CudaCase&, C& c) { c.seqlen = 300; c.n_state = 128; c.layout = Layout::token_major; });
  add([](CudaCase&, C& c) { c.seqlen = 50; c.n_state = 256; c.dtype = DType::bf16; c.initial_state = true; });
  add([](CudaCase&, C& c) { c.seqlen = 3136; c.n_state = 16; c.groups = 4; c.dim = 16; c.dtype = DType::bf16; });
  add([](CudaCase&, C& c) { c.seqlen = 3136; c.n_state = 1; c.groups = 4; c.dim = 8; });
  // Long sequences: the chunked path (few channels), with an initial state and slow decay.
  add([](CudaCase&, C& c) { c.batch = 1; c.dim = 12; c.seqlen = 65536; c.n_state = 16; c.initial_state = true; });
  add([](CudaCase&, C& c) {
    c.batch = 1; c.dim = 24; c.seqlen = 262144; c.n_state = 16; c.dtype = DType::bf16; c.a_scale = 0.01f;
  });
  add([](CudaCase& k, C& c) { c.dim = 8; c.seqlen = 4000; c.n_state = 4; c.a_scale = 0.001f; k.chunks = 7; });
  add([](CudaCase& k, C& c) {
    c.dim = 8; c.seqlen = 4000; c.n_state = 4; c.a_scale = 0.001f; k.chunks = 7; k.corr = CudaCase::Corr::block;
  });
  add([](CudaCase& k, C& c) {
    c.dim = 8; c.seqlen = 2500; c.n_state = 64; c.dtype = DType::f16; c.layout = Layout::token_major; k.chunks = 5;
  });
  // The warp correction (scan_correct.cuh): N above 32 (eight states per lane) with groups and
  // slow decay, reversed 16-bit, bidirectional (one direction per block) with a final state,
  // and a partial last chunk with odd D; the same 65536 steps by the block correction.
  add([](CudaCase& k, C& c) {
    c.batch = 1; c.dim = 10; c.seqlen = 3001; c.n_state = 40; c.groups = 2; c.a_scale = 0.01f; k.chunks = 6;
    k.corr = CudaCase::Corr::required;
  });
  add([](CudaCase& k, C& c) {
    c.batch = 1; c.dim = 7; c.seqlen = 2047; c.n_state = 16; c.dtype = DType::bf16; c.a_scale = 0.02f;
    c.dirs = ScanDirections::reverse; c.initial_state = true; k.chunks = 5; k.corr = CudaCase::Corr::required;
  });
  add([](CudaCase& k, C& c) {
    c.batch = 2; c.dim = 9; c.seqlen = 1500; c.n_state = 8; c.dtype = DType::f16; c.a_scale = 0.05f;
    c.dirs = ScanDirections::bidirectional; k.chunks = 3; k.corr = CudaCase::Corr::required;
  });
  add([](CudaCase& k, C& c) {
    c.batch = 1; c.dim = 12; c.seqlen = 65536; c.n_state = 16; c.initial_state = true; k.corr = CudaCase::Corr::block;
  });
  add([](CudaCase& k, C& c) { c.dim = 3; c.seqlen = 999; c.has_z = false; c.dirs = ScanDirections::reverse; k.chunks = 4; });
  // The token-major warp correction (lanes across channels, scan_correct.cu): reversed bf16 with
  // an initial state and a partial warp (D 40), bidirectional f16 at batch 2 with a final state,
  // f32 with two groups of 32 channels; two groups of 5 channels take the block correction.
  add([](CudaCase& k, C& c) {
    c.batch = 1; c.dim = 40; c.seqlen = 2047; c.n_state = 16; c.dtype = DType::bf16; c.a_scale = 0.02f;
    c.layout = Layout::token_major; c.dirs = ScanDirections::reverse; c.initial_state = true; k.chunks = 5;
    k.corr = CudaCase::Corr::required;
  });
  add([](CudaCase& k, C& c) {
    c.batch = 2; c.dim = 9; c.seqlen = 1500; c.n_state = 8; c.dtype = DType::f16; c.a_scale = 0.05f;
    c.layout = Layout::token_major; c.dirs = ScanDirections::bidirectional; k.chunks = 3; k.corr = CudaCase::Corr::required;
  });
  add([](CudaCase& k, C& c) {
    c.batch = 1; c.dim = 64; c.seqlen = 3001; c.n_state = 13; c.groups = 2; c.a_scale = 0.01f;
    c.layout = Layout::token_major; k.chunks = 6; k.corr = CudaCase::Corr::required;
  });
  add([](CudaCase& k, C& c) {
    c.batch = 1; c.dim = 10; c.seqlen = 3001; c.n_state = 16; c.groups = 2; c.a_scale = 0.01f;
    c.layout = Layout::token_major; k.chunks = 6;
  });
  // Directions x layouts x dtypes (pairwise), grid forms.
  add([](CudaCase&, C& c) { c.dirs = ScanDirections::reverse; c.layout = Layout::token_major; c.dtype = DType::bf16; });
  add([](CudaCase&, C& c) { c.dirs = ScanDirections::reverse; c.layout = Layout::gather; c.initial_state = true; });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::bidirectional; c.scale = 0.5f; c.dim = 40; c.seqlen = 197; c.dtype = DType::bf16;
  });
  add([](CudaCase&, C& c) { c.dirs = ScanDirections::bidirectional; c.layout = Layout::token_major; c.n_state = 64; });
  add([](CudaCase&, C& c) { c.dirs = ScanDirections::bidirectional; c.layout = Layout::padded; c.groups = 2; c.dtype = DType::f16; });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 14; c.width = 14; c.seqlen = 196; c.grid_rank4 = true;
    c.has_z = false; c.dim = 24; c.dtype = DType::bf16;
  });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 7; c.width = 9; c.seqlen = 63; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.n_state = 1;
  });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 56; c.width = 56; c.seqlen = 3136; c.layout = Layout::gather;
    c.dim = 4; c.n_state = 16; c.has_z = false; c.initial_state = true;
  });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 5; c.width = 8; c.seqlen = 40; c.layout = Layout::padded; c.groups = 2;
    c.n_state = 32; c.dtype = DType::f16;
  });
  // cross2d with its column orders staged as transposed channel rows (the default, launch.cu):
  // odd H, W and D, z gated in the merge, a full 128-channel block; f16 with a final state; f32
  // L-chunked at batch 1 with an initial state; mixed layouts are covered by `padded` above, the
  // token-major and gathered ones (copied to channel rows first) by the cases before.
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 7; c.width = 9; c.seqlen = 63; c.grid_rank4 = true;
    c.dim = 130; c.n_state = 16; c.dtype = DType::bf16; k.lanes = 1;
  });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 11; c.width = 6; c.seqlen = 66; c.dim = 20; c.n_state = 4;
    c.dtype = DType::f16; c.final_state = true;
  });
  add([](CudaCase&, C& c) {  // 16-bit pairs in the copies, partial 64 x 64 tiles on both axes
    c.dirs = ScanDirections::cross2d; c.height = 10; c.width = 13; c.seqlen = 130; c.grid_rank4 = true;
    c.dim = 70; c.dtype = DType::bf16;
  });
  // The same staged as token-major scratch (MCV_SCAN_COLS=0); token-major (f16, final state)
  // and gathered (bf16, groups) streams with staged column orders (MCV_SCAN_COLS=2: copied to
  // channel rows first).
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 7; c.width = 9; c.seqlen = 63; c.grid_rank4 = true;
    c.dim = 130; c.n_state = 16; c.dtype = DType::bf16; k.lanes = 1; k.cols = CudaCase::Cols::off;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 10; c.width = 13; c.seqlen = 130; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 24; c.dtype = DType::f16; c.final_state = true; k.cols = CudaCase::Cols::forced;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 9; c.width = 6; c.seqlen = 54; c.layout = Layout::gather;
    c.dim = 12; c.groups = 3; c.n_state = 8; c.dtype = DType::bf16; k.cols = CudaCase::Cols::forced;
  });
  add([](CudaCase& k, C& c) {  // one state: step segments over the staged rows (f32's default at scale)
    c.dirs = ScanDirections::cross2d; c.height = 12; c.width = 9; c.seqlen = 108; c.grid_rank4 = true;
    c.dim = 40; c.n_state = 1; c.batch = 3; k.segments = 2;
  });
  // Staged column orders as TMA boxes (rows 16-byte aligned in both orders): channel-major bf16
  // with z and 48 x 40 merge tiles over two 32-tiles each way, token-major f32 (8 states x 2
  // lanes) with a final state, batch-1 chunked with an initial state.
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 48; c.width = 40; c.seqlen = 1920; c.grid_rank4 = true;
    c.dim = 128; c.n_state = 16; c.dtype = DType::bf16; c.batch = 2; k.lanes = 1; k.tma = CudaCase::Tma::required;
    k.warp = CudaCase::Warp::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 16; c.width = 10; c.seqlen = 160; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 64; c.n_state = 16; c.final_state = true; c.has_z = false; k.lanes = 2;
    k.tma = CudaCase::Tma::required; k.cols = CudaCase::Cols::forced;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 24; c.width = 32; c.seqlen = 768; c.grid_rank4 = true; c.batch = 1;
    c.dim = 32; c.n_state = 16; c.dtype = DType::f16; c.initial_state = true; c.a_scale = 0.01f; k.lanes = 1;
    k.chunks = 3; k.tma = CudaCase::Tma::required; k.warp = CudaCase::Warp::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 28; c.width = 28; c.seqlen = 784; c.grid_rank4 = true; c.batch = 1;
    c.dim = 8; c.n_state = 16; c.initial_state = true; c.a_scale = 0.01f; k.chunks = 3;
  });
  // The column directions' delta, B and C given column-major (column_inputs_transposed): read in
  // place by the staged column orders - warp pipelines with z, f32 cp.async rows with groups in
  // the padded layout (B/C permuted), f16 L-chunked at batch 1 - and copied back to grid order
  // for the paths that read the grid: token-major in place, serial directions, the tiled kernel,
  // a fixed B (the generic kernel).
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 48; c.width = 40; c.seqlen = 1920; c.grid_rank4 = true;
    c.dim = 128; c.n_state = 16; c.dtype = DType::bf16; c.batch = 2; c.cols_transposed = true; k.lanes = 1;
    k.tma = CudaCase::Tma::required; k.warp = CudaCase::Warp::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 7; c.width = 9; c.seqlen = 63; c.layout = Layout::padded;
    c.groups = 2; c.dim = 40; c.cols_transposed = true; c.final_state = true; k.cols = CudaCase::Cols::forced;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 24; c.width = 32; c.seqlen = 768; c.grid_rank4 = true; c.batch = 1;
    c.dim = 32; c.n_state = 16; c.dtype = DType::f16; c.initial_state = true; c.a_scale = 0.01f;
    c.cols_transposed = true; k.chunks = 3;
  });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 8; c.width = 12; c.seqlen = 96; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 16; c.n_state = 1; c.dtype = DType::bf16; c.has_z = false; c.cols_transposed = true;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 6; c.width = 7; c.seqlen = 42; c.grid_rank4 = true; c.dim = 16;
    c.cols_transposed = true; k.serial = 1;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 7; c.width = 9; c.seqlen = 63; c.grid_rank4 = true; c.dim = 36;
    c.dtype = DType::bf16; c.cols_transposed = true; k.tiled = true;
  });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 5; c.width = 8; c.seqlen = 40; c.dim = 12; c.fixed_B = true;
    c.cols_transposed = true;
  });
  // Directions in separate blocks merged by the vectorised pass (channels a multiple of 8, a
  // contiguous token-major output), with and without z, batch 1 (L-chunked per direction); and
  // the serial form (every direction in one thread) for both multi-direction modes.
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 8; c.width = 12; c.seqlen = 96; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 16; c.n_state = 1; c.dtype = DType::f16; c.has_z = false;
  });
  // Column orders by 16-byte units and ColWalk (scan_pipe.cuh: issue_rows, store_step_rows): a
  // tile spanning two columns (H 14 < 16 steps), channel blocks of 48, both 16-bit step boxes and
  // f32 rows; and H 5 with several columns per tile, channels that are not whole units (8-byte
  // copies, element stores).
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 14; c.width = 10; c.seqlen = 140; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 48; c.n_state = 1; c.dtype = DType::bf16; c.has_z = false; c.batch = 3;
  });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 14; c.width = 10; c.seqlen = 140; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 48; c.n_state = 1; c.has_z = false;
  });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 5; c.width = 11; c.seqlen = 55; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 20; c.n_state = 1; c.dtype = DType::bf16;
  });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 28; c.width = 28; c.seqlen = 784; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 32; c.n_state = 16; c.dtype = DType::bf16; c.batch = 1; c.initial_state = true;
    c.final_state = true;
  });
  add([](CudaCase&, C& c) { c.dirs = ScanDirections::bidirectional; c.dim = 24; c.seqlen = 197; c.batch = 1; });
  // Vim's call: one u per direction, token-major, batch 1 (chunked) and a full batch.
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::bidirectional; c.u_per_dir = true; c.layout = Layout::token_major; c.dim = 32;
    c.seqlen = 197; c.batch = 1; c.scale = 0.5f; c.dtype = DType::f16;
  });
  add([](CudaCase&, C& c) {
    c.dirs = ScanDirections::bidirectional; c.u_per_dir = true; c.layout = Layout::padded; c.dim = 40;
    c.seqlen = 197; c.batch = 16; c.dtype = DType::bf16;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::bidirectional; c.u_per_dir = true; c.layout = Layout::gather; c.dim = 9; c.seqlen = 70;
    k.serial = 1;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 6; c.width = 7; c.seqlen = 42; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 16; k.serial = 1;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::bidirectional; c.dim = 16; c.seqlen = 197; c.dtype = DType::bf16; k.serial = 1;
  });
  // The older tiled kernel (MCV_SCAN_PIPE=0) on the layouts the pipelined one takes by default:
  // channel-major rows (odd L, every N bucket), token-major, reversed and bidirectional, chunked.
  add([](CudaCase& k, C& c) { c.seqlen = 197; c.n_state = 16; c.dim = 200; k.lanes = 1; k.tiled = true; });
  add([](CudaCase& k, C& c) {
    c.seqlen = 197; c.n_state = 8; c.dim = 33; c.dtype = DType::bf16; c.dirs = ScanDirections::reverse; k.tiled = true;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::bidirectional; c.u_per_dir = true; c.layout = Layout::token_major; c.dim = 32;
    c.seqlen = 197; c.batch = 1; c.dtype = DType::f16; k.tiled = true;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 8; c.width = 12; c.seqlen = 96; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 16; c.n_state = 1; k.tiled = true;
  });
  add([](CudaCase& k, C& c) { c.dim = 8; c.seqlen = 4000; c.n_state = 4; c.a_scale = 0.001f; k.chunks = 7; k.tiled = true; });
  add([](CudaCase& k, C& c) {  // channel-major cross2d in place (no staging without the pipelined kernel)
    c.dirs = ScanDirections::cross2d; c.height = 7; c.width = 9; c.seqlen = 63; c.grid_rank4 = true; c.dim = 36;
    c.dtype = DType::bf16; k.tiled = true;
  });
  // The pipelined kernel at full block width (128 channels, one lane): every tile full and
  // partial, odd and even L, both 16-bit types and f32, forward and reverse, with a final state.
  add([](CudaCase& k, C& c) { c.seqlen = 197; c.n_state = 16; c.dim = 384; c.batch = 3; c.dtype = DType::bf16; k.lanes = 1; });
  add([](CudaCase& k, C& c) {
    c.seqlen = 64; c.n_state = 16; c.dim = 256; c.batch = 2; c.dtype = DType::f16; c.dirs = ScanDirections::reverse;
    c.final_state = true; k.lanes = 1;
  });
  add([](CudaCase& k, C& c) {
    c.seqlen = 33; c.n_state = 1; c.dim = 130; c.groups = 2; c.dtype = DType::bf16; c.layout = Layout::token_major;
    c.dirs = ScanDirections::reverse; k.lanes = 1;
  });
  add([](CudaCase& k, C& c) { c.seqlen = 250; c.n_state = 8; c.dim = 160; c.batch = 2; k.lanes = 1; c.initial_state = true; });
  // Step segments (two threads per one-state channel, each half of every tile's steps; the
  // default only from ~34k channels on, forced here): partial last tiles, odd L, 16-bit pairs
  // and f32 rows, reversed with an initial state, token-major rows with groups, the
  // cooperative stores (L a multiple of 8), both multi-direction modes, a gather (the tiled
  // kernel with the segment launch's 64-channel blocks) and one without z, D or softplus.
  add([](CudaCase& k, C& c) { c.seqlen = 197; c.n_state = 1; c.dim = 130; c.dtype = DType::bf16; k.segments = 2; });
  add([](CudaCase& k, C& c) {
    c.seqlen = 64; c.n_state = 1; c.dim = 70; c.dirs = ScanDirections::reverse; c.initial_state = true; k.segments = 2;
  });
  add([](CudaCase& k, C& c) {
    c.seqlen = 33; c.n_state = 1; c.dim = 130; c.groups = 2; c.dtype = DType::f16; c.layout = Layout::token_major;
    c.dirs = ScanDirections::reverse; k.segments = 2;
  });
  add([](CudaCase& k, C& c) { c.seqlen = 3136; c.n_state = 1; c.groups = 4; c.dim = 64; c.dtype = DType::bf16; k.segments = 2; });
  add([](CudaCase& k, C& c) { c.seqlen = 1000; c.n_state = 1; c.dim = 40; c.a_scale = 0.001f; k.segments = 2; });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 8; c.width = 12; c.seqlen = 96; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 16; c.n_state = 1; c.dtype = DType::bf16; k.segments = 2;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::bidirectional; c.n_state = 1; c.dim = 24; c.seqlen = 197; c.dtype = DType::f16; k.segments = 2;
  });
  add([](CudaCase& k, C& c) { c.layout = Layout::gather; c.n_state = 1; c.dim = 70; c.seqlen = 50; k.segments = 2; });
  add([](CudaCase& k, C& c) {
    c.n_state = 1; c.dim = 9; c.seqlen = 40; c.has_D = c.has_z = c.softplus = false; c.dtype = DType::bf16; k.segments = 2;
  });
  // TMA boxes (16-bit channel rows, 16-byte aligned: L a multiple of 8; required, so a case
  // that stops taking them fails): partial last tiles forward and reversed (the reversed box
  // starts before position 0), a partial block past D, groups, without z, the per-direction
  // slices of a bidirectional scan, L-chunks (pass 1 by box, the correction by cp.async) with
  // an initial and a final state; and the cp.async copies on the same kind of layouts.
  using Tma = CudaCase::Tma;
  add([](CudaCase& k, C& c) {
    c.seqlen = 1000; c.n_state = 16; c.dim = 256; c.batch = 2; c.dtype = DType::bf16; c.final_state = true;
    k.lanes = 1; k.tma = Tma::required;
  });
  add([](CudaCase& k, C& c) {
    c.seqlen = 200; c.n_state = 1; c.dim = 96; c.dtype = DType::f16; c.dirs = ScanDirections::reverse;
    c.initial_state = true; k.segments = 1; k.tma = Tma::required;
  });
  add([](CudaCase& k, C& c) {
    c.seqlen = 96; c.n_state = 4; c.dim = 130; c.dtype = DType::bf16; c.has_z = false; k.lanes = 1; k.tma = Tma::required;
  });
  add([](CudaCase& k, C& c) {
    c.seqlen = 3136; c.n_state = 1; c.groups = 4; c.dim = 256; c.dtype = DType::bf16; k.segments = 1; k.tma = Tma::required;
  });
  add([](CudaCase& k, C& c) {
    c.seqlen = 72; c.n_state = 8; c.dim = 64; c.dtype = DType::f16; c.dirs = ScanDirections::bidirectional;
    k.lanes = 1; k.tma = Tma::required;
  });
  add([](CudaCase& k, C& c) {
    c.batch = 1; c.dim = 64; c.seqlen = 4104; c.n_state = 16; c.dtype = DType::bf16; c.initial_state = true;
    c.final_state = true; c.a_scale = 0.01f; c.dirs = ScanDirections::reverse; k.lanes = 1; k.chunks = 4;
    k.tma = Tma::required; k.warp = CudaCase::Warp::required;
  });
  // 16-bit with 16 states: the warp pipelines by default (the cases above with N 16), one box
  // per block on request; N below the bucket (B/C box rows past N read as zero), groups, a
  // reversed partial tile without z, the per-direction slots of a bidirectional scan.
  add([](CudaCase& k, C& c) {
    c.seqlen = 1000; c.n_state = 16; c.dim = 256; c.batch = 2; c.dtype = DType::bf16; c.final_state = true;
    k.lanes = 1; k.tma = Tma::required; k.warp = CudaCase::Warp::block;
  });
  add([](CudaCase& k, C& c) {
    c.seqlen = 200; c.n_state = 12; c.dim = 256; c.groups = 2; c.dtype = DType::f16; c.dirs = ScanDirections::reverse;
    c.has_z = false; c.final_state = true; k.lanes = 1; k.tma = Tma::required; k.warp = CudaCase::Warp::required;
  });
  add([](CudaCase& k, C& c) {
    c.seqlen = 72; c.n_state = 16; c.dim = 64; c.batch = 3; c.dtype = DType::bf16; c.dirs = ScanDirections::bidirectional;
    c.initial_state = true; k.lanes = 1; k.tma = Tma::required; k.warp = CudaCase::Warp::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 48; c.width = 40; c.seqlen = 1920; c.grid_rank4 = true;
    c.dim = 128; c.n_state = 16; c.dtype = DType::bf16; c.batch = 2; k.lanes = 1; k.tma = Tma::required;
    k.warp = CudaCase::Warp::block;
  });
  // f32 rows (64 bytes per 16 steps, the 64-byte swizzle): N 16 as 8 states x 2 lanes, a
  // reversed partial tile with 8 states on one lane, chunked with 4 states.
  add([](CudaCase& k, C& c) { c.seqlen = 1000; c.n_state = 16; c.dim = 128; k.lanes = 2; k.tma = Tma::required; });
  add([](CudaCase& k, C& c) {
    c.seqlen = 200; c.n_state = 8; c.dim = 64; c.dirs = ScanDirections::reverse; c.initial_state = true; k.lanes = 1;
    k.tma = Tma::required;
  });
  add([](CudaCase& k, C& c) {
    c.batch = 1; c.dim = 32; c.seqlen = 2056; c.n_state = 4; c.a_scale = 0.01f; k.lanes = 1; k.chunks = 3;
    k.tma = Tma::required;
  });
  // f32 warp pipelines (8 states x 2 lanes: 16 channels per warp, required; the staged cross2d
  // only): N 12 (B/C box rows past N), two groups, no z, a final state; L-chunked at batch 1 with
  // an initial state and slow decay; column inputs (delta, B, C of the column orders given
  // column-major).
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 16; c.width = 20; c.seqlen = 320; c.grid_rank4 = true;
    c.dim = 128; c.groups = 2; c.n_state = 12; c.has_z = false; c.final_state = true; k.lanes = 2;
    k.tma = Tma::required; k.warp = CudaCase::Warp::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 24; c.width = 32; c.seqlen = 768; c.grid_rank4 = true; c.batch = 1;
    c.dim = 64; c.n_state = 16; c.initial_state = true; c.a_scale = 0.01f; k.lanes = 2; k.chunks = 3;
    k.tma = Tma::required; k.warp = CudaCase::Warp::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 48; c.width = 40; c.seqlen = 1920; c.grid_rank4 = true;
    c.dim = 64; c.n_state = 16; c.batch = 2; c.cols_transposed = true; k.lanes = 2; k.tma = Tma::required;
    k.warp = CudaCase::Warp::required;
  });
  // The other f32 box configurations: 4 states x 2 lanes (S5's, L = 196) and 16 states on one lane.
  add([](CudaCase& k, C& c) { c.seqlen = 196; c.n_state = 8; c.dim = 128; k.lanes = 2; k.tma = Tma::required; });
  add([](CudaCase& k, C& c) {
    c.seqlen = 104; c.n_state = 16; c.dim = 64; c.dirs = ScanDirections::reverse; k.lanes = 1; k.tma = Tma::required;
  });
  add([](CudaCase& k, C& c) {
    c.seqlen = 3136; c.n_state = 1; c.groups = 4; c.dim = 256; c.dtype = DType::bf16; k.segments = 1; k.tma = Tma::off;
  });
  add([](CudaCase& k, C& c) {
    c.seqlen = 200; c.n_state = 16; c.dim = 256; c.dtype = DType::f16; c.dirs = ScanDirections::reverse;
    c.final_state = true; k.lanes = 1; k.tma = Tma::off;
  });
  // Step-row boxes (token-major 16-bit rows, 16 or 1 states on one lane; required): Vim's call
  // (u per direction, the reversed partial tile whose box starts before position 0, three
  // 128-channel blocks, a final state; one chunk, so both directions add into out by
  // reduce-add boxes, and the same with slices and the merge pass); f16 with two groups of 64 channels, no z; VMamba's
  // token-major cross2d with one state (row orders by box, column orders by cp.async into the
  // same staging), a 32-channel box over 24 channels; reversed with an initial state, a
  // 64-channel box over 40; L-chunked at batch 1 (pass 1 by box, the correction by cp.async);
  // and the cp.async rows on Vim's call.
  using StepTma = CudaCase::StepTma;
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::bidirectional; c.u_per_dir = true; c.layout = Layout::token_major; c.dim = 384;
    c.seqlen = 197; c.batch = 3; c.scale = 0.5f; c.dtype = DType::bf16; c.final_state = true; k.lanes = 1;
    k.chunks = 1; k.step = StepTma::required; k.reduce = CudaCase::Reduce::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::bidirectional; c.u_per_dir = true; c.layout = Layout::token_major; c.dim = 128;
    c.seqlen = 150; c.batch = 2; c.dtype = DType::f16; c.has_z = false; k.lanes = 1; k.chunks = 1;
    k.step = StepTma::required; k.reduce = CudaCase::Reduce::off;
  });
  // f32 (8 states x 2 lanes, boxes of 4-byte rows): Vim's call adding in place, and reversed
  // with a reversed partial tile stored per thread (one lane of two).
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::bidirectional; c.u_per_dir = true; c.layout = Layout::token_major; c.dim = 96;
    c.seqlen = 197; c.batch = 2; c.scale = 0.5f; c.final_state = true; k.lanes = 2; k.chunks = 1;
    k.step = StepTma::required; k.reduce = CudaCase::Reduce::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::reverse; c.layout = Layout::token_major; c.dim = 40; c.seqlen = 99; c.batch = 3;
    c.initial_state = true; k.lanes = 2; k.chunks = 1; k.step = StepTma::required;
  });
  add([](CudaCase& k, C& c) {
    c.layout = Layout::token_major; c.dim = 128; c.groups = 2; c.seqlen = 100; c.dtype = DType::f16; c.has_z = false;
    k.lanes = 1; k.step = StepTma::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::cross2d; c.height = 10; c.width = 13; c.seqlen = 130; c.layout = Layout::token_major;
    c.grid_rank4 = true; c.dim = 24; c.n_state = 1; c.dtype = DType::bf16; k.step = StepTma::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::reverse; c.layout = Layout::token_major; c.dim = 40; c.seqlen = 33; c.n_state = 16;
    c.dtype = DType::f16; c.initial_state = true; k.lanes = 1; k.step = StepTma::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::bidirectional; c.u_per_dir = true; c.layout = Layout::token_major; c.dim = 32;
    c.seqlen = 1000; c.batch = 1; c.n_state = 1; c.dtype = DType::bf16; c.a_scale = 0.01f; k.chunks = 3;
    k.step = StepTma::required;
  });
  add([](CudaCase& k, C& c) {
    c.dirs = ScanDirections::bidirectional; c.u_per_dir = true; c.layout = Layout::token_major; c.dim = 384;
    c.seqlen = 197; c.batch = 3; c.scale = 0.5f; c.dtype = DType::bf16; k.lanes = 1; k.step = StepTma::off;
  });
  // Options (fixed B/C take the generic kernel).
  add([](CudaCase&, C& c) { c.has_D = c.has_z = c.has_bias = c.softplus = c.final_state = false; });
  add([](CudaCase&, C& c) { c.fixed_B = true; c.dtype = DType::bf16; c.n_state = 64; });
  add([](CudaCase&, C& c) { c.fixed_C = true; c.dirs = ScanDirections::bidirectional; c.initial_state = true; });
  add([](CudaCase&, C& c) { c.fixed_B = c.fixed_C = true; c.n_state = 200; c.seqlen = 20; });
  add([](CudaCase&, C& c) { c.rank3_bc = true; c.dtype = DType::f16; c.softplus = false; });
  return v;
}

class SelectiveScanCuda : public ::testing::TestWithParam<CudaCase> {};

TEST_P(SelectiveScanCuda, MatchesCpu) {
  MCV_REQUIRE_CUDA();
  check_cuda_against_cpu(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Pairwise, SelectiveScanCuda, ::testing::ValuesIn(cuda_cases()),
                         [](const ::testing::TestParamInfo<CudaCase>& i) { return i.param.name(); });

// One small run of each kernel (pipelined and tiled, with 1/2/16 lanes, chunked + correction,
// generic, several directions) for compute-sanitizer memcheck/racecheck.
TEST(SelectiveScanCudaSanitizer, EveryKernelSmall) {
  MCV_REQUIRE_CUDA();
  std::vector<CudaCase> cases(26);
  cases[0].c.dim = 40;
  cases[0].lanes = 1;
  cases[1].c.dim = 7;
  cases[1].c.dtype = DType::bf16;
  cases[2].c.n_state = 256;
  cases[2].c.seqlen = 20;
  cases[3].c.seqlen = 300;
  cases[3].chunks = 3;
  cases[3].c.a_scale = 0.01f;
  cases[4].c.fixed_B = true;
  cases[4].c.seqlen = 20;
  cases[5].c.dirs = ScanDirections::bidirectional;
  cases[5].c.layout = Layout::token_major;
  cases[6].c.dirs = ScanDirections::cross2d;
  cases[6].c.height = 4;
  cases[6].c.width = 5;
  cases[6].c.seqlen = 20;
  cases[6].c.layout = Layout::gather;
  cases[7].c.dim = 130;  // the pipelined kernel with a partial block, reversed, bf16
  cases[7].c.dtype = DType::bf16;
  cases[7].c.dirs = ScanDirections::reverse;
  cases[7].lanes = 1;
  cases[8].c.dim = 40;  // the older tiled kernel
  cases[8].lanes = 1;
  cases[8].tiled = true;
  cases[9].c.dirs = ScanDirections::cross2d;  // channel-major: relayout copies, chunked
  cases[9].c.height = 9;
  cases[9].c.width = 8;
  cases[9].c.seqlen = 72;
  cases[9].c.dtype = DType::bf16;
  cases[9].c.batch = 1;
  cases[9].c.dim = 8;
  cases[9].chunks = 2;
  // Whole 16-byte output units (L a multiple of 8): the cooperative channel-row stores from two
  // staging buffers, reversed and chunked, and into the per-direction slices of a bidirectional scan.
  cases[10].c.dtype = DType::bf16;
  cases[10].c.dim = 40;
  cases[10].c.seqlen = 96;
  cases[10].c.dirs = ScanDirections::reverse;
  cases[10].lanes = 1;
  cases[10].chunks = 2;
  cases[11].c.dtype = DType::bf16;
  cases[11].c.dim = 24;
  cases[11].c.seqlen = 64;
  cases[11].c.dirs = ScanDirections::bidirectional;
  cases[12].c.dtype = DType::bf16;  // step segments: two threads per one-state channel
  cases[12].c.n_state = 1;
  cases[12].c.dim = 70;
  cases[12].c.seqlen = 90;
  cases[12].c.dirs = ScanDirections::reverse;
  cases[12].segments = 2;
  cases[13].c.dtype = DType::bf16;  // TMA boxes (warp pipelines), reversed and chunked, a partial last tile
  cases[13].c.dim = 64;
  cases[13].c.seqlen = 200;
  cases[13].c.dirs = ScanDirections::reverse;
  cases[13].lanes = 1;
  cases[13].chunks = 2;
  cases[13].tma = CudaCase::Tma::required;
  cases[13].warp = CudaCase::Warp::required;
  cases[14].c.dim = 64;  // TMA boxes of f32 rows, two lanes per channel, a partial last tile
  cases[14].c.seqlen = 40;
  cases[14].lanes = 2;
  cases[14].tma = CudaCase::Tma::required;
  cases[15].c.dirs = ScanDirections::cross2d;  // staged column orders as boxes, the transposing merge
  cases[15].c.height = 8;
  cases[15].c.width = 12;
  cases[15].c.seqlen = 96;
  cases[15].c.grid_rank4 = true;
  cases[15].c.dtype = DType::bf16;
  cases[15].c.dim = 32;
  cases[15].lanes = 1;
  cases[15].tma = CudaCase::Tma::required;
  cases[16] = cases[13];  // the same with one box per block
  cases[16].warp = CudaCase::Warp::block;
  cases[17] = cases[15];  // f32: 8 x 12 in whole 4-element vectors, the 16-byte plane merge
  cases[17].c.dtype = DType::f32;
  cases[17].lanes = 0;
  cases[17].tma = CudaCase::Tma::heuristic;  // the merge is the point; f32 staged rows of this shape take cp.async
  cases[18] = cases[15];  // column-major column inputs read in place as boxes
  cases[18].c.cols_transposed = true;
  cases[19] = cases[6];  // and copied back to grid order for the gathered grid
  cases[19].c.cols_transposed = true;
  cases[20].c.dirs = ScanDirections::bidirectional;  // step-row boxes: Vim's call, reversed partial tiles
  cases[20].c.u_per_dir = true;
  cases[20].c.layout = Layout::token_major;
  cases[20].c.dtype = DType::bf16;
  cases[20].c.dim = 40;
  cases[20].c.seqlen = 37;
  cases[20].lanes = 1;
  cases[20].step = CudaCase::StepTma::required;
  cases[20].reduce = CudaCase::Reduce::required;  // added into out by reduce-add boxes and atomics
  cases[21].c.dirs = ScanDirections::cross2d;  // and their column orders by cp.async, one state
  cases[21].c.height = 5;
  cases[21].c.width = 7;
  cases[21].c.seqlen = 35;
  cases[21].c.layout = Layout::token_major;
  cases[21].c.grid_rank4 = true;
  cases[21].c.n_state = 1;
  cases[21].c.dtype = DType::f16;
  cases[21].c.dim = 16;
  cases[21].step = CudaCase::StepTma::required;
  cases[22] = cases[17];  // the same with two lanes of 8 states: staged rows as f32 warp pipelines
  cases[22].lanes = 2;
  cases[22].tma = CudaCase::Tma::required;
  cases[22].warp = CudaCase::Warp::required;
  cases[23] = cases[3];  // L-chunks corrected by warps per (chunk, channel), N 16 and N 40
  cases[23].c.batch = 1;
  cases[23].c.seqlen = 1000;
  cases[23].corr = CudaCase::Corr::required;
  cases[24] = cases[23];
  cases[24].c.n_state = 40;
  cases[24].c.dtype = DType::bf16;
  cases[24].c.dirs = ScanDirections::bidirectional;
  cases[25].c.batch = 1;  // token-major L-chunks corrected by warps of 32 channels, a partial warp
  cases[25].c.dim = 40;
  cases[25].c.seqlen = 300;
  cases[25].c.dtype = DType::bf16;
  cases[25].c.layout = Layout::token_major;
  cases[25].c.dirs = ScanDirections::reverse;
  cases[25].c.a_scale = 0.01f;
  cases[25].chunks = 3;
  cases[25].corr = CudaCase::Corr::required;
  cases[3].corr = CudaCase::Corr::block;  // and by the pass kernels' blocks
  cases[10].corr = CudaCase::Corr::block;
  cases[13].corr = CudaCase::Corr::block;
  for (const CudaCase& cc : cases) {
    SCOPED_TRACE(cc.name());
    check_cuda_against_cpu(cc);
  }
}

// The z gate at the ends of its range (+-inf, NaN, +-1e30, around -88 where exp(-z) leaves the
// f32 range ...) on the TMA launches (f32: 8 states x 2 lanes; bf16: the warp pipelines), against
// the CPU path: in one pass the same -0 / inf / NaN and the same finite values; L-chunked (two
// chunks), non-finite values where the CPU's are (a +inf gate times pass 1's output plus the
// correction times it can be inf - inf: selective_scan.h) and finite ones within the tolerance
// times the gate's magnitude (16-bit: pass 1's output is rounded before the correction is added,
// so where the two nearly cancel the error is relative to g y1, not to the sum).
TEST(SelectiveScanCudaGate, ExtremeZMatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu(Device::cpu()), gpu(Device::cuda(0));
  for (DType dt : {DType::f32, DType::bf16}) {
    ScanCase c;
    c.dim = 128;
    c.seqlen = 64;
    c.dtype = dt;
    ScanInputs in = make_inputs(c);
    set_extreme_z(in, dt);
    const Stored out_cpu = make_out(c, Device::cpu());
    kernels::selective_scan(cpu, make_args(c, in, out_cpu.get(), Tensor()));
    const std::vector<double> want = logical_values(out_cpu.get());
    std::vector<double> gate;  // |silu(z)|, the two-chunk runs' tolerance scale
    for (const double z : logical_values(in.z.get())) gate.push_back(std::fabs(z / (1.0 + std::exp(-z))));
    const ScanInputs din = in.to(Device::cuda(0));
    for (const int chunks : {1, 2}) {
      SCOPED_TRACE(c.name() + " chunks " + std::to_string(chunks));
      const EnvGuard env("MCV_SCAN_CHUNKS", chunks);
      const Stored out_gpu = make_out(c, Device::cuda(0));
      kernels::selective_scan(gpu, make_args(c, din, out_gpu.get(), Tensor()));
      gpu.synchronize();
      // bf16: the output's rounding on top of the scans' differences.
      const double tol = dt == DType::f32 ? 1e-4 : 3e-2;
      if (chunks == 1)
        expect_same_values(logical_values(out_gpu.get()), want, tol);
      else
        expect_same_values(logical_values(out_gpu.get()), want, tol, NonFinite::any, gate);
    }
  }
}

/// The chunk tests' scan: batch 1, 8 channels, seqlen steps.
ScanCase chunked_case(std::int64_t seqlen, DType dt, Layout layout) {
  ScanCase c;
  c.batch = 1;
  c.dim = 8;
  c.seqlen = seqlen;
  c.dtype = dt;
  c.layout = layout;
  return c;
}

// L-chunks: a chunk's correction stops where the carried state has decayed to a sixteenth of
// the output type's rounding of the channel's largest carried state (launch.cu,
// Params::correction_exponent). Against the same chunked launch corrected to the end of every
// chunk (MCV_SCAN_CORRECTION_BITS=100), every output within a few roundings of its own value or
// of the state's scale (the final state's largest magnitude stands for it); with the correction
// stopped at half the carried state (=1) the same comparison fails, so it can. Also with A's
// states in reverse order (the slowest last): the correction runs its states in blocks while one
// of a block's states is above the line (scan_pipe.cuh, correct_tile), so the slowest state at the
// highest index must keep the last block going while the others have stopped. Both corrections:
// the pass kernels' blocks and the warps per (chunk, channel), which drop each state at its own
// stop (scan_correct.cuh).
TEST(SelectiveScanCudaChunks, CorrectionStopsUnderOutputRounding) {
  MCV_REQUIRE_CUDA();
  Context gpu(Device::cuda(0));
  for (const DType dt : {DType::f32, DType::f16, DType::bf16}) {
    for (const bool reversed : {false, true}) {
      for (const Layout layout : {Layout::channel_major, Layout::token_major}) {
        const ScanCase c = chunked_case(8192, dt, layout);
        SCOPED_TRACE(c.name() + (reversed ? " A reversed" : ""));
        ScanInputs in = make_inputs(c);
        if (reversed) {
          Tensor& a = in.A.base;  // (D, N) f32 on the host
          float* p = a.data<float>();
          const std::int64_t n = a.size(1);
          for (std::int64_t r = 0; r < a.size(0); ++r) std::reverse(p + r * n, p + (r + 1) * n);
        }
        const ScanInputs din = in.to(Device::cuda(0));
        const Stored state = make_state(c, Device::cuda(0));
        for (const char* correction : {"0", "2"}) {  // by blocks, by warps (scan_correct.cuh)
          SCOPED_TRACE(std::string("MCV_SCAN_WARP_CORRECTION=") + correction);
          const auto run = [&](const char* bits) {
            const EnvGuard chunks("MCV_SCAN_CHUNKS", 4), stop("MCV_SCAN_CORRECTION_BITS", bits),
                by("MCV_SCAN_WARP_CORRECTION", correction);
            const Stored out = make_out(c, Device::cuda(0));
            kernels::selective_scan(gpu, make_args(c, din, out.get(), state.get()));
            gpu.synchronize();
            return logical_values(out.get());
          };
          const std::vector<double> stopped = run(nullptr), halved = run("1"), full = run("100");
          double scale = 1.0;
          for (const double h : state_values(state.get())) scale = std::max(scale, std::fabs(h));
          const auto worst = [&](const std::vector<double>& got) {
            double w = 0.0;
            for (std::size_t i = 0; i < full.size(); ++i)
              w = std::max(w, std::fabs(got[i] - full[i]) / std::max(scale, std::fabs(full[i])));
            return w;
          };
          const double unit = dt == DType::f32 ? 0x1p-24 : dt == DType::f16 ? 0x1p-11 : 0x1p-8;
          EXPECT_LE(worst(stopped), 4 * unit);
          EXPECT_GT(worst(halved), 16 * unit);
        }
      }
    }
  }
}

// A NaN carried across L-chunks (delta NaN at one step of chunk 0): on the CPU every later output
// of that channel is NaN (its state stays NaN). No correction drops a non-finite carried state
// (scan_correct.cu; correction_line for the block corrections), so the same outputs of every
// later chunk are non-finite too - not pass 1's finite values from h = 0 - and every other
// channel matches: by the warp corrections (channel rows and token-major), the pipelined
// kernel's blocks and the tiled kernel's.
TEST(SelectiveScanCudaChunks, NonFiniteCarriedStateReachesLaterChunks) {
  MCV_REQUIRE_CUDA();
  Context cpu(Device::cpu()), gpu(Device::cuda(0));
  for (const auto& [dt, layout] : {std::pair{DType::f32, Layout::channel_major}, std::pair{DType::bf16, Layout::channel_major},
                                    std::pair{DType::f32, Layout::token_major}, std::pair{DType::bf16, Layout::token_major}}) {
    ScanCase c = chunked_case(4096, dt, layout);
    c.final_state = false;
    SCOPED_TRACE(c.name());
    ScanInputs in = make_inputs(c);
    Tensor& delta = in.delta.base;  // (batch, D, L) or token-major (batch, L, D) on the host
    const bool tm = layout == Layout::token_major;
    ASSERT_EQ(delta.shape(), tm ? (Shape{1, 4096, 8}) : (Shape{1, 8, 4096}));
    std::vector<float> v = delta.to(DType::f32).to_vector();
    const std::int64_t bad_channel = 3, bad_step = 100;
    v[static_cast<std::size_t>(tm ? bad_step * c.dim + bad_channel : bad_channel * c.seqlen + bad_step)] = NAN;
    delta = Tensor::from_vector(v, delta.shape()).to(dt);
    const Stored out_cpu = make_out(c, Device::cpu());
    kernels::selective_scan(cpu, make_args(c, in, out_cpu.get(), Tensor()));
    const std::vector<double> want = logical_values(out_cpu.get());
    double ref_max = 1.0;
    std::int64_t nan = 0;
    for (const double w : want) {
      if (std::isnan(w))
        ++nan;
      else
        ref_max = std::max(ref_max, std::fabs(w));
    }
    EXPECT_EQ(nan, c.seqlen - bad_step);  // channel 3 from the NaN on
    const ScanInputs din = in.to(Device::cuda(0));
    for (const char* pipe : {"1", "0"}) {
      for (const char* correction : {"2", "0"}) {  // by warps, by the pass kernel's blocks
        SCOPED_TRACE(std::string("MCV_SCAN_PIPE=") + pipe + " MCV_SCAN_WARP_CORRECTION=" + correction);
        const Stored out_gpu = make_out(c, Device::cuda(0));
        {
          const EnvGuard chunks("MCV_SCAN_CHUNKS", 4), by("MCV_SCAN_WARP_CORRECTION", correction),
              kernel("MCV_SCAN_PIPE", pipe);
          kernels::selective_scan(gpu, make_args(c, din, out_gpu.get(), Tensor()));
        }
        gpu.synchronize();
        const std::vector<double> got = logical_values(out_gpu.get());
        ASSERT_EQ(got.size(), want.size());
        int wrong = 0;
        for (std::size_t i = 0; i < got.size() && wrong < 5; ++i) {
          const bool ok = std::isnan(want[i]) ? !std::isfinite(got[i])
                                              : std::fabs(got[i] - want[i]) <= 20 * tolerance(dt) * ref_max;
          if (!ok) {
            ADD_FAILURE() << i << ": " << got[i] << " vs " << want[i];
            ++wrong;
          }
        }
      }
    }
  }
}

// The staged cross2d's 16-byte plane copies - the column orders' transposes and the merge -
// (the default where H and W are multiples of the vector) against the 4-byte tile copies
// (MCV_SCAN_TRANSPOSE_VEC=0, MCV_SCAN_MERGE_VEC=0): the same values moved and summed in the same
// order, so the same bits - bf16 on the warp pipelines with z, f16 L-chunked at batch 1 with an
// initial state, f32 (4-element vectors) with a 28 x 28 grid.
TEST(SelectiveScanCudaStagedCopies, VectorCopiesMatchTileCopies) {
  MCV_REQUIRE_CUDA();
  std::vector<ScanCase> cases(3);
  for (ScanCase& c : cases) {
    c.dirs = ScanDirections::cross2d;
    c.grid_rank4 = true;
  }
  cases[0].height = 48;
  cases[0].width = 40;
  cases[0].dim = 128;
  cases[0].dtype = DType::bf16;
  cases[1].height = 24;
  cases[1].width = 32;
  cases[1].batch = 1;
  cases[1].dim = 32;
  cases[1].dtype = DType::f16;
  cases[1].initial_state = true;
  cases[1].a_scale = 0.01f;
  cases[2].height = 28;
  cases[2].width = 28;
  cases[2].dim = 24;
  for (ScanCase& c : cases) {
    c.seqlen = c.height * c.width;
    SCOPED_TRACE(c.name());
    Context gpu(Device::cuda(0));
    const ScanInputs din = make_inputs(c).to(Device::cuda(0));
    const Stored vec = make_out(c, Device::cuda(0)), tile_merge = make_out(c, Device::cuda(0)),
                 tile_transposes = make_out(c, Device::cuda(0));
    kernels::selective_scan(gpu, make_args(c, din, vec.get(), Tensor()));
    {
      const EnvGuard env("MCV_SCAN_MERGE_VEC", "0");
      kernels::selective_scan(gpu, make_args(c, din, tile_merge.get(), Tensor()));
    }
    {
      const EnvGuard env("MCV_SCAN_TRANSPOSE_VEC", "0");
      kernels::selective_scan(gpu, make_args(c, din, tile_transposes.get(), Tensor()));
    }
    gpu.synchronize();
    const std::vector<double> want = logical_values(vec.get());
    EXPECT_EQ(compare(want, want).bad, 0) << "unwritten or non-finite outputs";
    EXPECT_EQ(logical_values(tile_merge.get()), want);
    EXPECT_EQ(logical_values(tile_transposes.get()), want);
  }
}

TEST(SelectiveScanCudaValidation, RejectsTensorsOnAnotherDevice) {
  MCV_REQUIRE_CUDA();
  Context gpu(Device::cuda(0));
  ScanCase c;
  const ScanInputs in = make_inputs(c);
  const ScanInputs din = in.to(Device::cuda(0));
  const Stored out = make_out(c, Device::cuda(0));
  SelectiveScanArgs a = make_args(c, din, out.get(), Tensor());
  a.delta = in.delta.get();  // left on the CPU
  try {
    kernels::selective_scan(gpu, a);
    ADD_FAILURE() << "no error";
  } catch (const mcv::Error& e) {
    EXPECT_NE(std::string(e.what()).find("delta: is on cpu"), std::string::npos) << e.what();
  }
  Context cpu(Device::cpu());
  try {
    kernels::selective_scan(cpu, make_args(c, din, out.get(), Tensor()));
    ADD_FAILURE() << "no error";
  } catch (const mcv::Error& e) {
    EXPECT_NE(std::string(e.what()).find("u: is on cuda:0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mcv::test::scan
