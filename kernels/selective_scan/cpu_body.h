// CPU selective-scan body, included once per instruction set inside an anonymous namespace, after
// the TU has defined `Vec` (W float lanes; see cpu.cpp for the interface) and the math functions
// vexp / vsoftplus / vsilu. No include guard on purpose: each TU instantiates its own copy with
// its own target options, and internal linkage keeps the copies apart.
//
// Work split: one task = (batch b, group g, block of W channels of that group). The channels of a
// block are the W lanes of every vector; all of them read the same B_t[n], C_t[n] (the group's),
// which is broadcast, so each state update is a W-wide FMA and B/C are gathered once per block.
// Directions are index maps: a step's natural position comes from dir_position(), so reversed
// and transposed orders gather in place and nothing is copied.

inline float to_f32(float v) { return v; }
inline float to_f32(Half v) { return from_half(v); }
inline float to_f32(BFloat16 v) { return from_bf16(v); }
template <typename T> T from_f32(float v);
template <> inline float from_f32<float>(float v) { return v; }
template <> inline Half from_f32<Half>(float v) { return to_half(v); }
template <> inline BFloat16 from_f32<BFloat16>(float v) { return to_bf16(v); }

constexpr std::int64_t kStepsPerTile = 64;

struct Scratch {
  std::vector<float> bt, ct, ut, dtt, yt, zt, acc;
  std::vector<std::int64_t> pos, in_pos;  // a tile's grid positions; its delta/B/C indices
  // Per-state vectors as plain floats: GCC does not honour over-aligned element types in
  // std::vector inside a target-pragma region, so Vec objects never live on the heap.
  std::vector<float> h, a, bfix, cfix;
};

/// +1 or -1 where the positions pos(j0 + i), i < W, run along a row one apart (forward or
/// reversed), else 0. Then W rows' elements there are W contiguous values each, which move as
/// one W x W block (gather_block, store_block); every position is checked, as a cross-scan's
/// column order can start and end a block W - 1 apart without being contiguous.
template <typename Pos>
int contiguous_run(Pos&& pos, std::int64_t j0) {
  constexpr int W = Vec::W;
  const std::int64_t first = pos(j0), step = pos(j0 + 1) - first;
  if (step != 1 && step != -1) return 0;
  for (int i = 2; i < W; ++i)
    if (pos(j0 + i) != first + step * i) return 0;
  return static_cast<int>(step);
}

/// tile[j ld + r] = src[r sd + first + dir j] as f32 for r, j < W: each row's W values loaded
/// and converted as one vector (Vec::load_row), then the block transposed in registers. Per
/// element, the scalar gather was a load, a conversion and a store with its address arithmetic;
/// with 16-bit rows it was about half of the CPU scan (perf, S1 bf16).
template <typename T>
void gather_block(const T* src, std::int64_t sd, std::int64_t first, int dir, float* tile, std::int64_t ld) {
  constexpr int W = Vec::W;
  Vec r[W];
  const std::int64_t lo = dir > 0 ? first : first - (W - 1);
  for (int c = 0; c < W; ++c) {
    const Vec v = Vec::load_row(src + c * sd + lo);
    r[c] = dir > 0 ? v : v.reversed();
  }
  Vec::transpose(r);
  for (int j = 0; j < W; ++j) r[j].store(tile + j * ld);
}

/// The inverse of gather_block: dst[r sd + first + dir j] = tile[j ld + r] converted to T.
template <typename T>
void store_block(const float* tile, std::int64_t ld, T* dst, std::int64_t sd, std::int64_t first, int dir) {
  constexpr int W = Vec::W;
  Vec r[W];
  for (int j = 0; j < W; ++j) r[j] = Vec::load(tile + j * ld);
  Vec::transpose(r);
  const std::int64_t lo = dir > 0 ? first : first - (W - 1);
  for (int c = 0; c < W; ++c) (dir > 0 ? r[c] : r[c].reversed()).store_row(dst + c * sd + lo);
}

/// fn(c, j) for the tile's lanes c < nc and steps j < steps - with channel rows (L contiguous)
/// each channel's steps in turn, so the accesses run along its row; otherwise (token-major)
/// each step's channels in turn -, except that where `blocks` (full lanes, rows along L) each W
/// steps with contiguous positions go to block(j0, dir), and where `lane_rows` (full lanes that
/// are contiguous at each step: token-major) every step goes to row(j), one vector.
template <typename Pos, typename Block, typename Row, typename Fn>
[[gnu::always_inline]] inline void for_tile(bool blocks, bool lane_rows, bool channel_rows, int nc, std::int64_t steps, Pos&& pos, Block&& block,
              Row&& row, Fn&& fn) {
  constexpr int W = Vec::W;
  if (lane_rows) {
    for (std::int64_t j = 0; j < steps; ++j) row(j);
    return;
  }
  std::int64_t j0 = 0;
  if (blocks)
    for (; j0 + W <= steps; j0 += W) {
      if (const int dir = contiguous_run(pos, j0)) {
        block(j0, dir);
      } else {
        for (int c = 0; c < nc; ++c)
          for (std::int64_t j = j0; j < j0 + W; ++j) fn(c, j);
      }
    }
  if (channel_rows)
    for (int c = 0; c < nc; ++c)
      for (std::int64_t j = j0; j < steps; ++j) fn(c, j);
  else
    for (std::int64_t j = j0; j < steps; ++j)
      for (int c = 0; c < nc; ++c) fn(c, j);
}

/// tile[j ld + r] = src[r sd + pos(j) sl] as f32 for rows r < rows and steps j < steps. Rows in
/// whole vectors (rows % W == 0) move W at a time: adjacent at each step (sd == 1, token-major)
/// as one vector per step, along L (sl == 1) as W x W blocks where W steps' positions are
/// contiguous (gather_block); the rest element by element, along the rows where they run
/// along L.
/// (for_tile is always inlined into these, so the lambdas' copies stay in registers: out of line,
/// every captured stride and pointer was re-read after each vector store into the tile - an
/// intrinsic store may alias anything - which made the token-major gathers ~2x slower, perf,
/// Vim-T on the CPU.)
template <typename T, typename Pos>
void gather_tile(const T* src, std::int64_t sd, std::int64_t sl, int rows, std::int64_t steps, Pos pos, float* tile,
                 std::int64_t ld) {
  constexpr int W = Vec::W;
  const bool whole = rows % W == 0;
  for_tile(whole && sl == 1, whole && sd == 1, sl == 1, rows, steps, pos,
           [=](std::int64_t j0, int dir) {
             for (int r0 = 0; r0 < rows; r0 += W)
               gather_block(src + r0 * sd, sd, pos(j0), dir, tile + j0 * ld + r0, ld);
           },
           [=](std::int64_t j) {
             for (int r0 = 0; r0 < rows; r0 += W) Vec::load_row(src + pos(j) * sl + r0).store(tile + j * ld + r0);
           },
           [=](int r, std::int64_t j) { tile[j * ld + r] = to_f32(src[r * sd + pos(j) * sl]); });
}

/// The inverse of gather_tile: dst[r sd + pos(j) sl] = tile[j ld + r] converted to T.
template <typename T, typename Pos>
void store_tile(const float* tile, std::int64_t ld, int rows, std::int64_t steps, Pos pos, T* dst, std::int64_t sd,
                std::int64_t sl) {
  constexpr int W = Vec::W;
  const bool whole = rows % W == 0;
  for_tile(whole && sl == 1, whole && sd == 1, sl == 1, rows, steps, pos,
           [=](std::int64_t j0, int dir) {
             for (int r0 = 0; r0 < rows; r0 += W)
               store_block(tile + j0 * ld + r0, ld, dst + r0 * sd, sd, pos(j0), dir);
           },
           [=](std::int64_t j) {
             for (int r0 = 0; r0 < rows; r0 += W) Vec::load(tile + j * ld + r0).store_row(dst + pos(j) * sl + r0);
           },
           [=](int r, std::int64_t j) { dst[r * sd + pos(j) * sl] = from_f32<T>(tile[j * ld + r]); });
}

template <typename T>
void scan_block(const Problem& p, std::int64_t b, std::int64_t g, std::int64_t c0, Scratch& s) {
  constexpr int W = Vec::W;
  const std::int64_t cpg = p.channels_per_group();
  const int nc = static_cast<int>(std::min<std::int64_t>(W, cpg - c0));
  const std::int64_t d0 = g * cpg + c0;
  const std::int64_t L = p.seqlen, N = p.n_state, D = p.dim;
  const int K = p.dirs;
  const T* u = static_cast<const T*>(p.u.data) + b * p.u.sb + d0 * p.u.sd;
  const T* z = p.z.data ? static_cast<const T*>(p.z.data) + b * p.z.sb + d0 * p.z.sd : nullptr;
  T* out = static_cast<T*>(p.out.data) + b * p.out.sb + d0 * p.out.sd;
  const bool var_b = p.B.variable, var_c = p.C.variable;

  s.bt.resize(kStepsPerTile * N);
  s.ct.resize(kStepsPerTile * N);
  s.ut.resize(kStepsPerTile * W);
  s.dtt.resize(kStepsPerTile * W);
  s.yt.resize(kStepsPerTile * W);
  s.zt.resize(kStepsPerTile * W);
  s.pos.resize(kStepsPerTile);
  s.in_pos.resize(kStepsPerTile);
  s.h.resize(N * W);
  s.a.resize(N * W);
  s.bfix.resize(N * W);
  s.cfix.resize(N * W);
  if (K > 1) s.acc.resize(L * W);

  alignas(64) float lane[W];
  auto gather_lanes = [&](auto&& value_of) {
    for (int c = 0; c < W; ++c) lane[c] = c < nc ? value_of(c) : 0.0f;
    return Vec::load(lane);
  };

  for (int k = 0; k < K; ++k) {
    const std::int64_t row0 = k * D + d0;  // parameter row of lane 0
    for (std::int64_t n = 0; n < N; ++n) {
      gather_lanes([&](int c) { return p.A.data[(row0 + c) * p.A.sc + n * p.A.sn]; }).store(&s.a[n * W]);
      if (!var_b)
        gather_lanes([&](int c) {
          return to_f32(static_cast<const T*>(p.B.data)[(row0 + c) * p.B.sg + n * p.B.sn]);
        }).store(&s.bfix[n * W]);
      if (!var_c)
        gather_lanes([&](int c) {
          return to_f32(static_cast<const T*>(p.C.data)[(row0 + c) * p.C.sg + n * p.C.sn]);
        }).store(&s.cfix[n * W]);
      (p.h0.data ? gather_lanes([&](int c) {
        return p.h0.data[b * p.h0.sb + k * p.h0.sk + (d0 + c) * p.h0.sd + n * p.h0.sn];
      })
                 : Vec::zero()).store(&s.h[n * W]);
    }
    // Every A <= 0 (decaying states, all models): the decays as 2^(dt A log2 e) (vexp2_decay),
    // with A log2 e in s.a; else vexp(dt A) for the general A.
    const bool decays = std::all_of(s.a.begin(), s.a.end(), [](float v) { return v <= 0.0f; });
    if (decays)
      for (float& v : s.a) v *= 1.44269504088896341f;
    const Vec dskip = p.D.data ? gather_lanes([&](int c) { return p.D.data[(row0 + c) * p.D.s]; })
                               : Vec::zero();
    const Vec bias = p.bias.data
        ? gather_lanes([&](int c) { return p.bias.data[(row0 + c) * p.bias.s]; })
        : Vec::zero();
    const T* delta = static_cast<const T*>(p.delta.data) + b * p.delta.sb + k * p.delta.sk +
                     d0 * p.delta.sd;
    const T* uk = u + k * p.u.sk;  // sk = 0 unless each direction has its own u
    const std::int64_t gk = k * p.groups + g;
    const T* bsrc = static_cast<const T*>(p.B.data) + b * p.B.sb + gk * p.B.sg;
    const T* csrc = static_cast<const T*>(p.C.data) + b * p.C.sb + gk * p.C.sg;

    for (std::int64_t t0 = 0; t0 < L; t0 += kStepsPerTile) {
      const std::int64_t steps = std::min(kStepsPerTile, L - t0);
      for (std::int64_t j = 0; j < steps; ++j) {
        s.pos[j] = dir_position(p, k, t0 + j);
        s.in_pos[j] = dir_input_position(p, k, t0 + j);
      }
      const std::int64_t* pos = s.pos.data();
      const std::int64_t* in_pos = s.in_pos.data();
      auto at = [pos](std::int64_t j) { return pos[j]; };  // step j's position, for the tile gathers and stores
      auto in_at = [in_pos](std::int64_t j) { return in_pos[j]; };  // step j's index in delta, B, C
      // Gather this tile in visiting order, converted to f32. The strides are read once: the
      // stores into the scratch vectors could alias p for all the compiler knows, and
      // re-reading them per element was a fifth of the scan's time (perf, S1 f32).
      {
        const std::int64_t bsn = p.B.sn, bsl = p.B.sl, csn = p.C.sn, csl = p.C.sl;
        const std::int64_t usd = p.u.sd, usl = p.u.sl, dsd = p.delta.sd, dsl = p.delta.sl;
        const std::int64_t zsd = p.z.sd, zsl = p.z.sl;
        const bool gate = z && K == 1;  // K > 1 gates the merged sum at the end
        float* bt = s.bt.data();
        float* ct = s.ct.data();
        float* ut = s.ut.data();
        float* dtt = s.dtt.data();
        float* zt = s.zt.data();
        const int n_rows = static_cast<int>(N);
        if (var_b) gather_tile(bsrc, bsn, bsl, n_rows, steps, in_at, bt, N);
        if (var_c) gather_tile(csrc, csn, csl, n_rows, steps, in_at, ct, N);
        for (std::int64_t j = 0; j < steps; ++j)
          for (int c = nc; c < W; ++c) ut[j * W + c] = dtt[j * W + c] = zt[j * W + c] = 0.0f;
        gather_tile(uk, usd, usl, nc, steps, at, ut, W);
        gather_tile(delta, dsd, dsl, nc, steps, in_at, dtt, W);
        if (gate) gather_tile(z, zsd, zsl, nc, steps, at, zt, W);
      }
      std::int64_t j0 = 0;
      if (p.softplus) {
        for (; j0 + 4 <= steps; j0 += 4) {  // four steps' softplus interleaved (vsoftplus_n)
          Vec dt[4];
#pragma GCC unroll 4
          for (int i = 0; i < 4; ++i) dt[i] = Vec::load(&s.dtt[(j0 + i) * W]) + bias;
          vsoftplus_n<4>(dt);
#pragma GCC unroll 4
          for (int i = 0; i < 4; ++i) dt[i].store(&s.dtt[(j0 + i) * W]);
        }
      }
      for (std::int64_t j = j0; j < steps; ++j) {
        Vec dt = Vec::load(&s.dtt[j * W]) + bias;
        if (p.softplus) dt = vsoftplus(dt);
        dt.store(&s.dtt[j * W]);
      }
      // The recurrence: h = exp(dt*A) * h + dt*u*B, y = C.h + D*u, one W-wide op per state.
      float* h = s.h.data();
      const float* a = s.a.data();
      for (std::int64_t j = 0; j < steps; ++j) {
        const Vec dt = Vec::load(&s.dtt[j * W]);
        const Vec uu = Vec::load(&s.ut[j * W]);
        const Vec dtu = dt * uu;
        const float* brow = &s.bt[j * N];
        const float* crow = &s.ct[j * N];
        // y over four partial sums (state n into sum n % 4): one chain of N dependent FMAs
        // was the step's critical path (N x the FMA latency, ~64 cycles at N = 16, where the
        // independent exps and state updates need ~15 per vector).
        // kAllVar: both B and C variable (every model), without the per-state choice.
        auto states = [&](auto all_var, auto decaying) {
          constexpr bool kAllVar = decltype(all_var)::value, kDecays = decltype(decaying)::value;
          Vec ys[4] = {Vec::zero(), Vec::zero(), Vec::zero(), Vec::zero()};
          // State n's update from its decay.
          auto apply = [&](std::int64_t n, const Vec& decay, Vec& y) {
            const Vec bn = kAllVar || var_b ? Vec::set1(brow[n]) : Vec::load(&s.bfix[n * W]);
            const Vec cn = kAllVar || var_c ? Vec::set1(crow[n]) : Vec::load(&s.cfix[n * W]);
            const Vec hn = fma(decay, Vec::load(h + n * W), bn * dtu);
            hn.store(h + n * W);
            y = fma(cn, hn, y);
          };
          auto update = [&](std::int64_t n, Vec& y) {
            const Vec x = dt * Vec::load(a + n * W);
            apply(n, kDecays ? vexp2_decay(x) : vexp(x), y);
          };
          std::int64_t n = 0;
          for (; n + 4 <= N; n += 4) {
            if constexpr (kDecays) {
              // Four states' decays interleaved (vexp2_decays), then their updates.
              Vec x[4], decay[4];
#pragma GCC unroll 4
              for (int i = 0; i < 4; ++i) x[i] = dt * Vec::load(a + (n + i) * W);
              vexp2_decays<4>(x, decay);
#pragma GCC unroll 4
              for (int i = 0; i < 4; ++i) apply(n + i, decay[i], ys[i]);
            } else {
              update(n, ys[0]);
              update(n + 1, ys[1]);
              update(n + 2, ys[2]);
              update(n + 3, ys[3]);
            }
          }
          for (; n < N; ++n) update(n, ys[n & 3]);
          return (ys[0] + ys[1]) + (ys[2] + ys[3]);
        };
        auto states_for = [&](auto all_var) {
          return decays ? states(all_var, std::true_type{}) : states(all_var, std::false_type{});
        };
        Vec y = var_b && var_c ? states_for(std::true_type{}) : states_for(std::false_type{});
        y = fma(dskip, uu, y);
        y.store(&s.yt[j * W]);
      }
      if (K == 1) {
        const Vec scale = Vec::set1(p.out_scale);
        const std::int64_t osd = p.out.sd, osl = p.out.sl;
        float* yt = s.yt.data();
        for (std::int64_t j = 0; j < steps; ++j) {
          Vec y = Vec::load(&yt[j * W]) * scale;
          if (z) y = y * vsilu(Vec::load(&s.zt[j * W]));
          y.store(&yt[j * W]);
        }
        store_tile(yt, W, nc, steps, at, out, osd, osl);
      } else {
        for (std::int64_t j = 0; j < steps; ++j) {
          float* acc = &s.acc[s.pos[j] * W];
          const Vec y = Vec::load(&s.yt[j * W]);
          (k == 0 ? y : Vec::load(acc) + y).store(acc);
        }
      }
    }
    if (p.hT.data) {
      for (std::int64_t n = 0; n < N; ++n) {
        Vec::load(&s.h[n * W]).store(lane);
        for (int c = 0; c < nc; ++c)
          p.hT.data[b * p.hT.sb + k * p.hT.sk + (d0 + c) * p.hT.sd + n * p.hT.sn] = lane[c];
      }
    }
  }
  if (K > 1) {  // cross-merge / direction sum done: gate and store at natural positions
    const Vec scale = Vec::set1(p.out_scale);
    const std::int64_t zsd = p.z.sd, zsl = p.z.sl, osd = p.out.sd, osl = p.out.sl;
    float* zt = s.zt.data();
    float* yt = s.yt.data();
    if (z) std::fill(s.zt.begin(), s.zt.end(), 0.0f);  // lanes past nc stay zero
    // A tile of positions at a time, z gathered and outputs stored along rows as in the tiles
    // above (per position across the lanes, each access was its own cache line).
    for (std::int64_t q0 = 0; q0 < L; q0 += kStepsPerTile) {
      const std::int64_t steps = std::min(kStepsPerTile, L - q0);
      auto at = [q0](std::int64_t j) { return q0 + j; };
      if (z) gather_tile(z, zsd, zsl, nc, steps, at, zt, W);
      for (std::int64_t j = 0; j < steps; ++j) {
        Vec y = Vec::load(&s.acc[(q0 + j) * W]) * scale;
        if (z) y = y * vsilu(Vec::load(&zt[j * W]));
        y.store(&yt[j * W]);
      }
      store_tile(yt, W, nc, steps, at, out, osd, osl);
    }
  }
}

template <typename T>
void run_typed(Context& ctx, const Problem& p) {
  constexpr int W = Vec::W;
  const std::int64_t blocks = (p.channels_per_group() + W - 1) / W;
  const std::int64_t tasks = p.batch * p.groups * blocks;
  ctx.threads().parallel_for(tasks, 1, [&](std::int64_t begin, std::int64_t end) {
    Scratch s;
    for (std::int64_t t = begin; t < end; ++t) {
      const std::int64_t blk = t % blocks, g = (t / blocks) % p.groups, b = t / (blocks * p.groups);
      scan_block<T>(p, b, g, blk * W, s);
    }
  });
}

void run_any(Context& ctx, const Problem& p) {
  switch (p.dtype) {
    case DType::f32: run_typed<float>(ctx, p); return;
    case DType::f16: run_typed<Half>(ctx, p); return;
    case DType::bf16: run_typed<BFloat16>(ctx, p); return;
    default: throw Error("selective_scan", "unsupported dtype on the CPU path");
  }
}
