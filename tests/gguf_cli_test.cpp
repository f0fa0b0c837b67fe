// `braid info` and `braid make-model`, run as the built binary.
#include <gtest/gtest.h>

#include <filesystem>

#include "braid/gguf.h"
#include "cli_test_util.h"

namespace braid {
namespace {

using test::fixture;
using test::have_fixture;

using test::CliResult;
using test::run_cli;

using test::contains;

TEST(GgufCli, InfoPrintsMetadataAndTensorTable) {
  if (!have_fixture("stories260K.gguf")) return;
  const CliResult r = run_cli("info '" + fixture("stories260K.gguf") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(contains(r.out, "GGUF version 3, 1185376 bytes, alignment 32, data section at byte 14176")) << r.out;
  EXPECT_TRUE(contains(r.out, "metadata (19 entries)"));
  EXPECT_TRUE(contains(r.out, "general.architecture")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"llama\""));
  EXPECT_TRUE(contains(r.out, "1e-05"));
  // Long arrays are abbreviated, not printed whole.
  EXPECT_TRUE(contains(r.out, "array[string]  [\"<unk>\", \"<s>\", \"</s>\"")) << r.out;
  EXPECT_TRUE(contains(r.out, "... (512 items)]"));
  EXPECT_LT(r.out.size(), 12000u);
  EXPECT_TRUE(contains(r.out, "tensors (48, 292800 elements, 1171200 bytes"));
  // name, type, shape, bytes, file offset
  EXPECT_TRUE(contains(r.out, "blk.4.ffn_norm.weight     f32      [64]                256       1185120")) << r.out;
  EXPECT_TRUE(contains(r.out, "token_embd.weight         f32      [64, 512]        131072         14176")) << r.out;
}

TEST(GgufCli, InfoErrorsExitOneWithOneLine) {
  if (!have_fixture("llama-2-tiny-random.gguf")) return;
  const std::vector<uint8_t> bytes = test::read_bytes(fixture("llama-2-tiny-random.gguf"));
  const std::string truncated = test::temp_path("truncated.gguf");
  test::write_bytes(truncated, std::vector<uint8_t>(bytes.begin(), bytes.begin() + 5000));
  CliResult r = run_cli("info '" + truncated + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  EXPECT_EQ(r.err.rfind("braid: error: " + truncated + ": ", 0), 0u) << r.err;
  EXPECT_TRUE(contains(r.err, "(metadata key 'tokenizer.ggml.tokens')")) << r.err;
  std::filesystem::remove(truncated);

  r = run_cli("info /nonexistent/model.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "braid: error: /nonexistent/model.gguf: cannot open: No such file or directory\n");
}

TEST(GgufCli, MakeModelWritesALoadableFile) {
  const std::string path = test::temp_path("made.gguf");
  const CliResult r = run_cli("make-model --preset tiny-256 --out '" + path + "' --type q4_0 --layers 1 --seed 5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "wrote " + path)) << r.out;
  const Model model = load_gguf_model(path);
  EXPECT_EQ(model.config.n_layer, 1);
  EXPECT_EQ(model.config.weight_type, DType::Q4_0);
  EXPECT_EQ(model.get("blk.0.attn_q.weight").type, DType::Q4_0);
  const ModelConfig preset = preset_config("tiny-256");
  EXPECT_EQ(model.config.n_embd, preset.n_embd);
  EXPECT_EQ(model.config.n_vocab, preset.n_vocab);
  // The same seed gives the same file; another seed other weights.
  const std::string again = test::temp_path("again.gguf"), other = test::temp_path("other.gguf");
  ASSERT_EQ(run_cli("make-model --preset tiny-256 --out '" + again + "' --type q4_0 --layers 1 --seed 5").exit_code, 0);
  ASSERT_EQ(run_cli("make-model --preset tiny-256 --out '" + other + "' --type q4_0 --layers 1 --seed 6").exit_code, 0);
  EXPECT_EQ(test::read_bytes(path), test::read_bytes(again));
  EXPECT_NE(test::read_bytes(path), test::read_bytes(other));
  for (const std::string& p : {path, again, other}) std::filesystem::remove(p);
}

TEST(GgufCli, MakeModelWithARealVocabulary) {
  if (!have_fixture("ggml-vocab-llama-spm.gguf")) return;
  const std::string path = test::temp_path("vocab.gguf");
  const CliResult r = run_cli("make-model --preset tiny-256 --layers 1 --out '" + path + "' --vocab '" +
                              fixture("ggml-vocab-llama-spm.gguf") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(file.get_array("tokenizer.ggml.tokens").size(), 32000u);
  EXPECT_EQ(load_gguf_model(file).config.n_vocab, 32000);
  std::filesystem::remove(path);
}

TEST(GgufCli, MakeModelFailuresLeaveNoFile) {
  const std::string path = test::temp_path("never.gguf");
  CliResult r = run_cli("make-model --preset tiny-256 --out '" + path + "' --vocab /nonexistent/vocab.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  EXPECT_TRUE(contains(r.err, "/nonexistent/vocab.gguf")) << r.err;
  r = run_cli("make-model --preset no-such-preset --out '" + path + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  r = run_cli("make-model --preset tiny-256 --out '" + path + "' --type iq4_nl");
  EXPECT_EQ(r.exit_code, 2);  // a usage error
  // A vocabulary file without tokens fails before anything is written.
  const std::string no_tokens = test::temp_path("no_tokens.gguf");
  GgufWriter writer;
  writer.set("general.architecture", GgufValue::string("llama"));
  writer.write(no_tokens);
  r = run_cli("make-model --preset tiny-256 --out '" + path + "' --vocab '" + no_tokens + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "'tokenizer.ggml.tokens' is missing")) << r.err;
  std::filesystem::remove(no_tokens);
  // The output is a folder: the rename at the end fails and the temporary file goes.
  const std::string folder = test::temp_path("folder");
  std::filesystem::create_directory(folder);
  r = run_cli("make-model --preset tiny-256 --layers 1 --out '" + folder + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  EXPECT_TRUE(contains(r.err, "cannot rename")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(folder + ".tmp"));
  std::filesystem::remove(folder);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

}  // namespace
}  // namespace braid
