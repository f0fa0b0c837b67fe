// Where a CLI command gets its model: a GGUF file (-m) or a built-in preset with seeded
// random weights (--preset).
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "braid/model.h"

namespace braid::cli {

struct ModelSource {
  std::string file;     // a GGUF path, or empty
  std::string preset;   // a preset name, or empty
  std::string type = "f16";  // weight type of a preset
  int layers = 0;       // > 0 overrides a preset's layer count
  int context = 0;      // > 0 overrides the context length
  std::string cache_type = "f32";  // the KV cache's element type
  uint64_t seed = 1;
  std::string label() const;
};

// --cache-type: the KV cache's element type, f32 (the default), f16 or bf16. A 16-bit cache
// takes half the memory and half the bytes attention reads (llama.cpp's default is f16).
void add_cache_type_option(CLI::App& cmd, std::string& cache_type);
DType cache_type_named(const std::string& name);

// Adds --preset/-m style options shared by several commands (with --cache-type).
// "tiny-256, llama-1b, ...": the built-in presets, for help texts.
std::string preset_list();
void add_model_options(CLI::App& cmd, ModelSource& source, bool file_allowed = true);
std::unique_ptr<Model> load_model(const ModelSource& source);
// The config load_model would give, without making a preset's weights (a file is mapped
// and checked as load_model checks it): lets a command refuse bad input before it prints
// progress or spends minutes on another model.
ModelConfig check_model_source(const ModelSource& source);

}  // namespace braid::cli
