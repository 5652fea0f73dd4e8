#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <atomic>
#include <cstdio>

#include "mcv/context.h"
#include "mcv/error.h"
#include "mcv/progress.h"
#include "mcv/thread_pool.h"
#include "mcv/tensor.h"
#include "test_support.h"

namespace mcv::test_tensor {
namespace {

TEST(DType, HalfRoundTripsEveryFiniteValue) {
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    const Half h{static_cast<std::uint16_t>(bits)};
    const float f = from_half(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(from_half(to_half(f))));
      continue;
    }
    EXPECT_EQ(to_half(f).bits, h.bits) << "bits " << bits;
  }
}

TEST(DType, HalfRoundsToNearestEven) {
  // 1 + 2^-11 is exactly halfway between 1 and the next half (1 + 2^-10): ties go to even (1).
  EXPECT_EQ(to_half(1.0f + std::ldexp(1.0f, -11)).bits, 0x3c00);
  // 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even).
  EXPECT_EQ(to_half(1.0f + 3 * std::ldexp(1.0f, -11)).bits, 0x3c02);
  EXPECT_EQ(to_half(65504.0f).bits, 0x7bff);
  EXPECT_EQ(to_half(65520.0f).bits, 0x7c00);  // rounds to +Inf
  EXPECT_EQ(to_half(65519.0f).bits, 0x7bff);
  EXPECT_EQ(to_half(std::ldexp(1.0f, -24)).bits, 0x0001);  // smallest subnormal
  EXPECT_EQ(to_half(std::ldexp(1.0f, -25)).bits, 0x0000);  // tie to even: zero
  EXPECT_EQ(to_half(std::ldexp(1.5f, -25)).bits, 0x0001);
  EXPECT_EQ(to_half(-0.0f).bits, 0x8000);
}

TEST(DType, BFloat16RoundsToNearestEvenAndKeepsNaN) {
  EXPECT_EQ(to_bf16(1.0f).bits, 0x3f80);
  EXPECT_EQ(to_bf16(f32_from_bits(0x3f808000u)).bits, 0x3f80);  // tie, even stays
  EXPECT_EQ(to_bf16(f32_from_bits(0x3f818000u)).bits, 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(to_bf16(f32_from_bits(0x3f808001u)).bits, 0x3f81);
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(f32_from_bits(0x7f800001u)))));  // signalling NaN stays NaN
  EXPECT_TRUE(std::isinf(from_bf16(to_bf16(std::numeric_limits<float>::infinity()))));
}

TEST(DType, ParseNamesAndRejectsUnknown) {
  EXPECT_EQ(parse_dtype("bfloat16"), DType::bf16);
  EXPECT_EQ(parse_dtype("f16"), DType::f16);
  EXPECT_THROW(parse_dtype("f8"), Error);
}

TEST(Tensor, ViewsShareStorageAndCopiesAreExplicit) {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor tt = t.transpose(0, 1);
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.item(1), 3.0);  // [0][1] of the transpose = [1][0] of the original
  Tensor c = tt.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.to_vector(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  t.data<float>()[0] = 42;
  EXPECT_EQ(tt.item(0), 42.0);  // view sees the change
  EXPECT_EQ(c.item(0), 0.0);    // copy does not
  Tensor row = t.select(0, 1);
  EXPECT_EQ(row.to_vector(), (std::vector<float>{3, 4, 5}));
  Tensor col = t.slice(1, 1, 3);
  EXPECT_EQ(col.contiguous().to_vector(), (std::vector<float>{1, 2, 4, 5}));
  EXPECT_EQ(t.view({3, -1}).shape(), (Shape{3, 2}));
  EXPECT_THROW(tt.view({6}), Error);
  EXPECT_THROW(t.view({4, -1}), Error);
  EXPECT_THROW(t.slice(1, 2, 4), Error);
  EXPECT_EQ(t.unsqueeze(0).shape(), (Shape{1, 2, 3}));
}

TEST(Tensor, DTypeConversionsRoundTrip) {
  Tensor t = test::random_tensor({5, 7}, DType::f32, 1);
  Tensor b = t.to(DType::bf16);
  Tensor h = t.to(DType::f16);
  const test::Diff db = test::compare(b, t), dh = test::compare(h, t);
  EXPECT_LT(db.rel_l2, 4e-3);
  EXPECT_LT(dh.rel_l2, 5e-4);
  Tensor i = Tensor::from_vector({1.0f, -2.0f, 300.0f}, {3}).to(DType::i64);
  EXPECT_EQ(i.data<std::int64_t>()[2], 300);
  Tensor f = Tensor::zeros({3, 2}, DType::f16);
  f.fill(1.5);
  EXPECT_EQ(f.to(DType::f32).to_vector(), (std::vector<float>(6, 1.5f)));
}

TEST(Tensor, ShapeOverflowIsAnError) {
  EXPECT_THROW(shape_numel({1LL << 40, 1LL << 40}), Error);
  EXPECT_THROW(shape_numel({-1}), Error);
}

TEST(Tensor, CpuAllocationsAre64ByteAligned) {
  for (int n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty({n}, DType::u8);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.raw_data()) % 64, 0u);
  }
}

TEST(Tensor, CudaRoundTripAndStridedCopy) {
  MCV_REQUIRE_CUDA();
  Tensor t = test::random_tensor({3, 4, 5}, DType::f32, 7);
  Tensor g = t.to(Device::cuda());
  EXPECT_TRUE(g.device().is_cuda());
  Tensor back = g.permute({2, 0, 1}).contiguous().to(DType::bf16).to(Device::cpu());
  const test::Diff d = test::compare(back, t.permute({2, 0, 1}));
  EXPECT_LT(d.rel_l2, 4e-3);
}

TEST(Device, ParseAndDescribe) {
  EXPECT_EQ(parse_device("cuda:1"), Device::cuda(1));
  EXPECT_EQ(parse_device("cpu").str(), "cpu");
  EXPECT_THROW(parse_device("tpu"), Error);
  EXPECT_THROW(parse_device("cuda:x"), Error);
}

TEST(Device, NoCudaIsAClearErrorNotACrash) {
  if (test::have_cuda()) GTEST_SKIP() << "a GPU is present";
  EXPECT_THROW(Tensor::empty({4}, DType::f32, Device::cuda()), Error);
}

}  // namespace
}  // namespace mcv::test_tensor

namespace mcv::test_tensor {
namespace {

TEST(Arena, ScopeAllocatesFromArenaAndResetGrows) {
  Context ctx(Device::cpu());
  Arena& arena = ctx.workspace();
  arena.reserve(1024);
  {
    ContextScope scope(ctx, /*use_arena=*/true);
    Tensor a = Tensor::empty({64}, DType::f32);  // 256 bytes from the arena
    Tensor b = Tensor::empty({1000}, DType::f32);  // overflows: separate block until reset
    EXPECT_NE(a.raw_data(), b.raw_data());
    a.fill(1);
    b.fill(2);
    EXPECT_EQ(a.item(63), 1.0);
    EXPECT_EQ(b.item(999), 2.0);
  }
  EXPECT_GE(arena.high_water(), 256u + 4000u);
  arena.reset();
  EXPECT_GE(arena.capacity(), 4256u);  // grown to the high-water mark: the next pass fits in one block
  Tensor outside = Tensor::empty({4}, DType::f32);  // no scope: the ordinary allocator
  EXPECT_NE(outside.storage()->data(), nullptr);
}

TEST(Arena, RewindHandsBackScratchTakenSinceTheMark) {
  Context ctx(Device::cpu());
  Arena& arena = ctx.workspace();
  arena.reserve(4096);
  void* kept = arena.allocate(100);
  const Arena::Mark mark = arena.mark();
  void* scratch = arena.allocate(1000);
  EXPECT_NE(scratch, kept);
  arena.rewind(mark);
  EXPECT_EQ(arena.allocate(1000), scratch);  // the same space again
  EXPECT_EQ(arena.high_water(), 256u + 1024u);
  // Overflow blocks taken and handed back repeatedly: the high water counts one of them.
  for (int i = 0; i < 3; ++i) {
    const Arena::Mark m = arena.mark();
    EXPECT_NE(arena.allocate(8192), nullptr);
    arena.rewind(m);
  }
  EXPECT_EQ(arena.high_water(), 256u + 1024u + 8192u);
  arena.reset();
  EXPECT_GE(arena.capacity(), 256u + 1024u + 8192u);
  EXPECT_LT(arena.capacity(), 256u + 1024u + 2 * 8192u);
}

TEST(ThreadPool, CoversRangeOnceAndPropagatesErrors) {
  ThreadPool pool(3);
  std::vector<int> hits(1000, 0);
  pool.parallel_for(1000, 7, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) ++hits[i];
  });
  for (int h : hits) EXPECT_EQ(h, 1);
  EXPECT_THROW(pool.parallel_for(100, 1, [](std::int64_t b, std::int64_t) {
                 if (b >= 50) throw Error("chunk", "boom");
               }),
               Error);
  // Nested use runs inline instead of deadlocking.
  std::atomic<int> total{0};
  pool.parallel_for(8, 1, [&](std::int64_t, std::int64_t) {
    pool.parallel_for(4, 1, [&](std::int64_t b, std::int64_t e) { total += int(e - b); });
  });
  EXPECT_EQ(total.load(), 32);
}

TEST(Progress, PlainLinesWhenNotATerminal) {
  std::FILE* f = std::tmpfile();
  {
    Progress p("eval", 10, f);
    p.set_interactive(false);
    p.advance(4);
    EXPECT_NE(p.status_line().find("4/10"), std::string::npos);
  }
  std::rewind(f);
  char buf[256] = {};
  ASSERT_NE(std::fgets(buf, sizeof buf, f), nullptr);
  EXPECT_NE(std::string(buf).find("eval  4/10"), std::string::npos);
  std::fclose(f);
}

}  // namespace
}  // namespace mcv::test_tensor
