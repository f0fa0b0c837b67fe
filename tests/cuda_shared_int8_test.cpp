// Note [Shared int8 activations] (src/backend/cuda/shared_int8.h): which activations get
// one int8 copy (host only, no device needed), and on the device the same bits with and
// without sharing (copies written by the producers' kernels and by a separate kernel), on
// every policy, and the CPU reference's values within the int8 error.
#ifdef BRAID_HAVE_CUDA

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/shared_int8.h"
#include "braid/backend.h"
#include "braid/batched_runner.h"
#include "braid/graph.h"
#include "braid/model.h"
#include "braid/ops.h"
#include "braid/plan.h"
#include "braid/runner.h"
#include "braid/weight_mix.h"
#include "test_support.h"

namespace braid {
namespace {

constexpr int64_t kD = 512;

struct Layer {
  Graph g;
  TensorId x = kNoTensor, attn_norm = kNoTensor, residual = kNoTensor, ffn_norm = kNoTensor, act = kNoTensor;
  TensorId q = kNoTensor, k = kNoTensor, v = kNoTensor, mix_a = kNoTensor, mix_b = kNoTensor;
  TensorId gate = kNoTensor, up = kNoTensor, down = kNoTensor, tail = kNoTensor;
  std::vector<TensorId> outputs;
  std::vector<std::vector<uint8_t>> weights;  // kept alive: the graph points at them
};

// A layer's shape of products, and the cases of the rule:
//   - Q/K/V (q4_K, q4_K, q6_K: plain order) after a norm, whose kernel writes the copy;
//   - two q8_0 products of an add's output: a copy by a separate kernel;
//   - gate/up (q4_0, q4_1: nibble order) after a second norm;
//   - down, the lone reader of swiglu's output, whose kernel writes the copy;
//   - tail, the lone reader of an add's output: no copy.
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
  l->residual = ops::add(g, l->x, l->q);
  l->mix_a = ops::mul_mat(g, weight("wmix_a", DType::Q8_0, kD, kD), l->residual);
  l->mix_b = ops::mul_mat(g, weight("wmix_b", DType::Q8_0, kD, 256), l->residual);
  l->ffn_norm = ops::rms_norm(g, l->mix_a, norm_weight("ffn_norm"), 1e-5f);
  l->gate = ops::mul_mat(g, weight("wgate", DType::Q4_0, kD, 1024), l->ffn_norm);
  l->up = ops::mul_mat(g, weight("wup", DType::Q4_1, kD, 1024), l->ffn_norm);
  l->act = ops::swiglu(g, l->gate, l->up);
  l->down = ops::mul_mat(g, weight("wdown", DType::Q4_K, 1024, kD), l->act);
  l->tail = ops::mul_mat(g, weight("wtail", DType::Q8_0, kD, 256), ops::add(g, l->x, l->down));
  l->outputs = {l->k, l->v, l->mix_b, l->down, l->tail};
  for (TensorId out : l->outputs) g.mark_output(out);
  g.finalize();
  return l;
}

// Fake weight addresses, 256-byte aligned as cudaMalloc gives them; nothing else of them
// is read by the choice.
cuda::DeviceAddresses aligned_addresses(const Graph& g) {
  cuda::DeviceAddresses addresses(static_cast<size_t>(g.tensor_count()), nullptr);
  for (TensorId id = 0; id < g.tensor_count(); ++id) {
    addresses[static_cast<size_t>(id)] = reinterpret_cast<uint8_t*>(uintptr_t{0x100000} * (id + 1));
  }
  return addresses;
}

TEST(SharedInt8, CopiesWhereTheProducerWritesThemOrTwoProductsReadThem) {
  const auto l = make_layer();
  const Plan plan = make_plan(l->g, Policy::Serial);
  const cuda::SharedInt8Copies copies = cuda::plan_shared_int8(l->g, plan.steps, aligned_addresses(l->g));
  ASSERT_EQ(copies.copies.size(), 4u);
  auto copy_of = [&](TensorId producer) { return copies.written_by[static_cast<size_t>(producer)]; };
  auto read_by = [&](TensorId product) { return copies.read_by[static_cast<size_t>(product)]; };
  for (TensorId producer : {l->attn_norm, l->residual, l->ffn_norm, l->act}) ASSERT_GE(copy_of(producer), 0);
  for (TensorId product : {l->q, l->k, l->v}) EXPECT_EQ(read_by(product), copy_of(l->attn_norm));
  for (TensorId product : {l->mix_a, l->mix_b}) EXPECT_EQ(read_by(product), copy_of(l->residual));
  for (TensorId product : {l->gate, l->up}) EXPECT_EQ(read_by(product), copy_of(l->ffn_norm));
  EXPECT_EQ(read_by(l->down), copy_of(l->act));
  EXPECT_EQ(read_by(l->tail), -1);  // one reader, and an add's kernel does not write copies
  EXPECT_TRUE(cuda::producer_writes_int8(l->g[l->attn_norm]));
  EXPECT_TRUE(cuda::producer_writes_int8(l->g[l->act]));
  EXPECT_FALSE(cuda::producer_writes_int8(l->g[l->residual]));
  EXPECT_FALSE(copies.copies[static_cast<size_t>(copy_of(l->attn_norm))].nibble_order);
  EXPECT_TRUE(copies.copies[static_cast<size_t>(copy_of(l->ffn_norm))].nibble_order);
  // k bytes of int8 values and a (d, s) pair of floats per 32: 512 + 128 bytes a column
  // (each copy rounded up to 256 bytes), 1024 + 256 for swiglu's.
  EXPECT_EQ(copies.copies[static_cast<size_t>(copy_of(l->attn_norm))].bytes, 512u + 128u);
  EXPECT_EQ(copies.bytes, 3u * 768u + 1280u);
}

// A llama decode graph: every product reads a copy, written by the norms, swiglu and
// attention (through the reshape in front of the output projection), fused or not.
TEST(SharedInt8, EveryProductOfALlamaDecodeStepReadsACopyItsProducerWrites) {
  ModelConfig config = preset_config("tiny-256");
  config.n_layer = 2;
  set_weight_type(config, "q4_k_m");
  for (bool fuse : {false, true}) {
    SCOPED_TRACE(fuse ? "fused" : "unfused");
    GraphOptions options;
    options.fuse_projections = fuse;
    const Graph g = build_graph_shapes(config, 1, options).graph;
    const cuda::SharedInt8Copies copies =
        cuda::plan_shared_int8(g, make_plan(g, Policy::Serial).steps, aligned_addresses(g));
    // Per layer: attention norm, attention, FFN norm, swiglu; then the output norm.
    EXPECT_EQ(copies.copies.size(), static_cast<size_t>(4 * config.n_layer + 1));
    int products = 0;
    for (const Tensor& t : g.tensors()) {
      if (t.op != Op::MulMat) continue;
      ++products;
      const int copy = copies.read_by[static_cast<size_t>(t.id)];
      ASSERT_GE(copy, 0) << t.name;
      EXPECT_TRUE(cuda::producer_writes_int8(g[copies.copies[static_cast<size_t>(copy)].producer])) << t.name;
    }
    EXPECT_EQ(products, (fuse ? 4 : 7) * config.n_layer + 1);
    // A prompt's products run on tensor cores, but for the output projection of its last
    // token alone.
    const Graph prompt = build_graph_shapes(config, 16, options).graph;
    const cuda::SharedInt8Copies prompt_copies =
        cuda::plan_shared_int8(prompt, make_plan(prompt, Policy::Serial).steps, aligned_addresses(prompt));
    ASSERT_EQ(prompt_copies.copies.size(), 1u);
    EXPECT_EQ(prompt[prompt_copies.copies[0].producer].op, Op::RmsNorm);
    EXPECT_EQ(prompt_copies.copies[0].columns, 1);
  }
}

std::vector<std::vector<float>> run(Backend& backend, const Layer& l, Policy policy, bool share) {
  ExecOptions options;
  options.share_int8_x = share;
  auto exe = backend.compile(l.g, make_plan(l.g, policy), options);
  const std::vector<float> x = test::random_floats(static_cast<size_t>(kD), 99);
  exe->set_input(l.x, x.data(), x.size() * 4);
  exe->run();
  std::vector<std::vector<float>> outputs;
  for (TensorId out : l.outputs) {
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
  // Each int8 product rounds its x to 8 bits (about 1e-5 of NMSE a product on random
  // data, Note [Int8 activations]); down and tail sit five and six products deep.
  for (size_t i = 0; i < reference.size(); ++i) EXPECT_LT(test::nmse(unshared[i], reference[i]), 1e-3) << i;
}

// Whole quantized models, every copy in place (norms, swiglu, attention, through the
// attention output's reshape): a prompt and decode steps give the same logits, bit for
// bit, with sharing on and off, on every policy, fused projections or not; and so do
// batched decode steps of several sequences (the batched attention kernel, whose copy a
// quantization kernel writes after it).
TEST(SharedInt8, QuantizedModelsGiveTheSameBitsWithAndWithoutSharing) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  for (const char* type : {"q4_k_m", "q4_0"}) {
    auto cuda = make_backend("cuda");  // one a model: a backend holds each weight once
    ModelConfig config = preset_config("tiny-256");
    config.n_ctx = 64;
    config.n_layer = 3;
    set_weight_type(config, type);
    const Model model = make_random_model(config, 5);
    const std::vector<int32_t> prompt = test::prompt_ids(12, config.n_vocab);
    auto decode = [&](Policy policy, bool fuse, bool share) {
      RunnerOptions options;
      options.policy = policy;
      options.fuse = fuse;
      options.exec.share_int8_x = share;
      ModelRunner runner(model, *cuda, options);
      std::vector<std::vector<float>> logits{runner.eval(prompt)};
      for (int step = 0; step < 8; ++step) logits.push_back(runner.eval({test::argmax(logits.back())}));
      return logits;
    };
    for (bool fuse : {false, true}) {
      const auto unshared = decode(Policy::Serial, fuse, false);
      for (Policy policy : all_policies()) {
        SCOPED_TRACE(std::string(type) + " " + std::string(policy_name(policy)) + (fuse ? " fused" : ""));
        EXPECT_EQ(decode(policy, fuse, true), unshared);
      }
    }
    auto batched = [&](bool share) {
      RunnerOptions options;
      options.policy = Policy::Cost;
      options.exec.share_int8_x = share;
      auto backend = make_backend("cuda");  // its own caches: a batched runner's are larger
      BatchedRunner runner(model, *backend, 3, 32, options);
      std::vector<std::vector<float>> logits;
      std::vector<BatchEntry> entries{{0, test::prompt_ids(5, config.n_vocab)},
                                      {1, test::prompt_ids(7, config.n_vocab)}};
      for (int step = 0; step < 6; ++step) {
        std::vector<BatchEntry> next;
        for (size_t e = 0; const auto row : runner.step(entries)) {
          logits.emplace_back(row.begin(), row.end());
          next.push_back({entries[e++].sequence, {test::argmax(logits.back())}});
        }
        entries = next;
      }
      return logits;
    };
    SCOPED_TRACE(std::string(type) + " batched");
    EXPECT_EQ(batched(true), batched(false));
  }
}

}  // namespace
}  // namespace braid

#endif  // BRAID_HAVE_CUDA
