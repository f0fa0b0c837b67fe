// Writes the fuzzer's seed corpus: a few small valid GGUF files (dense, grouped-query,
// Mixtral-style, with and without a real vocabulary, every braid weight type) and broken
// variants of them, one per kind of damage the reader and loader must refuse. The files
// in fuzz/corpus/ were made with it:
//   build-fuzz/fuzz/braid_fuzz_seeds /work/shared/fixtures/stories260K.gguf fuzz/corpus
#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "braid/gguf.h"
#include "braid/model.h"

namespace {

using Bytes = std::vector<uint8_t>;
namespace fs = std::filesystem;

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw braid::Error(fmt::format("cannot write {}", path.string()));
}

braid::ModelConfig small(const std::string& name, int embd, int ff, int heads, int kv_heads, int layers, int vocab,
                         braid::DType type, int experts = 0, int used = 0) {
  braid::ModelConfig c;
  c.name = name;
  c.n_embd = embd;
  c.n_ff = ff;
  c.n_head = heads;
  c.n_head_kv = kv_heads;
  c.n_layer = layers;
  c.n_vocab = vocab;
  c.n_expert = experts;
  c.n_expert_used = used;
  c.n_ctx = 64;
  c.weight_type = type;
  return c;
}

// Saves a random model through a temporary file and returns its bytes.
Bytes model_bytes(const braid::ModelConfig& config, const fs::path& scratch, const braid::GgufFile* vocab = nullptr) {
  const braid::Model model = braid::make_random_model(config, 7);
  braid::save_gguf_model(model, scratch.string(), vocab);
  Bytes bytes = read_file(scratch.string());
  fs::remove(scratch);
  return bytes;
}

// Rewrites a file after `edit` changes its metadata and tensor table.
using Metadata = std::vector<std::pair<std::string, braid::GgufValue>>;
using Tensors = std::vector<braid::GgufTensorInfo>;
Bytes rewrite(const Bytes& source, const fs::path& scratch, const std::function<void(Metadata&, Tensors&)>& edit) {
  const braid::GgufFile file = braid::GgufFile::parse(nullptr, source.data(), source.size(), "seed");
  Metadata metadata = file.metadata();
  Tensors tensors = file.tensors();
  edit(metadata, tensors);
  braid::GgufWriter writer;
  for (const auto& [key, value] : metadata) writer.set(key, value);
  for (const braid::GgufTensorInfo& t : tensors) writer.add_tensor(t);
  writer.write(scratch.string());
  Bytes bytes = read_file(scratch.string());
  fs::remove(scratch);
  return bytes;
}

void set_key(Metadata& metadata, const std::string& key, braid::GgufValue value) {
  for (auto& [k, v] : metadata) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata.emplace_back(key, std::move(value));
}

template <typename T>
Bytes poked(Bytes bytes, size_t at, T value) {
  std::memcpy(bytes.data() + at, &value, sizeof(T));
  return bytes;
}

Bytes prefix(const Bytes& bytes, size_t size) { return Bytes(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(size)); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fmt::print(stderr, "usage: {} STORIES260K_GGUF OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    using braid::DType;
    const fs::path out = argv[2];
    fs::create_directories(out);
    const fs::path scratch = out / ".scratch.gguf";
    const braid::GgufFile stories = braid::GgufFile::open(argv[1]);
    auto save = [&](const std::string& name, const Bytes& bytes) { write_file(out / (name + ".gguf"), bytes); };

    // Valid files.
    const Bytes dense = model_bytes(small("dense-q8", 32, 32, 4, 2, 2, 16, DType::Q8_0), scratch);
    save("valid-dense-q8_0-gqa", dense);
    save("valid-dense-f16", model_bytes(small("dense-f16", 16, 24, 2, 2, 1, 12, DType::F16), scratch));
    save("valid-dense-bf16", model_bytes(small("dense-bf16", 16, 24, 4, 1, 1, 12, DType::BF16), scratch));
    save("valid-moe-q4_0", model_bytes(small("moe-q4_0", 32, 32, 2, 2, 1, 8, DType::Q4_0, 2, 1), scratch));
    save("valid-moe-q4_1", model_bytes(small("moe-q4_1", 32, 64, 4, 4, 1, 8, DType::Q4_1, 3, 2), scratch));
    save("valid-stories-vocab-f32", model_bytes(small("vocab-f32", 8, 16, 2, 2, 1, 512, DType::F32), scratch, &stories));
    save("valid-vocab-only", rewrite(read_file(argv[1]), scratch, [](Metadata& m, Tensors& t) {
           t.clear();
           std::erase_if(m, [](const auto& e) { return e.first.rfind("tokenizer.", 0) != 0; });
         }));
    save("valid-v2", poked<uint32_t>(dense, 4, 2));

    // Broken containers.
    save("broken-empty", {});
    save("broken-magic-only", Bytes{'G', 'G', 'U', 'F'});
    save("broken-bad-magic", poked<uint32_t>(dense, 0, 0x47475546));  // "FUGG"
    save("broken-version-1", poked<uint32_t>(dense, 4, 1));
    save("broken-big-endian", poked<uint32_t>(dense, 4, 0x03000000));
    save("broken-tensor-count", poked<uint64_t>(dense, 8, uint64_t{1} << 60));
    save("broken-metadata-count", poked<uint64_t>(dense, 16, 100000));
    const braid::GgufFile parsed = braid::GgufFile::parse(nullptr, dense.data(), dense.size(), "dense");
    save("broken-cut-in-metadata", prefix(dense, 200));
    save("broken-cut-in-tensor-table", prefix(dense, parsed.data_offset() - 40));
    save("broken-cut-in-data", prefix(dense, dense.size() - 100));

    // Containers that parse but are not models braid can run.
    auto edited = [&](const std::function<void(Metadata&, Tensors&)>& edit) { return rewrite(dense, scratch, edit); };
    // iq4_nl (ggml type 20) has 32-element blocks like q8_0, so the shape still fits.
    std::vector<uint8_t> iq4_nl(32 * 32 / 32 * 18, 0x5a);
    save("model-unsupported-type-iq4_nl", edited([&](Metadata&, Tensors& t) {
           for (auto& info : t) {
             if (info.name == "blk.0.attn_q.weight") {
               info.ggml_type = 20;
               info.bytes = iq4_nl.size();
               info.data = iq4_nl.data();
             }
           }
         }));
    save("model-shape-mismatch", edited([](Metadata& m, Tensors&) {
           set_key(m, "llama.embedding_length", braid::GgufValue::u32(64));
           set_key(m, "llama.rope.dimension_count", braid::GgufValue::u32(16));
         }));
    save("model-odd-head-size", edited([](Metadata& m, Tensors&) {
           set_key(m, "llama.attention.head_count", braid::GgufValue::u32(32));
           set_key(m, "llama.attention.head_count_kv", braid::GgufValue::u32(16));
           set_key(m, "llama.rope.dimension_count", braid::GgufValue::u32(1));
         }));
    save("model-missing-tensor", edited([](Metadata&, Tensors& t) {
           std::erase_if(t, [](const auto& info) { return info.name == "blk.1.ffn_down.weight"; });
         }));
    save("model-wrong-architecture", edited([](Metadata& m, Tensors&) {
           set_key(m, "general.architecture", braid::GgufValue::string("gpt2"));
         }));
    save("model-experts-without-count", edited([](Metadata& m, Tensors&) {
           set_key(m, "llama.expert_count", braid::GgufValue::u32(4));
         }));
    fmt::print("wrote the seed corpus to {}\n", out.string());
  } catch (const std::exception& e) {
    fmt::print(stderr, "braid_fuzz_seeds: {}\n", e.what());
    return 1;
  }
  return 0;
}
