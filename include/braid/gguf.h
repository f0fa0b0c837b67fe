// GGUF files: reading (memory-mapped), writing, and LLaMA/Mixtral models to and from GGUF.
//
// GGUF (versions 2 and 3) is ggml's single-file model format, little-endian throughout:
//   "GGUF", u32 version, u64 tensor count, u64 metadata count,
//   metadata: key (u64 length + bytes), u32 value type, value (arrays: u32 element type, u64 count, elements),
//   tensor infos: name, u32 dims, u64 ne[dims], u32 ggml type, u64 offset into the data section,
//   padding to general.alignment (32 by default), then the data section.
//
// The reader maps the file and checks every size, count and offset against the file
// before using it, so a truncated or hostile file gives a braid::Error that says what is
// wrong and where (byte offset, metadata key or tensor name): never a crash, never an
// allocation larger than a small multiple of the file. Tensor data is used in place from
// the mapping, which lives as long as any copy of GgufFile::keep_alive().
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "braid/graph.h"
#include "braid/model.h"

namespace braid {

enum class GgufType : uint32_t {
  UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6,
  Bool = 7, String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
};
inline constexpr uint32_t kGgufTypeCount = 13;
std::string_view gguf_type_name(GgufType type);  // "u32", "string", "array", ...
// Bytes of one value of a scalar type (0 for String and Array).
size_t gguf_scalar_size(GgufType type);

// One metadata value. Arrays of scalars keep their elements packed (as in the file), so
// a vocabulary's score array costs 4 bytes a token; arrays of strings and nested arrays
// hold one GgufValue per element.
class GgufValue {
 public:
  GgufValue() = default;  // u8 0
  static GgufValue u8(uint8_t v);
  static GgufValue i8(int8_t v);
  static GgufValue u16(uint16_t v);
  static GgufValue i16(int16_t v);
  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue i64(int64_t v);
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  // Every item must have element_type (throws braid::Error otherwise).
  static GgufValue array(GgufType element_type, std::vector<GgufValue> items);
  static GgufValue strings(const std::vector<std::string>& items);
  static GgufValue floats(const std::vector<float>& items);  // f32 elements
  static GgufValue ints(const std::vector<int32_t>& items);  // i32 elements
  // A scalar from its little-endian bits, and a scalar array from its packed
  // little-endian bytes (used by the reader).
  static GgufValue from_bits(GgufType scalar_type, uint64_t bits);
  static GgufValue packed_array(GgufType element_type, std::vector<uint8_t> bytes);

  GgufType type() const { return type_; }
  GgufType element_type() const { return element_type_; }  // arrays only
  bool is_integer() const;
  bool is_float() const { return type_ == GgufType::Float32 || type_ == GgufType::Float64; }
  bool is_array() const { return type_ == GgufType::Array; }

  // Typed access; each throws braid::Error when the value is of another kind.
  int64_t as_int() const;     // any integer type (a u64 above INT64_MAX throws)
  double as_float() const;    // f32, f64, or any integer
  bool as_bool() const;
  const std::string& as_string() const;
  uint64_t raw_bits() const { return bits_; }  // scalars: the value's bits as stored in the file
  size_t size() const;               // array element count
  GgufValue at(size_t index) const;  // array element (copied)
  std::vector<std::string> as_strings() const;  // array of strings
  std::vector<double> as_floats() const;        // array of numbers

  // "5", "\"llama\"", "[1, 2, 3, ... (32000 items)]": arrays show at most max_items items.
  std::string to_string(size_t max_items = 8) const;
  // Exact equality: same types, same bits.
  bool operator==(const GgufValue& other) const = default;

 private:
  GgufType type_ = GgufType::UInt8;
  GgufType element_type_ = GgufType::UInt8;
  uint64_t bits_ = 0;  // scalars: the value's little-endian bits, zero-extended
  std::string text_;
  std::vector<uint8_t> packed_;    // arrays of scalars
  std::vector<GgufValue> items_;   // arrays of strings or arrays
};

// ggml tensor types: braid's DTypes plus every other type ggml defines, known by name
// and block size so that files holding them can be listed and checked.
struct GgmlTypeInfo {
  uint32_t id;
  std::string_view name;   // ggml's spelling: "f32", "q4_0", "q4_K", ...
  int block_elements;
  int block_bytes;
  std::optional<DType> dtype;  // set when braid computes with this type
};
const GgmlTypeInfo* ggml_type_info(uint32_t ggml_type);  // null for ids ggml does not define
uint32_t ggml_type_of(DType type);

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  std::string_view type_name;  // ggml's name of the type
  int n_dims = 1;
  Graph::Shape ne{1, 1, 1, 1};
  uint64_t offset = 0;  // from the start of the data section
  uint64_t bytes = 0;
  const uint8_t* data = nullptr;

  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  bool supported() const;  // its type is a braid DType
  // Throws braid::Error "unsupported tensor type q4_K for blk.0.attn_q.weight" otherwise.
  DType dtype() const;
  std::string shape_string() const;  // "[64, 512]" (n_dims entries)
};

class GgufFile {
 public:
  // Maps the file read-only and parses it.
  static GgufFile open(const std::string& path);
  // Parses bytes already in memory; `owner` keeps them alive (it may be null when the
  // caller guarantees that). `source` names the bytes in error messages.
  static GgufFile parse(std::shared_ptr<const void> owner, const uint8_t* bytes, size_t size,
                        std::string source);

  const std::string& source() const { return source_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }  // file offset of the data section
  size_t file_size() const { return size_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;  // null when absent
  const GgufValue& get(std::string_view key) const;   // throws when absent
  // Typed getters: throw braid::Error naming the key when it is absent (forms without a
  // fallback) or has the wrong type.
  std::string get_string(std::string_view key) const;
  std::string get_string(std::string_view key, std::string fallback) const;
  int64_t get_int(std::string_view key) const;
  int64_t get_int(std::string_view key, int64_t fallback) const;
  double get_float(std::string_view key) const;
  double get_float(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;
  const GgufValue& get_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;  // null when absent
  const GgufTensorInfo& tensor(std::string_view name) const;       // throws when absent
  // Holds the mapped bytes; tensor data pointers are valid while a copy lives.
  const std::shared_ptr<const void>& keep_alive() const { return owner_; }

 private:
  friend class GgufParser;
  std::string source_;
  std::shared_ptr<const void> owner_;
  size_t size_ = 0;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::unordered_map<std::string, size_t> key_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

// Builds a GGUF v3 file: metadata in insertion order, tensors in insertion order, each
// at an offset that is a multiple of the alignment. Tensor bytes are not copied: they
// must stay valid until write() returns.
class GgufWriter {
 public:
  GgufWriter();
  // Adds or replaces a key. Setting general.alignment (u32, a power of two) changes the
  // alignment tensors are written with.
  void set(const std::string& key, GgufValue value);
  const GgufValue* find(const std::string& key) const;
  void add_tensor(const std::string& name, DType type, const Graph::Shape& ne, const void* data);
  // Copies a tensor as it is, of any ggml type (e.g. from another file).
  void add_tensor(const GgufTensorInfo& tensor);
  size_t tensor_count() const { return tensors_.size(); }
  size_t alignment() const { return alignment_; }
  // Writes `path` + ".tmp" and renames it to `path` once complete, so a failure leaves
  // no partial file behind.
  void write(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    uint32_t ggml_type;
    int n_dims;
    Graph::Shape ne;
    uint64_t bytes;
    const void* data;
  };
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<PendingTensor> tensors_;
  size_t alignment_ = 32;
};

// Loads a llama-architecture GGUF file (Mixtral files are "llama" with llama.expert_count):
// the config from the llama.* keys, the weights used in place from the mapping. Every
// expected tensor must be present with the expected shape and a supported type.
Model load_gguf_model(const std::string& path);
Model load_gguf_model(const GgufFile& file);
// Writes a model with llama.cpp's metadata keys so that llama.cpp can load it. The
// tokenizer.* keys are copied from vocab_source when given (its token count must equal
// the model's vocabulary); otherwise the file says it has no vocabulary.
void save_gguf_model(const Model& model, const std::string& path, const GgufFile* vocab_source = nullptr);

}  // namespace braid
