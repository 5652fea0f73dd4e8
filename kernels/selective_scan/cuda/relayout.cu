// CUDA selective scan: copies between channel-major (batch, D, L) and token-major (batch, L, D)
// layouts through shared-memory tiles, so both sides are read and written coalesced. launch.cu
// uses them for channel-major cross2d scans (it says why there).

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "mcv/cuda/context.cuh"
#include "mcv/error.h"
#include "common/cuda_dtype.cuh"
#include "selective_scan/cuda/relayout.cuh"

namespace mcv::kernels::scan::cuda {
namespace {

using i64 = std::int64_t;
constexpr int kWords = 32, kRows = 8;  // a tile of 32 x 32 words per block of 32 x 8 threads

/// One tile of (32 V) x (32 V) elements (d, l) per block and grid-stride step. E is the element's
/// bits (the copy never converts); V elements travel as one word along each side's contiguous
/// axis (V = 2 for 16-bit elements when both contiguous axes allow 4-byte accesses: a warp then
/// moves 128 bytes per access instead of 64). along_l: the source is read along l (channel-major)
/// and the destination written along d (token-major); otherwise the other way round.
template <typename E, int V>
__global__ void relayout_kernel(SeqP src, SeqP dst, int batch, int slices, int dim, int seqlen, bool along_l) {
  using Word = std::conditional_t<V == 2, std::uint32_t, E>;
  constexpr int kSide = kWords * V;
  __shared__ E tile[kSide][kSide + V];  // [d - d0][l - l0]; the padding word spreads columns over banks
  const E* s = static_cast<const E*>(src.ptr);
  E* t = static_cast<E*>(const_cast<void*>(dst.ptr));
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int bk = blockIdx.z; bk < batch * slices; bk += gridDim.z) {
    const int b = bk / slices, k = bk - b * slices;
    const E* sbk = s + b * src.sb + k * src.sk;
    E* tbk = t + b * dst.sb + k * dst.sk;
    for (int d0 = blockIdx.y * kSide; d0 < dim; d0 += gridDim.y * kSide)
      for (i64 l0 = static_cast<i64>(blockIdx.x) * kSide; l0 < seqlen; l0 += static_cast<i64>(gridDim.x) * kSide) {
        // Row i of the tile along the strided axis, word tx along the contiguous one.
        for (int i = ty; i < kSide; i += kRows) {
          const int dd = along_l ? i : V * tx;
          const int ll = along_l ? V * tx : i;
          if (d0 + dd < dim && l0 + ll < seqlen) {
            // Word-aligned where V = 2 (pairable); reinterpret_cast so it is one access.
            const Word w = *reinterpret_cast<const Word*>(sbk + (d0 + dd) * src.sd + (l0 + ll) * src.sl);
            E e[V];
            memcpy(e, &w, sizeof(Word));
#pragma unroll
            for (int v = 0; v < V; ++v) (along_l ? tile[dd][ll + v] : tile[dd + v][ll]) = e[v];
          }
        }
        __syncthreads();
        for (int i = ty; i < kSide; i += kRows) {
          const int dd = along_l ? V * tx : i;
          const int ll = along_l ? i : V * tx;
          if (d0 + dd < dim && l0 + ll < seqlen) {
            E e[V];
#pragma unroll
            for (int v = 0; v < V; ++v) e[v] = along_l ? tile[dd + v][ll] : tile[dd][ll + v];
            Word w;
            memcpy(&w, e, sizeof(Word));
            *reinterpret_cast<Word*>(tbk + (d0 + dd) * dst.sd + (l0 + ll) * dst.sl) = w;
          }
        }
        __syncthreads();
      }
  }
}

template <typename E, int V>
void launch(const SeqP& src, const SeqP& dst, int batch, int slices, int dim, int seqlen, bool along_l,
            cudaStream_t stream) {
  constexpr int kSide = kWords * V;
  const dim3 block(kWords, kRows);
  const dim3 grid(static_cast<unsigned>(std::min<i64>((static_cast<i64>(seqlen) + kSide - 1) / kSide, 1 << 30)),
                  static_cast<unsigned>(std::min((dim + kSide - 1) / kSide, 65535)),
                  static_cast<unsigned>(std::min(batch * slices, 65535)));
  relayout_kernel<E, V><<<grid, block, 0, stream>>>(src, dst, batch, slices, dim, seqlen, along_l);
  cuda_check_launch("selective_scan: relayout_kernel");
}

/// Pairs of 16-bit elements as one 4-byte word on both sides: each side contiguous along its
/// axis, even extents (a pair is wholly inside or outside), even outer strides, aligned bases.
bool pairable(const SeqP& src, const SeqP& dst, int slices, int dim, int seqlen, bool along_l) {
  const auto ok = [&](const SeqP& x, bool l_fast) {
    const i64 inner = l_fast ? x.sl : x.sd, outer = l_fast ? x.sd : x.sl;
    return inner == 1 && outer % 2 == 0 && x.sb % 2 == 0 && (slices == 1 || x.sk % 2 == 0) &&
           reinterpret_cast<std::uintptr_t>(x.ptr) % 4 == 0;
  };
  return dim % 2 == 0 && seqlen % 2 == 0 && ok(src, along_l) && ok(dst, !along_l);
}

constexpr int kMaxPlaneCopies = 8;

/// transpose_planes' launch: its copies, and the first global plane index of each (batch-major
/// within a copy) with the total last.
struct PlaneCopies {
  PlaneCopy copy[kMaxPlaneCopies];
  i64 first[kMaxPlaneCopies + 1];
  int count;
};

/// Vectors per thread of transpose_planes_kernel, their loads issued together. Why: with one
/// vector per loop trip each thread waited for every load before issuing the next, and a block
/// stores nothing while it loads, so the H200 moved VMamba's 56 x 56 f32 planes at 3.18 TB/s (75 %
/// of its copy bandwidth; the merge, two loads per trip, ran at 4.31).
constexpr int kTransposeBatch = 4;

/// One plane per block and grid-stride step: the plane's rows read as kV-element vectors into
/// shared memory as [w][h] (row length H + 1: odd for the even H this takes, so the column
/// writes and the row reads spread over banks), then written back as vectors along h.
template <typename E>
__global__ void transpose_planes_kernel(PlaneCopies c, int H, int W) {
  constexpr int kV = 16 / static_cast<int>(sizeof(E));
  using Vec = ::mcv::kernels::cuda::Pack<E, kV>;
  extern __shared__ unsigned char transpose_smem[];
  E* tile = reinterpret_cast<E*>(transpose_smem);  // [w][H + 1]
  const int ld = H + 1, vecs = H * W / kV, step = static_cast<int>(blockDim.x);
  for (i64 g = blockIdx.x; g < c.first[c.count]; g += gridDim.x) {
    int j = 0;
    while (g >= c.first[j + 1]) ++j;
    const PlaneCopy& pc = c.copy[j];
    const i64 local = g - c.first[j], b = local / pc.planes, i = local - b * pc.planes;
    const E* src = static_cast<const E*>(pc.src) + b * pc.src_sb + i * pc.src_sp;
    E* dst = static_cast<E*>(pc.dst) + b * pc.dst_sb + i * pc.dst_sp;
    for (int v0 = threadIdx.x; v0 < vecs; v0 += kTransposeBatch * step) {
      Vec x[kTransposeBatch];
#pragma unroll
      for (int u = 0; u < kTransposeBatch; ++u)
        if (v0 + u * step < vecs) x[u] = *reinterpret_cast<const Vec*>(src + (v0 + u * step) * kV);
#pragma unroll
      for (int u = 0; u < kTransposeBatch; ++u) {
        const int q = (v0 + u * step) * kV, h = q / W, w = q - h * W;
        if (q < vecs * kV) {
#pragma unroll
          for (int e = 0; e < kV; ++e) tile[(w + e) * ld + h] = x[u].e[e];
        }
      }
    }
    __syncthreads();
    for (int v = threadIdx.x; v < vecs; v += blockDim.x) {
      const int q = v * kV, w = q / H, h = q - w * H;
      Vec x;
#pragma unroll
      for (int e = 0; e < kV; ++e) x.e[e] = tile[w * ld + h + e];
      *reinterpret_cast<Vec*>(dst + q) = x;
    }
    __syncthreads();  // the tile is rewritten for the next plane
  }
}

template <typename E>
void launch_transpose_planes(const PlaneCopy* copies, int count, int batch, int height, int width, cudaStream_t stream) {
  const int threads = plane_block_threads(height, width, sizeof(E), kTransposeBatch);
  const std::size_t smem = plane_tile_bytes(height, width, sizeof(E));
  for (int at = 0; at < count; at += kMaxPlaneCopies) {
    PlaneCopies c{};
    c.count = std::min(kMaxPlaneCopies, count - at);
    c.first[0] = 0;
    for (int j = 0; j < c.count; ++j) {
      c.copy[j] = copies[at + j];
      c.first[j + 1] = c.first[j] + static_cast<i64>(batch) * c.copy[j].planes;
    }
    const unsigned grid = static_cast<unsigned>(std::min<i64>(c.first[c.count], 1 << 20));
    if (grid == 0) continue;
    transpose_planes_kernel<E><<<grid, threads, smem, stream>>>(c, height, width);
    cuda_check_launch("selective_scan: transpose_planes_kernel");
  }
}

}  // namespace

bool transpose_planes_fit(const PlaneCopy& c, int height, int width, std::size_t elem_bytes) {
  return (elem_bytes == 2 || elem_bytes == 4) && plane_vectors_fit(height, width, elem_bytes, elem_bytes) &&
         vectors_aligned(c.src, elem_bytes, {c.src_sb, c.src_sp}) && vectors_aligned(c.dst, elem_bytes, {c.dst_sb, c.dst_sp});
}

void transpose_planes(const PlaneCopy* copies, int count, int batch, int height, int width, std::size_t elem_bytes,
                      cudaStream_t stream) {
  if (elem_bytes == 2)
    launch_transpose_planes<std::uint16_t>(copies, count, batch, height, width, stream);
  else if (elem_bytes == 4)
    launch_transpose_planes<std::uint32_t>(copies, count, batch, height, width, stream);
  else
    throw Error("selective_scan", "transpose of " + std::to_string(elem_bytes) + "-byte elements");
}

void relayout(const SeqP& src, const SeqP& dst, int batch, int slices, int dim, int seqlen, std::size_t elem_bytes,
              cudaStream_t stream) {
  const bool along_l = src.sl == 1 || (src.sd != 1 && dst.sd == 1);
  switch (elem_bytes) {
    case 2:
      if (pairable(src, dst, slices, dim, seqlen, along_l))
        return launch<std::uint16_t, 2>(src, dst, batch, slices, dim, seqlen, along_l, stream);
      return launch<std::uint16_t, 1>(src, dst, batch, slices, dim, seqlen, along_l, stream);
    case 4: return launch<std::uint32_t, 1>(src, dst, batch, slices, dim, seqlen, along_l, stream);
    default: throw Error("selective_scan", "relayout of " + std::to_string(elem_bytes) + "-byte elements");
  }
}

}  // namespace mcv::kernels::scan::cuda
