#pragma once
// CPU backend of the selective scan (internal). Sequential in L, parallel over (batch, group,
// block of channels), vectorised across channels: all channels of a block share the group's
// B_t/C_t, so each state update is one vector FMA over W channels (8 with AVX2, 16 with AVX-512).

#include "mcv/context.h"
#include "mcv/kernels/selective_scan.h"
#include "selective_scan/scan_problem.h"

namespace mcv::kernels::scan {

enum class CpuIsa { scalar, avx2, avx512 };

/// The widest path this CPU supports (capped by MCV_CPU_ISA).
CpuIsa default_cpu_isa();
const char* cpu_isa_label(CpuIsa isa);
/// The path that runs for a requested one: it, or the widest narrower one this CPU has.
CpuIsa runnable_isa(CpuIsa isa);

/// Validated problem -> normalised form (selective_scan.cpp).
Problem make_problem(const Context& ctx, const SelectiveScanArgs& args);

void run_cpu(Context& ctx, const Problem& p, CpuIsa isa);
void run_cpu_scalar(Context& ctx, const Problem& p);
void run_cpu_avx2(Context& ctx, const Problem& p);
void run_cpu_avx512(Context& ctx, const Problem& p);

/// FMA lane-operations per second of every thread of ctx's pool on the given path (cpu_peak.h):
/// the CPU benchmark's peak rate.
double peak_fma_rate(Context& ctx, CpuIsa isa);
double peak_fma_scalar(Context& ctx);
double peak_fma_avx2(Context& ctx);
double peak_fma_avx512(Context& ctx);

/// Test hook: the public entry point with a chosen CPU path (falls back to a narrower one the
/// CPU lacks).
void selective_scan_with_isa(Context& ctx, const SelectiveScanArgs& args, CpuIsa isa);

}  // namespace mcv::kernels::scan
