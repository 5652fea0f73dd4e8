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

}  // namespace

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
