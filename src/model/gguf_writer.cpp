// GGUF writer: version 3, little-endian, tensors aligned as the reader (and ggml) expect.
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "braid/gguf.h"

namespace braid {
namespace {

constexpr uint32_t kWriteVersion = 3;

// Buffered output to a FILE that remembers the first failure instead of checking every call.
class Output {
 public:
  Output(std::FILE* file, const std::string& path) : file_(file), path_(path) {}

  void bytes(const void* data, size_t size) {
    if (size > 0 && std::fwrite(data, 1, size, file_) != size) fail();
    written_ += size;
  }
  template <typename T>
  void scalar(T value) {
    bytes(&value, sizeof(T));
  }
  void string(const std::string& text) {
    scalar<uint64_t>(text.size());
    bytes(text.data(), text.size());
  }
  void pad_to(size_t alignment) {
    static const uint8_t zeros[256] = {};
    size_t padding = (alignment - written_ % alignment) % alignment;
    while (padding > 0) {
      const size_t chunk = std::min(padding, sizeof(zeros));
      bytes(zeros, chunk);
      padding -= chunk;
    }
  }
  size_t written() const { return written_; }
  [[noreturn]] void fail() const {
    throw Error(fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
  }

 private:
  std::FILE* file_;
  const std::string& path_;
  size_t written_ = 0;
};

void write_value(Output& out, const GgufValue& value) {
  const GgufType type = value.type();
  if (type == GgufType::String) {
    out.string(value.as_string());
    return;
  }
  if (type != GgufType::Array) {
    const uint64_t bits = value.raw_bits();
    out.bytes(&bits, gguf_scalar_size(type));  // low bytes first: little-endian host
    return;
  }
  out.scalar(static_cast<uint32_t>(value.element_type()));
  const size_t count = value.size();
  out.scalar<uint64_t>(count);
  for (size_t i = 0; i < count; ++i) write_value(out, value.at(i));
}

}  // namespace

GgufWriter::GgufWriter() = default;

void GgufWriter::set(const std::string& key, GgufValue value) {
  if (key == "general.alignment") {
    const bool valid = value.type() == GgufType::UInt32 && value.as_int() > 0 &&
                       (value.as_int() & (value.as_int() - 1)) == 0;
    if (!valid) throw Error(fmt::format("general.alignment must be a u32 power of two, got {}", value.to_string()));
    alignment_ = static_cast<size_t>(value.as_int());
  }
  for (auto& [existing, existing_value] : metadata_) {
    if (existing == key) {
      existing_value = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(value));
}

const GgufValue* GgufWriter::find(const std::string& key) const {
  for (const auto& [existing, value] : metadata_) {
    if (existing == key) return &value;
  }
  return nullptr;
}

void GgufWriter::add_tensor(const std::string& name, DType type, const Graph::Shape& ne, const void* data) {
  int n_dims = kMaxDims;
  while (n_dims > 1 && ne[static_cast<size_t>(n_dims - 1)] == 1) --n_dims;
  const DTypeTraits& t = traits(type);
  if (ne[0] % t.block_elements != 0) {
    throw Error(fmt::format("{}: row of {} elements is not a multiple of the {} block size {}", name, ne[0], t.name,
                            t.block_elements));
  }
  const auto elements = static_cast<uint64_t>(ne[0] * ne[1] * ne[2] * ne[3]);
  const uint64_t bytes = elements / static_cast<uint64_t>(t.block_elements) * static_cast<uint64_t>(t.block_bytes);
  for (const PendingTensor& existing : tensors_) {
    if (existing.name == name) throw Error(fmt::format("duplicate tensor name {}", name));
  }
  tensors_.push_back({name, ggml_type_of(type), n_dims, ne, bytes, data});
}

void GgufWriter::add_tensor(const GgufTensorInfo& tensor) {
  for (const PendingTensor& existing : tensors_) {
    if (existing.name == tensor.name) throw Error(fmt::format("duplicate tensor name {}", tensor.name));
  }
  tensors_.push_back({tensor.name, tensor.ggml_type, tensor.n_dims, tensor.ne, tensor.bytes, tensor.data});
}

void GgufWriter::write(const std::string& path) const {
  const std::string temp = path + ".tmp";
  std::FILE* file = std::fopen(temp.c_str(), "wb");
  if (!file) throw Error(fmt::format("{}: cannot create: {}", temp, std::strerror(errno)));
  try {
    Output out(file, temp);
    out.bytes("GGUF", 4);
    out.scalar(kWriteVersion);
    out.scalar<uint64_t>(tensors_.size());
    out.scalar<uint64_t>(metadata_.size());
    for (const auto& [key, value] : metadata_) {
      out.string(key);
      out.scalar(static_cast<uint32_t>(value.type()));
      write_value(out, value);
    }
    uint64_t offset = 0;
    for (const PendingTensor& t : tensors_) {
      out.string(t.name);
      out.scalar(static_cast<uint32_t>(t.n_dims));
      for (int d = 0; d < t.n_dims; ++d) out.scalar(static_cast<uint64_t>(t.ne[static_cast<size_t>(d)]));
      out.scalar(t.ggml_type);
      out.scalar(offset);
      offset += (t.bytes + alignment_ - 1) / alignment_ * alignment_;
    }
    if (!tensors_.empty()) out.pad_to(alignment_);  // a vocabulary-only file ends after its metadata
    for (const PendingTensor& t : tensors_) {
      BRAID_ASSERT(t.data != nullptr || t.bytes == 0);
      out.bytes(t.data, static_cast<size_t>(t.bytes));
      out.pad_to(alignment_);
    }
    if (std::fflush(file) != 0) out.fail();
    if (std::fclose(file) != 0) {
      file = nullptr;
      out.fail();
    }
    file = nullptr;
    std::error_code ec;
    std::filesystem::rename(temp, path, ec);
    if (ec) throw Error(fmt::format("{}: cannot rename {} to it: {}", path, temp, ec.message()));
  } catch (...) {
    if (file) std::fclose(file);
    std::remove(temp.c_str());
    throw;
  }
}

}  // namespace braid
