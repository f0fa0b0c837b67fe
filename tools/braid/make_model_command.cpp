// `braid make-model`: writes a preset model with seeded random weights as a GGUF file,
// optionally with a real tokenizer copied from another GGUF file.
#include <fmt/format.h>

#include <optional>

#include "braid/gguf.h"
#include "braid/model.h"
#include "braid/weight_mix.h"
#include "commands.h"
#include "model_source.h"

namespace braid::cli {
namespace {

struct MakeModelOptions {
  std::string preset;
  std::string out;
  std::string type;
  int layers = 0;
  std::string vocab;
  uint64_t seed = 1;
};

// Says which matrices could not take the requested K-quant (rows not a multiple of 256)
// and what they got instead, as llama.cpp's quantizer does.
void print_fallbacks(const Model& model) {
  if (traits(model.config.weight_type).block_elements != kSuperBlock) return;
  int fallbacks = 0;
  std::string example;
  for (const WeightTensor& t : model.tensors()) {
    if (t.type == DType::F32 || t.ne[0] % kSuperBlock == 0) continue;  // norms, and matrices that fit
    if (++fallbacks == 1) example = fmt::format("{} ({} columns) -> {}", t.name, t.ne[0], name(t.type));
  }
  if (fallbacks > 0) {
    fmt::print("note: {} matrices have rows that are not a multiple of 256 and cannot be K-quantized; they fall back "
               "as llama.cpp does (q2_K, q3_K -> q4_0, q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0), e.g. {}\n",
               fallbacks, example);
  }
}

void make_model(const MakeModelOptions& o) {
  ModelConfig config = preset_config(o.preset);
  if (!o.type.empty()) set_weight_type(config, o.type);
  if (o.layers > 0) config.n_layer = o.layers;
  std::optional<GgufFile> vocab;
  if (!o.vocab.empty()) {
    vocab = GgufFile::open(o.vocab);
    // The model takes the tokenizer's vocabulary size, so the embedding has one row a token.
    config.n_vocab = static_cast<int>(vocab->get_array("tokenizer.ggml.tokens").size());
  }
  const Model model = make_random_model(config, o.seed);
  save_gguf_model(model, o.out, vocab ? &*vocab : nullptr);
  const std::string type_name = config.weight_mix == WeightMix::None ? std::string(name(config.weight_type))
                                                                      : std::string(name(config.weight_mix));
  fmt::print("wrote {}: {} ({} layers, n_embd {}, vocab {}, {}), {} tensors, {} parameters, {:.1f} MiB\n", o.out,
             config.name, config.n_layer, config.n_embd, config.n_vocab, type_name,
             model.tensors().size(), model.parameter_count(), static_cast<double>(model.weight_bytes()) / (1 << 20));
  print_fallbacks(model);
}

}  // namespace

void add_make_model_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("make-model", "Write a preset model with seeded random weights as GGUF");
  auto o = std::make_shared<MakeModelOptions>();
  cmd->add_option("--preset", o->preset, "Preset: " + preset_list())->required();
  cmd->add_option("--out", o->out, "Output GGUF file")->required();
  cmd->add_option("--type", o->type, "Weight type of the matrices")
      ->check(CLI::IsMember({"f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k",
                             "q6_k", "q4_k_m", "q5_k_m"},
                            CLI::ignore_case));
  cmd->add_option("--layers", o->layers, "Number of layers (default: the preset's)")->check(positive());
  cmd->add_option("--vocab", o->vocab, "GGUF file whose tokenizer the model gets (and its vocabulary size)");
  cmd->add_option("--seed", o->seed, "Random seed of the weights");
  cmd->callback([o] { make_model(*o); });
}

}  // namespace braid::cli
