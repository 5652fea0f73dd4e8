// The machine's FMA rate for one Vec instantiation (included by cpu.cpp, cpu_avx2.cpp and
// cpu_avx512.cpp after their Vec, like cpu_body.h): every thread of the context's pool runs
// kChains independent chains of vector FMAs, enough to fill the FMA pipes (two pipes of 4-cycle
// latency need 8) without spilling; the rate assumes one core per pool thread (the pool's
// default). The CPU benchmark divides its work rate by it, so the fraction of peak is measured
// on the same cores and vector width as the scan, not taken from a datasheet.

double peak_fma_any(Context& ctx) {
  constexpr int kChains = 12;
  constexpr std::int64_t kIters = std::int64_t{1} << 21;
  const int threads = ctx.threads().size();
  std::vector<float> sink(static_cast<std::size_t>(threads) * Vec::W);
  std::vector<double> seconds(static_cast<std::size_t>(threads));
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    // One task per pool thread, each timed on its own: the sum of the tasks' rates does not
    // depend on when the pool starts them (a late start or two tasks on one thread would
    // stretch a wall-clock measurement).
    ctx.threads().parallel_for(threads, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t t = begin; t < end; ++t) {
        const auto t0 = std::chrono::steady_clock::now();
        // acc = acc * m + a converges to a / (1 - m): no overflow, no denormals.
        const Vec m = Vec::set1(0.999f), a = Vec::set1(1e-3f);
        Vec acc[kChains];
        for (int c = 0; c < kChains; ++c) acc[c] = Vec::set1(static_cast<float>(c));
        for (std::int64_t i = 0; i < kIters; ++i)
          for (int c = 0; c < kChains; ++c) acc[c] = fma(acc[c], m, a);
        Vec sum = acc[0];
        for (int c = 1; c < kChains; ++c) sum = sum + acc[c];
        sum.store(sink.data() + t * Vec::W);
        seconds[static_cast<std::size_t>(t)] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    });
    double rate = 0.0;
    for (double s : seconds) rate += static_cast<double>(kIters) * kChains * Vec::W / s;
    best = std::max(best, rate);
  }
  volatile float keep = sink[0];  // the chains' results are used
  (void)keep;
  return best;
}
