// Host side of the pipelined scan's TMA path (scan_tma.cuh): which launches qualify, and their
// tensor maps.

#include <cudaTypedefs.h>

#include <cstdlib>
#include <string>

#include "selective_scan/cuda/scan_tma.cuh"

namespace mcv::kernels::scan::cuda {

namespace {

/// The driver's cuTensorMapEncodeTiled (the runtime has no wrapper), looked up once; null when
/// the driver does not have it.
PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found) != cudaSuccess) {
      (void)cudaGetLastError();  // not left for the next launch check to find
      return PFN_cuTensorMapEncodeTiled_v12000{};
    }
    return found == cudaDriverEntryPointSuccess ? reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f) : nullptr;
  }();
  return fn;
}

/// Whether s's lines (runs of `len` contiguous elements, `stride` apart) start 16-byte aligned
/// at every (batch, direction, line).
bool aligned_lines(const SeqP& s, std::int64_t stride, std::int64_t len, const Params& p, bool with_k,
                   int elem_bytes) {
  const std::int64_t kUnit = 16 / elem_bytes;  // elements per 16 bytes
  return s.ptr && reinterpret_cast<std::uintptr_t>(s.ptr) % 16 == 0 && stride >= len && stride % kUnit == 0 &&
         s.sb >= 0 && s.sb % kUnit == 0 && (p.batch == 1 || s.sb > 0) && (!with_k || (s.sk >= 0 && s.sk % kUnit == 0));
}

/// Channel rows (L contiguous), one per (batch, direction, channel).
bool aligned_rows(const SeqP& s, const Params& p, bool with_k, int elem_bytes) {
  return s.sl == 1 && aligned_lines(s, s.sd, p.seqlen, p, with_k, elem_bytes);
}

/// Step rows (D contiguous: token-major), one per (batch, direction, position).
bool aligned_steps(const SeqP& s, const Params& p, bool with_k, int elem_bytes) {
  return s.sd == 1 && aligned_lines(s, s.sl, p.dim, p, with_k, elem_bytes);
}

/// L2 sector promotion of the boxes' reads (MCV_SCAN_TMA_L2: 0, 64, 128 or 256 bytes). 128 by
/// default: each 16-step row segment is one 32-byte sector of a 16-bit row, and promoting it to
/// 128 bytes brings the next three tiles' segments into L2 with it (H100, S4 bf16: 0.545 ms
/// against 0.650 without promotion and 0.676 with 256 bytes; S3 and S6 within 1 %).
CUtensorMapL2promotion l2_promotion() {
  const char* v = std::getenv("MCV_SCAN_TMA_L2");
  const std::string s = v ? v : "";
  if (s == "0") return CU_TENSOR_MAP_L2_PROMOTION_NONE;
  if (s == "64") return CU_TENSOR_MAP_L2_PROMOTION_L2_64B;
  if (s == "256") return CU_TENSOR_MAP_L2_PROMOTION_L2_256B;
  return CU_TENSOR_MAP_L2_PROMOTION_L2_128B;
}

}  // namespace

bool pipe_tma_layout(const Params& p, int channels, int tile_steps, int elem_bytes) {
  // channels % 32: each buffer a multiple of 1024 bytes (the swizzle's alignment).
  if (!tma_row_bytes_ok(tile_steps * elem_bytes) || channels % 32 != 0 || channels > 256) return false;
  // A block's box spans `channels` rows: past D they are not stored, but with groups a partial
  // block's would be the next group's.
  if ((p.mode == 3 && !p.cols_staged) || (p.groups > 1 && p.cpg % channels != 0) ||
      (p.n_chunks > 1 && p.chunk_len % tile_steps != 0))
    return false;
  if (p.cols_staged &&
      !(aligned_rows(p.cols.u, p, p.par_dirs, elem_bytes) && aligned_rows(p.cols.delta, p, p.par_dirs, elem_bytes)))
    return false;
  return aligned_rows(p.u, p, p.par_dirs, elem_bytes) && aligned_rows(p.delta, p, p.par_dirs, elem_bytes) &&
         (!p.pass_gates_z() || aligned_rows(p.z, p, false, elem_bytes)) &&
         aligned_rows(p.pass_target(), p, p.par_dirs, elem_bytes);
}

bool pipe_step_tma_layout(const Params& p, int channels, int tile_steps, int elem_bytes) {
  // Box rows of whole 16-byte units, at most 256 elements (the box limit); a partial block's
  // box past its group would be stored over the next group's channels.
  if ((channels * elem_bytes) % 16 != 0 || channels > 256 || p.cpg % (16 / elem_bytes) != 0 || p.cols_staged ||
      (p.groups > 1 && p.cpg % channels != 0) || (p.n_chunks > 1 && p.chunk_len % tile_steps != 0))
    return false;
  return aligned_steps(p.u, p, p.par_dirs, elem_bytes) && aligned_steps(p.delta, p, p.par_dirs, elem_bytes) &&
         (!p.pass_gates_z() || aligned_steps(p.z, p, false, elem_bytes)) &&
         aligned_steps(p.pass_target(), p, p.par_dirs, elem_bytes);
}

namespace {

/// Whether B (or C) at ptr has 16-byte aligned state rows along L: its state rows checked as the
/// rows of a stream, with the (direction, group) slots as the direction axis.
bool aligned_state_rows(const void* ptr, std::int64_t sb, std::int64_t sg, std::int64_t sn, std::int64_t sl,
                        const Params& p, int elem_bytes) {
  const bool slots = p.dirs * p.groups > 1;
  return aligned_rows(SeqP{ptr, sb, sg, sn, sl}, p, slots, elem_bytes) && (!slots || sg > 0);
}

}  // namespace

bool pipe_tma_bc_layout(const Params& p, int elem_bytes) {
  const bool in_place = aligned_state_rows(p.B, p.B_sb, p.B_sg, p.B_sn, p.B_sl, p, elem_bytes) &&
                        aligned_state_rows(p.C, p.C_sb, p.C_sg, p.C_sn, p.C_sl, p, elem_bytes);
  if (!p.cols_staged) return in_place;
  const DirInputs& c = p.cols;
  return in_place && aligned_state_rows(c.B, c.B_sb, c.B_sg, c.B_sn, c.B_sl, p, elem_bytes) &&
         aligned_state_rows(c.C, c.C_sb, c.C_sg, c.C_sn, c.C_sl, p, elem_bytes);
}

namespace {

/// Encodes 4D views (inner, rows, slots, batch) of one launch's tensors in one element type:
/// element strides row / slot / batch between them (a dimension of size 1 gets the dense
/// stride: any would do), boxes of box_inner x box_rows x 1 x 1.
struct ViewEncoder {
  PFN_cuTensorMapEncodeTiled_v12000 encode_map;
  CUtensorMapDataType type;
  cuuint64_t elem;
  CUtensorMapL2promotion l2;
  int batch;
  bool operator()(CUtensorMap& map, const void* ptr, std::int64_t inner, std::int64_t rows, std::int64_t slots,
                  std::int64_t row, std::int64_t slot, std::int64_t batch_stride, int box_inner, int box_rows,
                  CUtensorMapSwizzle swz) const {
    const cuuint64_t dims[4] = {static_cast<cuuint64_t>(inner), static_cast<cuuint64_t>(rows),
                                static_cast<cuuint64_t>(slots), static_cast<cuuint64_t>(batch)};
    const cuuint64_t rstride = static_cast<cuuint64_t>(row) * elem;
    const cuuint64_t sstride = slots > 1 ? static_cast<cuuint64_t>(slot) * elem : rstride * dims[1];
    const cuuint64_t bstride = batch > 1 ? static_cast<cuuint64_t>(batch_stride) * elem : sstride * dims[2];
    const cuuint64_t strides[3] = {rstride, sstride, bstride};
    const cuuint32_t box[4] = {static_cast<cuuint32_t>(box_inner), static_cast<cuuint32_t>(box_rows), 1, 1};
    const cuuint32_t unit[4] = {1, 1, 1, 1};
    return encode_map(&map, type, 4, const_cast<void*>(ptr), dims, strides, box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE,
                      swz, l2, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
  }
};

std::optional<ViewEncoder> view_encoder(const Params& p, TmaElem elem) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode_map = encode_tiled();
  if (!encode_map) return std::nullopt;
  const CUtensorMapDataType type = elem == TmaElem::f32    ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                                   : elem == TmaElem::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                                           : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  return ViewEncoder{encode_map, type, elem == TmaElem::f32 ? 4u : 2u, l2_promotion(), p.batch};
}

}  // namespace

std::optional<PipeMaps> make_pipe_maps(const Params& p, int box_rows, int tile_steps, TmaElem elem, int bc_states) {
  const std::optional<ViewEncoder> enc = view_encoder(p, elem);
  if (!enc) return std::nullopt;
  PipeMaps m{};
  const cuuint64_t row_bytes = enc->elem * static_cast<cuuint64_t>(tile_steps);
  const CUtensorMapSwizzle swizzle = row_bytes == 32   ? CU_TENSOR_MAP_SWIZZLE_32B
                                     : row_bytes == 64 ? CU_TENSOR_MAP_SWIZZLE_64B
                                                       : CU_TENSOR_MAP_SWIZZLE_128B;
  // (L, rows, slots, batch) views, boxes of tile_steps x box_h.
  auto encode_view = [&](CUtensorMap& map, const void* ptr, std::int64_t rows, std::int64_t slots, std::int64_t row,
                         std::int64_t slot, std::int64_t batch, int box_h, CUtensorMapSwizzle swz) {
    return (*enc)(map, ptr, p.seqlen, rows, slots, row, slot, batch, tile_steps, box_h, swz);
  };
  // Streams: (L, D, K or 1, batch), swizzled boxes of box_rows channels.
  auto encode = [&](CUtensorMap& map, int& k_used, const SeqP& s) {
    const bool with_k = p.par_dirs && s.sk != 0;
    k_used = with_k ? 1 : 0;
    return encode_view(map, s.ptr, p.dim, with_k ? p.dirs : 1, s.sd, s.sk, s.sb, box_rows, swizzle);
  };
  // B, C: (L, N, slot = k G + g, batch), boxes of bc_states rows landing unswizzled (each lane
  // of the warp reads one whole row); rows past N and positions outside [0, L) read as zero.
  auto encode_bc = [&](CUtensorMap& map, const void* ptr, std::int64_t sb, std::int64_t sg, std::int64_t sn) {
    return encode_view(map, ptr, p.n_state, p.dirs * p.groups, sn, sg, sb, bc_states, CU_TENSOR_MAP_SWIZZLE_NONE);
  };
  if (!(encode(m.u[0], m.k_u, p.u) && encode(m.delta[0], m.k_delta, p.delta) &&
        (!p.pass_gates_z() || encode(m.z, m.k_z, p.z)) && encode(m.out, m.k_out, p.pass_target())))
    return std::nullopt;
  if (bc_states > 0) {
    if (!(encode_bc(m.B[0], p.B, p.B_sb, p.B_sg, p.B_sn) && encode_bc(m.C[0], p.C, p.C_sb, p.C_sg, p.C_sn)))
      return std::nullopt;
    const DirInputs& c = p.cols;
    if (!p.cols_staged) {
      m.B[1] = m.B[0];
      m.C[1] = m.C[0];
    } else if (!(encode_bc(m.B[1], c.B, c.B_sb, c.B_sg, c.B_sn) && encode_bc(m.C[1], c.C, c.C_sb, c.C_sg, c.C_sn))) {
      return std::nullopt;
    }
  }
  // Maps [1] (Params::in[1]): the staged column orders' copies, which have the direction axes
  // of the streams they stand for (u shared, delta with its K slots), so one k flag serves both;
  // without staging, the same streams.
  if (!p.cols_staged) {
    m.u[1] = m.u[0];
    m.delta[1] = m.delta[0];
    return m;
  }
  int k_u_col = 0, k_delta_col = 0;
  if (!(encode(m.u[1], k_u_col, p.cols.u) && encode(m.delta[1], k_delta_col, p.cols.delta)) || k_u_col != m.k_u ||
      k_delta_col != m.k_delta)
    return std::nullopt;
  return m;
}

std::optional<PipeMaps> make_pipe_step_maps(const Params& p, int channels, int tile_steps, TmaElem elem) {
  const std::optional<ViewEncoder> enc = view_encoder(p, elem);
  if (!enc) return std::nullopt;
  PipeMaps m{};
  // (D, L, K or 1, batch): a box is a tile's tile_steps positions of the block's channels, rows
  // of channels elements landing dense (a warp reads 32 consecutive elements of a row).
  auto encode = [&](CUtensorMap& map, int& k_used, const SeqP& s) {
    const bool with_k = p.par_dirs && s.sk != 0;
    k_used = with_k ? 1 : 0;
    return (*enc)(map, s.ptr, p.dim, p.seqlen, with_k ? p.dirs : 1, s.sl, s.sk, s.sb, channels, tile_steps,
                  CU_TENSOR_MAP_SWIZZLE_NONE);
  };
  if (!(encode(m.u[0], m.k_u, p.u) && encode(m.delta[0], m.k_delta, p.delta) &&
        (!p.pass_gates_z() || encode(m.z, m.k_z, p.z)) && encode(m.out, m.k_out, p.pass_target())))
    return std::nullopt;
  m.u[1] = m.u[0];
  m.delta[1] = m.delta[0];
  return m;
}

}  // namespace mcv::kernels::scan::cuda
