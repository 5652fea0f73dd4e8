// CUDA conv2d on NHWC.
//
// Depthwise convs (groups == Cin == Cout: VMamba's 3x3 in SS2D, the 7x7 of ConvNeXt-style
// blocks) run a direct kernel: one thread per output element, consecutive threads on consecutive
// channels, so every input load is coalesced and the kh*kw reuse is served by L1. The same kernel
// handles any grouped configuration (slowly) and backs up cuDNN when it declines one.
// Everything else goes to cuDNN's legacy convolution API with NHWC descriptors and OHWI filters,
// FMA math for f32 (no TF32) unless the caller opts in, followed by the shared epilogue kernel
// for bias / activation / residual. Algorithm choices are cached per configuration.

#include <array>
#include <map>
#include <mutex>
#include <type_traits>

#include "nn/cuda/common.cuh"

namespace mcv::kernels::nn_detail {

namespace {

// cuDNN's workspace for one conv: up to 32 MB, or up to twice the bytes of the conv's own input and
// output where that is more (so it never dominates the activations a model already holds). Why
// not a fixed cap: cuDNN's first choice for f32 FMA math in NHWC is the precomputed-index
// implicit GEMM, whose workspace grows with the batch (~2 MB per 224-px image at MambaVision-T's
// stages: 129-334 MB at batch 128). Under a fixed 32 MB cap every such conv fell back to the
// generic implicit GEMM, 2-3x slower (H100, batch 128, ms: 80 -> 80 channels at 56 x 56 1.99
// against 4.19, 160 -> 160 at 28 x 28 1.57 against 4.73), 63 % of MambaVision-T's f32 time.
constexpr std::size_t kCudnnMinWorkspaceCap = 32u << 20;

std::size_t cudnn_workspace_cap(const ConvParams& p) {
  const auto tensor_bytes = [&](std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c) {
    return static_cast<std::size_t>(n * h * w * c) * dtype_size(p.dtype);
  };
  const std::size_t own = tensor_bytes(p.n, p.h, p.w, p.cin) + tensor_bytes(p.n, p.oh, p.ow, p.cout);
  return std::max(kCudnnMinWorkspaceCap, 2 * own);
}

template <typename T>
__global__ void conv2d_direct_kernel(ConvParams p) {
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.weight);
  T* out = static_cast<T*>(p.out);
  const std::int64_t total = p.n * p.oh * p.ow * p.cout;
  const std::int64_t cin_g = p.cin / p.groups, cout_g = p.cout / p.groups;
  for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t co = idx % p.cout;
    std::int64_t q = idx / p.cout;
    const std::int64_t ox = q % p.ow;
    q /= p.ow;
    const std::int64_t oy = q % p.oh, n = q / p.oh;
    const std::int64_t ci0 = (co / cout_g) * cin_g;
    float acc = 0.0f;
    for (int i = 0; i < p.kh; ++i) {
      const std::int64_t iy = oy * p.sh - p.ph + static_cast<std::int64_t>(i) * p.dh;
      if (iy < 0 || iy >= p.h) continue;
      for (int j = 0; j < p.kw; ++j) {
        const std::int64_t ix = ox * p.sw - p.pw + static_cast<std::int64_t>(j) * p.dw;
        if (ix < 0 || ix >= p.w) continue;
        const T* xp = x + ((n * p.h + iy) * p.w + ix) * p.cin + ci0;
        const T* wp = w + ((co * p.kh + i) * p.kw + j) * cin_g;
        for (std::int64_t ci = 0; ci < cin_g; ++ci) acc += cu::to_float(xp[ci]) * cu::to_float(wp[ci]);
      }
    }
    if (p.bias.data) acc += cu::load_param<T>(p.bias.data, p.bias.f32, co);
    acc = cu::activate(p.act, acc);
    if (p.residual) acc += cu::load_param<T>(p.residual, p.residual_f32, idx);
    out[idx] = cu::from_float<T>(acc);
  }
}

// Depthwise NHWC fast path for stride 1, dilation 1, square kernels of width kKw: a thread owns
// kVec consecutive channels (one 16-byte load per pixel) of kOut consecutive outputs of one row.
// Per kernel row it loads the kOut + kKw - 1 input vectors once and reuses each up to kKw times
// from registers; index arithmetic is one division per thread. The one-thread-per-element kernel
// above measured ~10x the bytes floor on VMamba's 3x3 (H100): 64-bit index math and 2-byte loads
// dominated.
// The depthwise weights (C, kh, kw) are re-laid out as f32 (kh, kw, C) in scratch with the bias
// (or zeros) as one more row, so each tap of a thread's kVec channels is a vector load with no
// conversion (C x (kh kw + 1) floats: a few KB).
template <typename T>
__global__ void depthwise_weights_hwc_kernel(const T* w, Vec bias, float* out, int c, int taps) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < c * taps) out[(i % taps) * c + i / taps] = cu::to_float(w[i]);
  if (i < c) out[taps * c + i] = bias.data ? cu::load_param<T>(bias.data, bias.f32, i) : 0.0f;
}

// kAct: the activation when the launch knows it (VMamba's SiLU, none), or kActAny for the run-time
// choice. H100, VMamba-T's stage-1 call (bf16, 128 x 56 x 56 x 192): the run-time switch per
// element, the per-channel bias loads and 64-bit offsets made it 59 instructions per output at 0.44
// issued per cycle (ncu), 3.3x its bytes floor, 333 us; with them gone (and f32 taps) 38 and 202 us.
constexpr int kActAny = -1;

template <typename T, int kKw, int kVec, int kOut, int kAct>
__global__ void __launch_bounds__(128, kKw == 3 ? 6 : 4)
    depthwise_nhwc_kernel(ConvParams p, const float* wt, int cvecs, int strips) {
  const std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= p.n * p.oh * static_cast<std::int64_t>(strips) * cvecs) return;
  const int cv = static_cast<int>(idx % cvecs);
  std::int64_t rest = idx / cvecs;
  const int ox0 = static_cast<int>(rest % strips) * kOut;
  rest /= strips;
  const int oy = static_cast<int>(rest % p.oh);
  const std::int64_t n = rest / p.oh;
  const int c0 = cv * kVec;
  const int H = static_cast<int>(p.h), W = static_cast<int>(p.w), C = static_cast<int>(p.cin);
  // Offsets within one image fit 32 bits (depthwise_vectorisable); the image's base does not.
  const T* x = static_cast<const T*>(p.x) + n * p.h * p.w * p.cin + c0;
  const int ix0 = ox0 - p.pw;
  // Strips whose kernel window stays inside the row skip the per-pixel column checks.
  const bool inner = ix0 >= 0 && ix0 + kOut + kKw - 1 <= W;

  float acc[kOut][kVec];
  {
    float bias[kVec];
    cu::load_vec<kVec>(wt + kKw * kKw * C + c0, bias);
#pragma unroll
    for (int r = 0; r < kOut; ++r)
#pragma unroll
      for (int c = 0; c < kVec; ++c) acc[r][c] = bias[c];
  }
  // The row loop unrolls, so every row's loads issue together instead of one memory latency per
  // kernel row.
#pragma unroll
  for (int i = 0; i < kKw; ++i) {
    const int iy = oy - p.ph + i;
    if (iy < 0 || iy >= H) continue;
    float w[kKw][kVec];
#pragma unroll
    for (int j = 0; j < kKw; ++j) cu::load_vec<kVec>(wt + (i * kKw + j) * C + c0, w[j]);
    const T* row = x + (iy * W + ix0) * C;
#pragma unroll
    for (int q = 0; q < kOut + kKw - 1; ++q) {
      if (!inner && (ix0 + q < 0 || ix0 + q >= W)) continue;
      float v[kVec];
      cu::load_vec<kVec>(row + q * C, v);
#pragma unroll
      for (int r = 0; r < kOut; ++r) {
        const int j = q - r;
        if (j < 0 || j >= kKw) continue;
#pragma unroll
        for (int c = 0; c < kVec; ++c) acc[r][c] = fmaf(w[j][c], v[c], acc[r][c]);
      }
    }
  }
  const int ow = static_cast<int>(p.ow);
  const Activation act = kAct == kActAny ? p.act : static_cast<Activation>(kAct);
  const std::int64_t out_row = ((n * p.oh + oy) * p.ow) * p.cout + c0;  // out and residual
  T* out = static_cast<T*>(p.out) + out_row;
#pragma unroll
  for (int r = 0; r < kOut; ++r) {
    if (ox0 + r >= ow) break;
    const int at = (ox0 + r) * C;
    float y[kVec];
#pragma unroll
    for (int c = 0; c < kVec; ++c) y[c] = cu::activate(act, acc[r][c]);
    if (p.residual) {
      float res[kVec];
      cu::load_vec<T, kVec>(p.residual, p.residual_f32, out_row + at, res);
#pragma unroll
      for (int c = 0; c < kVec; ++c) y[c] += res[c];
    }
    cu::store_vec<kVec>(out + at, y);
  }
}

// The fast path's preconditions: stride and dilation 1, a kernel width it is built for, channels
// a multiple of the vector, aligned tensors, and sizes that fit its 32-bit pixel arithmetic.
template <typename T, int kVec>
bool depthwise_vectorisable(const ConvParams& p) {
  return p.depthwise() && !p.force_direct && p.sh == 1 && p.sw == 1 && p.dh == 1 && p.dw == 1 &&
         (p.kw == 3 || p.kw == 5 || p.kw == 7) && p.kh == p.kw && p.cin % kVec == 0 && cu::vec_aligned<T, kVec>(p.x) &&
         cu::vec_aligned<T, kVec>(p.out) &&
         (!p.residual || (p.residual_f32 ? cu::vec_aligned<float, kVec>(p.residual) : cu::vec_aligned<T, kVec>(p.residual))) &&
         p.h * p.w * p.cin < (std::int64_t{1} << 31) && p.ow < (1 << 30) &&
         p.cin * (p.kh * p.kw + 1) < (std::int64_t{1} << 31);  // the f32 taps and the bias row
}

template <typename T>
bool run_depthwise_vectorised(Context& ctx, const ConvParams& p) {
  constexpr int kVec = 16 / sizeof(T);
  constexpr int kOut = 4;
  if (!depthwise_vectorisable<T, kVec>(p)) return false;
  const int cvecs = static_cast<int>(p.cin / kVec);
  const int strips = static_cast<int>((p.ow + kOut - 1) / kOut);
  constexpr int kThreads = 128;
  const std::int64_t threads = p.n * p.oh * strips * cvecs;
  const unsigned blocks = static_cast<unsigned>((threads + kThreads - 1) / kThreads);
  const cudaStream_t stream = ctx.cuda().stream;
  const int taps = p.kh * p.kw, c = static_cast<int>(p.cin);
  float* wt = static_cast<float*>(ctx.workspace().allocate(static_cast<std::size_t>(taps + 1) * c * sizeof(float)));
  MCV_CHECK((cu::vec_aligned<float, 4>(wt)), "conv2d: workspace allocation is not 16-byte aligned");
  depthwise_weights_hwc_kernel<T><<<(taps * c + 255) / 256, 256, 0, stream>>>(static_cast<const T*>(p.weight), p.bias,
                                                                               wt, c, taps);
  cuda_check_launch("depthwise_weights_hwc_kernel");
  auto launch = [&](auto act) {
    constexpr int kAct = decltype(act)::value;
    switch (p.kw) {
      case 3: depthwise_nhwc_kernel<T, 3, kVec, kOut, kAct><<<blocks, kThreads, 0, stream>>>(p, wt, cvecs, strips); break;
      case 5: depthwise_nhwc_kernel<T, 5, kVec, kOut, kAct><<<blocks, kThreads, 0, stream>>>(p, wt, cvecs, strips); break;
      default: depthwise_nhwc_kernel<T, 7, kVec, kOut, kAct><<<blocks, kThreads, 0, stream>>>(p, wt, cvecs, strips); break;
    }
  };
  if (p.act == Activation::silu)
    launch(std::integral_constant<int, static_cast<int>(Activation::silu)>{});
  else if (p.act == Activation::none)
    launch(std::integral_constant<int, static_cast<int>(Activation::none)>{});
  else
    launch(std::integral_constant<int, kActAny>{});
  cuda_check_launch("depthwise_nhwc_kernel");
  return true;
}

void run_direct(Context& ctx, const ConvParams& p) {
  cu::dispatch(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (run_depthwise_vectorised<T>(ctx, p)) return;
    constexpr int kThreads = 256;
    conv2d_direct_kernel<T><<<cu::grid_for(p.n * p.oh * p.ow * p.cout, kThreads), kThreads, 0, ctx.cuda().stream>>>(p);
    cuda_check_launch("conv2d_direct_kernel");
  });
}

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f16: return CUDNN_DATA_HALF;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    default: throw Error("conv2d", std::string("no cuDNN type for ") + dtype_name(t));
  }
}

struct CudnnDescs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ~CudnnDescs() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
};

struct CudnnChoice {
  bool ok = false;
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  std::size_t workspace = 0;
};

using ConvKey = std::array<std::int64_t, 20>;
std::mutex conv_mutex;
std::map<ConvKey, CudnnChoice>& conv_cache() {
  static auto* cache = new std::map<ConvKey, CudnnChoice>();  // never destroyed (static teardown order)
  return *cache;
}

// cuDNN 9 groups statuses by thousands: 2xxx bad parameter (e.g. a layout or alignment one
// algorithm cannot take), 3xxx not supported. Either way the direct kernel computes the conv.
bool declined(cudnnStatus_t st) {
  const int family = static_cast<int>(st) / 1000;
  return family == static_cast<int>(CUDNN_STATUS_NOT_SUPPORTED) / 1000 ||
         family == static_cast<int>(CUDNN_STATUS_BAD_PARAM) / 1000;
}

// Queues the convolution (no bias, no activation) into dst; false when cuDNN declines it.
bool run_cudnn(Context& ctx, const ConvParams& p, void* dst) {
  cudnnHandle_t h = ctx.cuda().cudnn();
  const cudnnDataType_t dt = cudnn_type(p.dtype);
  const bool strict_f32 = p.dtype == DType::f32 && !p.allow_tf32;
  const int n = cu::to_int(p.n, "N"), cin = cu::to_int(p.cin, "Cin"), cout = cu::to_int(p.cout, "Cout");
  CudnnDescs d;
  cudnn_check(cudnnCreateTensorDescriptor(&d.x), "cudnnCreateTensorDescriptor");
  cudnn_check(cudnnCreateTensorDescriptor(&d.y), "cudnnCreateTensorDescriptor");
  cudnn_check(cudnnCreateFilterDescriptor(&d.w), "cudnnCreateFilterDescriptor");
  cudnn_check(cudnnCreateConvolutionDescriptor(&d.conv), "cudnnCreateConvolutionDescriptor");
  cudnn_check(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NHWC, dt, n, cin, cu::to_int(p.h, "H"), cu::to_int(p.w, "W")),
              "x descriptor");
  cudnn_check(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NHWC, dt, n, cout, cu::to_int(p.oh, "OH"),
                                         cu::to_int(p.ow, "OW")),
              "out descriptor");
  cudnn_check(cudnnSetFilter4dDescriptor(d.w, dt, CUDNN_TENSOR_NHWC, cout, cin / p.groups, p.kh, p.kw),
              "weight descriptor");
  cudnn_check(cudnnSetConvolution2dDescriptor(d.conv, p.ph, p.pw, p.sh, p.sw, p.dh, p.dw, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT),
              "convolution descriptor");
  cudnn_check(cudnnSetConvolutionGroupCount(d.conv, p.groups), "cudnnSetConvolutionGroupCount");
  const cudnnMathType_t requested =
      strict_f32 ? CUDNN_FMA_MATH : (p.dtype == DType::f32 ? CUDNN_DEFAULT_MATH : CUDNN_TENSOR_OP_MATH);
  cudnn_check(cudnnSetConvolutionMathType(d.conv, requested), "cudnnSetConvolutionMathType");
  int on = 0, oc = 0, ohh = 0, oww = 0;
  cudnn_check(cudnnGetConvolution2dForwardOutputDim(d.conv, d.x, d.w, &on, &oc, &ohh, &oww), "output dims");
  if (on != p.n || oc != p.cout || ohh != p.oh || oww != p.ow)
    throw Error("conv2d", "cuDNN computes a different output shape; this is a bug in the conv2d entry point");

  const ConvKey key{ctx.cuda().device, p.n, p.h, p.w, p.cin, p.cout, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw,
                    p.groups, static_cast<std::int64_t>(p.dtype), p.allow_tf32 ? 1 : 0, 0, 0, 0};
  CudnnChoice choice;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(conv_mutex);
    auto it = conv_cache().find(key);
    if (it != conv_cache().end()) {
      choice = it->second;
      cached = true;
    }
  }
  if (!cached) {
    const std::size_t workspace_cap = cudnn_workspace_cap(p);
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int found = 0;
    const cudnnStatus_t st =
        cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf);
    if (st == CUDNN_STATUS_SUCCESS) {
      for (int i = 0; i < found; ++i) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > workspace_cap) continue;
        if (strict_f32 && perf[i].mathType != CUDNN_FMA_MATH && perf[i].mathType != CUDNN_DEFAULT_MATH) continue;
        // f32 must match the oracles: FFT and Winograd transforms cost accuracy (1e-5 .. 1e-4
        // relative), so strict f32 keeps to the GEMM-based algorithms.
        if (strict_f32 && (perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT ||
                           perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
                           perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD ||
                           perf[i].algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED))
          continue;
        choice.ok = true;
        choice.algo = perf[i].algo;
        choice.math = strict_f32 ? CUDNN_FMA_MATH : perf[i].mathType;
        choice.workspace = perf[i].memory;
        break;
      }
    } else if (!declined(st)) {
      cudnn_check(st, "cudnnGetConvolutionForwardAlgorithm_v7");
    }
    if (choice.ok) {
      // The heuristic's size can differ from the one for the math type we finally set.
      cudnn_check(cudnnSetConvolutionMathType(d.conv, choice.math), "cudnnSetConvolutionMathType");
      std::size_t ws = 0;
      const cudnnStatus_t wst = cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, choice.algo, &ws);
      if (wst == CUDNN_STATUS_SUCCESS && ws <= workspace_cap)
        choice.workspace = ws;
      else
        choice.ok = false;
    }
    std::lock_guard<std::mutex> lock(conv_mutex);
    conv_cache()[key] = choice;
  }
  if (!choice.ok) return false;
  cudnn_check(cudnnSetConvolutionMathType(d.conv, choice.math), "cudnnSetConvolutionMathType");
  // The workspace goes back to the arena once the conv is queued (the context's one stream runs
  // in order), so a model's convs share one workspace instead of adding theirs up.
  const Arena::Mark before = ctx.workspace().mark();
  void* ws = choice.workspace ? ctx.workspace().allocate(choice.workspace) : nullptr;
  const float alpha = 1.0f, beta = 0.0f;
  const cudnnStatus_t st = cudnnConvolutionForward(h, &alpha, d.x, p.x, d.w, p.weight, d.conv, choice.algo, ws,
                                                   choice.workspace, &beta, d.y, dst);
  ctx.workspace().rewind(before);
  if (declined(st)) return false;  // not cached: it may depend on this call's pointers
  cudnn_check(st, "cudnnConvolutionForward");
  return true;
}

}  // namespace

void cuda_conv2d(Context& ctx, const ConvParams& p) {
  CudaDeviceGuard guard(ctx.cuda().device);
  if (p.depthwise() || p.force_direct) {
    run_direct(ctx, p);
    return;
  }
  // cuDNN writes the bare convolution; when the residual lives in out it goes to scratch first.
  void* dst = p.out;
  if (p.residual_is_out)
    dst = ctx.workspace().allocate(static_cast<std::size_t>(p.n * p.oh * p.ow * p.cout) * dtype_size(p.dtype));
  if (!run_cudnn(ctx, p, dst)) {
    run_direct(ctx, p);
    return;
  }
  const std::int64_t pixels = p.n * p.oh * p.ow;
  if (p.bias.data || p.act != Activation::none || p.residual || dst != p.out)
    cu::launch_epilogue(ctx.cuda().stream, p.dtype, pixels, p.cout, dst, p.cout, p.bias, p.act, p.residual,
                        p.residual_f32, p.cout, p.out, p.cout);
}

}  // namespace mcv::kernels::nn_detail
