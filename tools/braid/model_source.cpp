#include "model_source.h"

#include <fmt/format.h>

#include "braid/gguf.h"
#include "commands.h"

namespace braid::cli {

std::string ModelSource::label() const {
  const std::string cache = cache_type == "f32" ? "" : fmt::format(" ({} cache)", cache_type);
  if (!file.empty()) return file.substr(file.find_last_of('/') + 1) + cache;
  return (layers > 0 ? fmt::format("{} {} ({} layers)", preset, type, layers) : fmt::format("{} {}", preset, type)) +
         cache;
}

void add_cache_type_option(CLI::App& cmd, std::string& cache_type) {
  cmd.add_option("--cache-type", cache_type, "KV cache element type: f32, f16 or bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
}

DType cache_type_named(const std::string& name) {
  DType type = DType::F32;
  if (!parse_dtype(name, &type) || (type != DType::F32 && type != DType::F16 && type != DType::BF16)) {
    throw Error(fmt::format("unknown cache type '{}' (known: f32, f16, bf16)", name));
  }
  return type;
}

std::string preset_list() {
  std::string list;
  for (const std::string& name : preset_names()) list += (list.empty() ? "" : ", ") + name;
  return list;
}

void add_model_options(CLI::App& cmd, ModelSource& source, bool file_allowed) {
  if (file_allowed) cmd.add_option("-m,--model", source.file, "GGUF model file");
  cmd.add_option("--preset", source.preset, "Built-in model with random weights: " + preset_list());
  cmd.add_option("--type", source.type, "Weight type of a preset: " + std::string(kWeightTypeNames))
      ->capture_default_str();
  cmd.add_option("--layers", source.layers, "Override the preset's layer count")->check(positive());
  cmd.add_option("--ctx", source.context, "Context length (KV cache size)")->check(positive());
  add_cache_type_option(cmd, source.cache_type);
  cmd.add_option("--seed", source.seed, "Seed of a preset's random weights")->capture_default_str();
}

namespace {

ModelConfig preset_source_config(const ModelSource& source) {
  ModelConfig config = preset_config(source.preset);
  set_weight_type(config, source.type);
  if (source.layers > 0) config.n_layer = source.layers;
  if (source.context > 0) config.n_ctx = source.context;
  config.cache_type = cache_type_named(source.cache_type);
  config.check();
  return config;
}

}  // namespace

std::unique_ptr<Model> load_model(const ModelSource& source) {
  if (source.file.empty() == source.preset.empty()) throw Error("give exactly one of -m FILE or --preset NAME");
  auto model = std::make_unique<Model>();
  if (!source.file.empty()) {
    *model = load_gguf_model(source.file);
    if (source.context > 0) model->config.n_ctx = source.context;
    model->config.cache_type = cache_type_named(source.cache_type);
    return model;
  }
  *model = make_random_model(preset_source_config(source), source.seed);
  return model;
}

ModelConfig check_model_source(const ModelSource& source) {
  if (source.file.empty() == source.preset.empty()) throw Error("give exactly one of -m FILE or --preset NAME");
  if (source.file.empty()) return preset_source_config(source);
  ModelConfig config = load_gguf_model(source.file).config;  // mapped, not read
  if (source.context > 0) config.n_ctx = source.context;
  config.cache_type = cache_type_named(source.cache_type);
  return config;
}

}  // namespace braid::cli
