// Note [Shared int8 activations] (src/backend/cuda/shared_int8.h): which activations get
// one int8 copy (host only, no device needed), and on the device the same bits with and
// without sharing, on every policy, and the CPU reference's values within the int8 error.
#ifdef BRAID_HAVE_CUDA

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/shared_int8.h"
#include "braid/backend.h"
#include "braid/graph.h"
#include "braid/ops.h"
#include "braid/plan.h"
#include "test_support.h"

namespace braid {
namespace {

constexpr int64_t kD = 512;

struct Layer {
  Graph g;
  TensorId x = kNoTensor, attn_norm = kNoTensor, ffn_norm = kNoTensor;
  TensorId q = kNoTensor, k = kNoTensor, v = kNoTensor, gate = kNoTensor, up = kNoTensor, down = kNoTensor;
  std::vector<std::vector<uint8_t>> weights;  // kept alive: the graph points at them
};

// A layer's shape of products: Q/K/V (q4_K, q4_K, q6_K: one plain-order x) after one norm,
// gate/up (q4_0, q4_1: nibble order) after another, and one lone reader of a third (down).
std::unique_ptr<Layer> make_layer() {
  auto l = std::make_unique<Layer>();
  Graph& g = l->g;
  uint32_t seed = 1;
  auto weight = [&](const std::string& name, DType type, int64_t k, int64_t m) {
    const std::vector<float> values = test::random_floats(static_cast<size_t>(k * m), seed++);
    l->weights.emplace_back(row_bytes(type, k) * static_cast<size_t>(m));
    from_f32(type, values.data(), l->weights.back().data(), k * m);
    return g.weight(name, type, {k, m, 1, 1}, l->weights.back().data());
  };
  auto norm_weight = [&](const std::string& name) {
    l->weights.emplace_back(static_cast<size_t>(kD) * 4);
    const std::vector<float> values = test::random_floats(static_cast<size_t>(kD), seed++, 0.5f, 1.5f);
    std::memcpy(l->weights.back().data(), values.data(), values.size() * 4);
    return g.weight(name, DType::F32, {kD, 1, 1, 1}, l->weights.back().data());
  };
  l->x = g.input("x", DType::F32, {kD, 1, 1, 1});
  l->attn_norm = ops::rms_norm(g, l->x, norm_weight("attn_norm"), 1e-5f);
  l->q = ops::mul_mat(g, weight("wq", DType::Q4_K, kD, kD), l->attn_norm);
  l->k = ops::mul_mat(g, weight("wk", DType::Q4_K, kD, 256), l->attn_norm);
  l->v = ops::mul_mat(g, weight("wv", DType::Q6_K, kD, 256), l->attn_norm);
  l->ffn_norm = ops::rms_norm(g, ops::add(g, l->x, l->q), norm_weight("ffn_norm"), 1e-5f);
  l->gate = ops::mul_mat(g, weight("wgate", DType::Q4_0, kD, 1024), l->ffn_norm);
  l->up = ops::mul_mat(g, weight("wup", DType::Q4_1, kD, 1024), l->ffn_norm);
  l->down = ops::mul_mat(g, weight("wdown", DType::Q4_K, 1024, kD), ops::swiglu(g, l->gate, l->up));
  for (TensorId out : {l->k, l->v, l->down}) g.mark_output(out);
  g.finalize();
  return l;
}

TEST(SharedInt8, OneCopyPerActivationWithTwoOrMoreReadersInOneOrder) {
  const auto l = make_layer();
  const Plan plan = make_plan(l->g, Policy::Serial);
  // Weights 256-byte aligned, as cudaMalloc gives them; the rest needs no address here.
  cuda::DeviceAddresses addresses(static_cast<size_t>(l->g.tensor_count()), nullptr);
  for (TensorId id = 0; id < l->g.tensor_count(); ++id) {
    addresses[static_cast<size_t>(id)] = reinterpret_cast<uint8_t*>(uintptr_t{0x100000} * (id + 1));
  }
  const cuda::SharedInt8Copies copies = cuda::plan_shared_int8(l->g, plan.steps, addresses);
  ASSERT_EQ(copies.copies.size(), 2u);
  const int attn = copies.written_by[static_cast<size_t>(l->attn_norm)];
  const int ffn = copies.written_by[static_cast<size_t>(l->ffn_norm)];
  ASSERT_GE(attn, 0);
  ASSERT_GE(ffn, 0);
  EXPECT_FALSE(copies.copies[static_cast<size_t>(attn)].nibble_order);
  EXPECT_TRUE(copies.copies[static_cast<size_t>(ffn)].nibble_order);
  for (TensorId node : {l->q, l->k, l->v}) EXPECT_EQ(copies.read_by[static_cast<size_t>(node)], attn);
  for (TensorId node : {l->gate, l->up}) EXPECT_EQ(copies.read_by[static_cast<size_t>(node)], ffn);
  EXPECT_EQ(copies.read_by[static_cast<size_t>(l->down)], -1);  // its x has one reader
  // k bytes of int8 values and a (d, s) pair of floats per 32: 512 + 128 bytes a column.
  EXPECT_EQ(copies.copies[static_cast<size_t>(attn)].bytes, 512u + 128u);
  EXPECT_EQ(copies.bytes, 2u * 768u);  // each rounded up to 256 bytes
}

std::vector<std::vector<float>> run(Backend& backend, const Layer& l, Policy policy, bool share) {
  ExecOptions options;
  options.share_int8_x = share;
  auto exe = backend.compile(l.g, make_plan(l.g, policy), options);
  const std::vector<float> x = test::random_floats(static_cast<size_t>(kD), 99);
  exe->set_input(l.x, x.data(), x.size() * 4);
  exe->run();
  std::vector<std::vector<float>> outputs;
  for (TensorId out : {l.k, l.v, l.down}) {
    outputs.emplace_back(static_cast<size_t>(l.g[out].ne[0]));
    exe->read(out, outputs.back().data(), outputs.back().size() * 4);
  }
  return outputs;
}

TEST(SharedInt8, SameBitsWithAndWithoutSharingOnEveryPolicyAndTheCpusValues) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const auto l = make_layer();
  auto cuda = make_backend("cuda");
  const auto unshared = run(*cuda, *l, Policy::Serial, false);
  for (Policy policy : all_policies()) {
    SCOPED_TRACE(std::string(policy_name(policy)));
    EXPECT_EQ(run(*cuda, *l, policy, true), unshared);
  }
  auto cpu = make_backend("cpu");
  const auto reference = run(*cpu, *l, Policy::Serial, false);
  for (size_t i = 0; i < reference.size(); ++i) EXPECT_LT(test::nmse(unshared[i], reference[i]), 2e-4) << i;
}

}  // namespace
}  // namespace braid

#endif  // BRAID_HAVE_CUDA
