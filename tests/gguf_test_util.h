// Helpers shared by the GGUF tests: file bytes, temporary paths, locating fields inside
// a GGUF file to corrupt them, and small llama models with random weights.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "braid/gguf.h"
#include "braid/model.h"
#include "test_support.h"

namespace braid::test {

using Metadata = std::vector<std::pair<std::string, GgufValue>>;
using TensorList = std::vector<GgufTensorInfo>;

// Copies `source` to `path` after `edit` changes its metadata and tensor list.
inline void rewrite(const GgufFile& source, const std::string& path,
                    const std::function<void(Metadata&, TensorList&)>& edit) {
  Metadata metadata = source.metadata();
  TensorList tensors = source.tensors();
  edit(metadata, tensors);
  GgufWriter writer;
  for (const auto& [key, value] : metadata) writer.set(key, value);
  for (const GgufTensorInfo& t : tensors) writer.add_tensor(t);
  writer.write(path);
}

// Replaces the value of `key`, or appends the key when absent.
inline void set_key(Metadata& metadata, const std::string& key, GgufValue value) {
  for (auto& [k, v] : metadata) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata.emplace_back(key, std::move(value));
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// A path in the temporary folder unique to this process and test; removed by the caller.
inline std::string temp_path(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return (std::filesystem::temp_directory_path() /
          (std::string("braid_") + std::to_string(::getpid()) + "_" + info->name() + "_" + name))
      .string();
}

// Parses bytes from memory (copied to a buffer of exactly their size, so that a read
// past the end is caught by AddressSanitizer).
inline GgufFile parse_bytes(const std::vector<uint8_t>& bytes, size_t size, const std::string& source = "test.gguf") {
  auto exact = std::make_shared<std::vector<uint8_t>>(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(size));
  const uint8_t* data = exact->data();
  return GgufFile::parse(exact, data, exact->size(), source);
}

// Parses the first `size` bytes and returns the error message; fails the test if parsing
// succeeds. Cuts inside the header are copied to an exact-size buffer (for ASan); the
// parser never reads tensor data, so cuts inside the data are parsed in place.
inline std::string parse_error(const std::vector<uint8_t>& bytes, size_t size, size_t copy_below = SIZE_MAX) {
  try {
    if (size < copy_below) {
      parse_bytes(bytes, size);
    } else {
      GgufFile::parse(nullptr, bytes.data(), size, "test.gguf");
    }
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "parsing " << size << " bytes succeeded";
  return {};
}
inline std::string parse_error(const std::vector<uint8_t>& bytes) { return parse_error(bytes, bytes.size()); }

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// End of the last tensor's data (or of a file without tensors): a file cut anywhere
// before it is truncated.
inline size_t end_of_data(const GgufFile& file) {
  if (file.tensors().empty()) return file.file_size();
  size_t end = file.data_offset();
  for (const GgufTensorInfo& t : file.tensors()) end = std::max<size_t>(end, file.data_offset() + t.offset + t.bytes);
  return end;
}

// Cuts the fixture at every size below dense_prefix and then every stride bytes up to
// the end of its data: each cut must give an error that says where.
inline void check_truncations(const std::string& name, size_t dense_prefix, size_t stride) {
  const std::vector<uint8_t> bytes = read_bytes(fixture(name));
  const GgufFile whole = parse_bytes(bytes, bytes.size());
  const size_t needed = end_of_data(whole);
  std::vector<size_t> sizes;
  for (size_t size = 0; size < std::min(dense_prefix, needed); ++size) sizes.push_back(size);
  for (size_t size = dense_prefix; size < needed; size += stride) sizes.push_back(size);
  sizes.push_back(needed - 1);
  for (const size_t size : sizes) {
    const std::string message = parse_error(bytes, size, whole.data_offset());
    ASSERT_TRUE(contains(message, "test.gguf: ") && contains(message, " at byte ")) << size << ": " << message;
  }
  // A cut inside the padding after the last tensor loses nothing.
  EXPECT_NO_THROW(parse_bytes(bytes, needed));
}

template <typename T>
void poke(std::vector<uint8_t>& bytes, size_t at, T value) {
  ASSERT_LE(at + sizeof(T), bytes.size());
  std::memcpy(bytes.data() + at, &value, sizeof(T));
}

// Byte position of a length-prefixed string in a GGUF file (a key or a tensor name):
// the position of its u64 length. Fails the test when absent.
inline size_t find_gguf_string(const std::vector<uint8_t>& bytes, const std::string& text) {
  std::vector<uint8_t> needle(8 + text.size());
  const uint64_t length = text.size();
  std::memcpy(needle.data(), &length, 8);
  std::memcpy(needle.data() + 8, text.data(), text.size());
  const auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  EXPECT_NE(it, bytes.end()) << text;
  return static_cast<size_t>(it - bytes.begin());
}

// Field positions of one tensor info.
struct TensorInfoFields {
  size_t n_dims, ne, type, offset;
};
inline TensorInfoFields find_tensor_info(const std::vector<uint8_t>& bytes, const std::string& name) {
  const size_t at = find_gguf_string(bytes, name) + 8 + name.size();
  uint32_t n_dims = 0;
  std::memcpy(&n_dims, bytes.data() + at, 4);
  return {at, at + 4, at + 4 + 8 * n_dims, at + 8 + 8 * n_dims};
}

// A llama model with random weights (never zeros), built by hand so that these tests do
// not depend on the presets.
inline Model make_test_model(const ModelConfig& config, uint32_t seed) {
  Model model;
  model.config = config;
  const ModelConfig& c = config;
  uint32_t next_seed = seed;
  const auto add = [&](const std::string& name, DType type, Graph::Shape ne) {
    const int64_t count = ne[0] * ne[1] * ne[2] * ne[3];
    const std::vector<float> values = random_floats(static_cast<size_t>(count), next_seed++);
    from_f32(type, values.data(), model.add_owned_tensor(name, type, ne), count);
  };
  const int64_t e = c.n_embd, kv = static_cast<int64_t>(c.n_head_kv) * c.head_dim(), ff = c.n_ff;
  add("token_embd.weight", c.weight_type, {e, c.n_vocab, 1, 1});
  add("output_norm.weight", DType::F32, {e, 1, 1, 1});
  add("output.weight", c.weight_type, {e, c.n_vocab, 1, 1});
  for (int layer = 0; layer < c.n_layer; ++layer) {
    const std::string p = "blk." + std::to_string(layer) + ".";
    add(p + "attn_norm.weight", DType::F32, {e, 1, 1, 1});
    add(p + "attn_q.weight", c.weight_type, {e, e, 1, 1});
    add(p + "attn_k.weight", c.weight_type, {e, kv, 1, 1});
    add(p + "attn_v.weight", c.weight_type, {e, kv, 1, 1});
    add(p + "attn_output.weight", c.weight_type, {e, e, 1, 1});
    add(p + "ffn_norm.weight", DType::F32, {e, 1, 1, 1});
    if (c.n_expert == 0) {
      add(p + "ffn_gate.weight", c.weight_type, {e, ff, 1, 1});
      add(p + "ffn_up.weight", c.weight_type, {e, ff, 1, 1});
      add(p + "ffn_down.weight", c.weight_type, {ff, e, 1, 1});
    } else {
      add(p + "ffn_gate_inp.weight", DType::F32, {e, c.n_expert, 1, 1});
      add(p + "ffn_gate_exps.weight", c.weight_type, {e, ff, c.n_expert, 1});
      add(p + "ffn_up_exps.weight", c.weight_type, {e, ff, c.n_expert, 1});
      add(p + "ffn_down_exps.weight", c.weight_type, {ff, e, c.n_expert, 1});
    }
  }
  return model;
}

inline ModelConfig small_config(int n_expert = 0) {
  ModelConfig c;
  c.name = n_expert ? "test-moe" : "test-dense";
  c.n_embd = 64;
  c.n_ff = 96;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.n_layer = 2;
  c.n_vocab = 40;
  c.n_expert = n_expert;
  c.n_expert_used = n_expert ? 2 : 0;
  c.n_ctx = 256;
  c.rope_base = 500000.0f;
  c.rms_eps = 1e-6f;
  c.weight_type = DType::Q8_0;
  return c;
}

}  // namespace braid::test
