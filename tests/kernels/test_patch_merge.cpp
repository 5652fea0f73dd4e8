// patch_merge (PatchMerging2D gather): CPU against a direct transcription of the official
// _patch_merging_pad (F.pad to even sizes, then cat of the four strided quarters), for even and
// odd grids, strided inputs and every dtype; CUDA bit-identical to the CPU; argument errors.

#include <gtest/gtest.h>

#include "mcv/error.h"
#include "mcv/kernels/patch_merge.h"
#include "test_support.h"

namespace mcv::kernels {
namespace {

using Int = std::int64_t;

/// out[b, i, j, q*C + c] from x by the official recipe (as doubles of the stored values).
std::vector<double> reference(const Tensor& x) {
  const Int B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const Int Hp = H + H % 2, Wp = W + W % 2;  // F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
  const Int di[4] = {0, 1, 0, 1}, dj[4] = {0, 0, 1, 1};  // x0, x1, x2, x3
  std::vector<double> out;
  for (Int b = 0; b < B; ++b)
    for (Int i = 0; i < Hp / 2; ++i)
      for (Int j = 0; j < Wp / 2; ++j)
        for (int q = 0; q < 4; ++q)
          for (Int c = 0; c < C; ++c) {
            const Int h = 2 * i + di[q], w = 2 * j + dj[q];
            out.push_back(h < H && w < W ? x.item(((b * H + h) * W + w) * C + c) : 0.0);
          }
  return out;
}

Tensor merged_for(const Tensor& x, Device device) {
  return Tensor::empty({x.size(0), (x.size(1) + 1) / 2, (x.size(2) + 1) / 2, 4 * x.size(3)}, x.dtype(), device);
}

TEST(PatchMerge, CpuMatchesOfficialRecipe) {
  Context ctx;
  for (DType dt : {DType::f32, DType::bf16, DType::f16})
    for (const Shape& s : {Shape{2, 8, 6, 5}, Shape{1, 7, 9, 3}, Shape{3, 1, 1, 4}, Shape{1, 5, 2, 16}}) {
      SCOPED_TRACE(shape_str(s) + " " + dtype_name(dt));
      const Tensor x = test::random_tensor(s, dt, 7);
      Tensor out = merged_for(x, Device::cpu());
      test::poison(out);
      patch_merge(ctx, {x, out});
      const std::vector<double> want = reference(x);
      ASSERT_EQ(static_cast<std::size_t>(out.numel()), want.size());
      for (Int i = 0; i < out.numel(); ++i) ASSERT_EQ(out.item(i), want[static_cast<std::size_t>(i)]) << "element " << i;
    }
}

TEST(PatchMerge, StridedInput) {
  Context ctx;
  // A channel slice of a wider NHWC tensor: last stride 1, position strides of the parent.
  const Tensor wide = test::random_tensor({2, 5, 7, 12}, DType::f32, 3);
  const Tensor x = wide.slice(3, 4, 10);
  Tensor out = merged_for(x, Device::cpu());
  patch_merge(ctx, {x, out});
  const std::vector<double> want = reference(x.contiguous());
  for (Int i = 0; i < out.numel(); ++i) ASSERT_EQ(out.item(i), want[static_cast<std::size_t>(i)]) << "element " << i;
}

TEST(PatchMerge, BadArgumentsAreErrors) {
  Context ctx;
  const Tensor x = test::random_tensor({1, 4, 4, 3}, DType::f32, 1);
  auto message = [&](const Tensor& in, const Tensor& out) {
    try {
      patch_merge(ctx, {in, out});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message(x, Tensor::empty({1, 2, 2, 6}, DType::f32)).find("patch_merge: out"), std::string::npos);
  EXPECT_NE(message(x, Tensor::empty({1, 2, 2, 12}, DType::bf16)).find("patch_merge: out"), std::string::npos);
  EXPECT_NE(message(x.view({4, 4, 3}), Tensor::empty({1, 2, 2, 12}, DType::f32)).find("patch_merge: x"), std::string::npos);
  EXPECT_NE(message(x.permute({0, 3, 1, 2}), Tensor::empty({1, 2, 2, 16}, DType::f32)).find("patch_merge: x"),
            std::string::npos);
  EXPECT_NE(message(x, Tensor()).find("patch_merge: out"), std::string::npos);
  Tensor ints = Tensor::zeros({1, 4, 4, 3}, DType::i32);
  EXPECT_NE(message(ints, Tensor::empty({1, 2, 2, 12}, DType::i32)).find("patch_merge: x"), std::string::npos);
}

TEST(PatchMerge, CudaMatchesCpu) {
  MCV_REQUIRE_CUDA();
  Context cpu, gpu(Device::cuda());
  for (DType dt : {DType::f32, DType::bf16})
    for (const Shape& s : {Shape{2, 56, 56, 96}, Shape{1, 15, 9, 7}}) {
      SCOPED_TRACE(shape_str(s) + " " + dtype_name(dt));
      const Tensor x = test::random_tensor(s, dt, 5);
      Tensor want = merged_for(x, Device::cpu());
      patch_merge(cpu, {x, want});
      const Tensor xg = x.to(Device::cuda());
      Tensor got = merged_for(xg, Device::cuda());
      patch_merge(gpu, {xg, got});
      gpu.synchronize();
      const test::Diff d = test::compare(got, want);
      EXPECT_EQ(d.max_abs, 0.0);
      EXPECT_EQ(d.non_finite, 0);
    }
}

}  // namespace
}  // namespace mcv::kernels
