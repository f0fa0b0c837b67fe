// GGUF reader: maps the file and parses it with a cursor that checks every read.
//
// Note [Untrusted sizes]: every count and length in a GGUF file is a u64 that an attacker
// (or a truncated download) controls. Before anything is allocated, a count is checked
// against the bytes left in the file: a string needs its length in bytes, an array of n
// elements at least n times its smallest element's size. Allocations therefore stay
// within a small multiple of the file size, whatever the header claims.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "braid/gguf.h"

namespace braid {
namespace {

constexpr uint32_t kMaxNesting = 8;  // arrays of arrays deeper than this are refused
constexpr uint32_t kMaxTensorDims = 4;

std::string shape_text(const Graph::Shape& ne, int n_dims) {
  std::string out = "[";
  for (int d = 0; d < n_dims; ++d) out += fmt::format("{}{}", d ? ", " : "", ne[static_cast<size_t>(d)]);
  return out + "]";
}

}  // namespace

// Reads the file front to back. Errors name the source, the byte offset where the
// offending field starts, and the metadata key or tensor being read.
class GgufParser {
 public:
  GgufParser(const uint8_t* bytes, size_t size, const std::string& source)
      : bytes_(bytes), size_(size), source_(source) {}

  void parse(GgufFile& file) {
    parse_header(file);
    for (uint64_t i = 0; i < metadata_count_; ++i) parse_metadata(file, i);
    read_alignment(file);
    for (uint64_t i = 0; i < tensor_count_; ++i) parse_tensor_info(file, i);
    context_.clear();
    place_tensors(file);
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& message) const {
    throw Error(fmt::format("{}: {} at byte {}{}", source_, message, at, context_));
  }

  size_t remaining() const { return size_ - pos_; }

  void need(size_t bytes, std::string_view what) const {
    if (bytes > remaining()) {
      fail(pos_, fmt::format("file ends inside {} ({} bytes needed, {} left; truncated file?)", what, bytes,
                             remaining()));
    }
  }

  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_ + pos_, sizeof(T));  // GGUF is little-endian, like every host braid supports
    pos_ += sizeof(T);
    return value;
  }

  std::string read_string(std::string_view what) {
    const size_t at = pos_;
    const auto length = read<uint64_t>(what);
    if (length > remaining()) {
      fail(at, fmt::format("{} claims {} bytes but only {} are left in the file", what, length, remaining()));
    }
    std::string text(reinterpret_cast<const char*>(bytes_ + pos_), static_cast<size_t>(length));
    pos_ += static_cast<size_t>(length);
    return text;
  }

  GgufType read_type(std::string_view what) {
    const size_t at = pos_;
    const auto raw = read<uint32_t>(what);
    if (raw >= kGgufTypeCount) fail(at, fmt::format("unknown metadata value type {}", raw));
    return static_cast<GgufType>(raw);
  }

  void parse_header(GgufFile& file) {
    if (size_ < 4 || std::memcmp(bytes_, "GGUF", 4) != 0) {
      fail(0, size_ < 4 ? std::string("not a GGUF file (shorter than the magic)")
                        : fmt::format("not a GGUF file (magic bytes {:02x} {:02x} {:02x} {:02x}, expected \"GGUF\")",
                                      bytes_[0], bytes_[1], bytes_[2], bytes_[3]));
    }
    pos_ = 4;
    const size_t version_at = pos_;
    file.version_ = read<uint32_t>("the version");
    if (file.version_ != 2 && file.version_ != 3) {
      const bool swapped = (file.version_ & 0xffffu) == 0 && file.version_ != 0;
      fail(version_at, fmt::format("unsupported GGUF version {} (braid reads versions 2 and 3{})", file.version_,
                                   swapped ? "; this looks like a big-endian file" : ""));
    }
    const size_t counts_at = pos_;
    tensor_count_ = read<uint64_t>("the tensor count");
    metadata_count_ = read<uint64_t>("the metadata count");
    // The smallest metadata entry is 8 (key length) + 4 (type) + 1 bytes; the smallest
    // tensor info 8 (name length) + 4 (dims) + 8 (ne) + 4 (type) + 8 (offset).
    if (metadata_count_ > remaining() / 13) {
      fail(counts_at + 8, fmt::format("metadata count {} cannot fit in the {} bytes left", metadata_count_, remaining()));
    }
    if (tensor_count_ > remaining() / 32) {
      fail(counts_at, fmt::format("tensor count {} cannot fit in the {} bytes left", tensor_count_, remaining()));
    }
  }

  void parse_metadata(GgufFile& file, uint64_t index) {
    const size_t at = pos_;
    context_ = fmt::format(" (metadata entry {})", index);
    std::string key = read_string("a metadata key");
    context_ = fmt::format(" (metadata key '{}')", key);
    if (file.key_index_.count(key)) fail(at, "duplicate metadata key");
    const GgufType type = read_type("a metadata value type");
    GgufValue value = read_value(type, 0);
    file.key_index_.emplace(key, file.metadata_.size());
    file.metadata_.emplace_back(std::move(key), std::move(value));
  }

  GgufValue read_value(GgufType type, uint32_t depth) {
    if (type == GgufType::String) return GgufValue::string(read_string("a string value"));
    if (type != GgufType::Array) {
      const size_t size = gguf_scalar_size(type);
      need(size, fmt::format("a {} value", gguf_type_name(type)));
      uint64_t bits = 0;
      std::memcpy(&bits, bytes_ + pos_, size);
      pos_ += size;
      return GgufValue::from_bits(type, bits);
    }
    const size_t at = pos_;
    if (depth >= kMaxNesting) fail(at, fmt::format("arrays nested deeper than {}", kMaxNesting));
    const GgufType element = read_type("an array element type");
    const size_t count_at = pos_;
    const auto count = read<uint64_t>("an array length");
    // See Note [Untrusted sizes]. Strings take at least 8 bytes, nested arrays 12.
    const size_t element_size = gguf_scalar_size(element);
    const size_t min_bytes = element == GgufType::String ? 8 : element == GgufType::Array ? 12 : element_size;
    if (count > remaining() / min_bytes) {
      fail(count_at, fmt::format("array of {} claims {} elements but only {} bytes are left", gguf_type_name(element),
                                 count, remaining()));
    }
    if (element_size > 0) {
      const size_t bytes = static_cast<size_t>(count) * element_size;
      std::vector<uint8_t> packed(bytes_ + pos_, bytes_ + pos_ + bytes);
      pos_ += bytes;
      return GgufValue::packed_array(element, std::move(packed));
    }
    std::vector<GgufValue> items;
    items.reserve(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) items.push_back(read_value(element, depth + 1));
    return GgufValue::array(element, std::move(items));
  }

  void read_alignment(GgufFile& file) {
    context_.clear();
    const GgufValue* value = file.find("general.alignment");
    if (!value) return;
    if (value->type() != GgufType::UInt32) {
      throw Error(fmt::format("{}: metadata key 'general.alignment' is a {}, expected u32", source_,
                              gguf_type_name(value->type())));
    }
    const auto alignment = static_cast<uint64_t>(value->as_int());
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
      throw Error(fmt::format("{}: general.alignment {} is not a power of two", source_, alignment));
    }
    file.alignment_ = static_cast<size_t>(alignment);
  }

  void parse_tensor_info(GgufFile& file, uint64_t index) {
    const size_t at = pos_;
    context_ = fmt::format(" (tensor info {})", index);
    GgufTensorInfo info;
    info.name = read_string("a tensor name");
    context_ = fmt::format(" (tensor '{}')", info.name);
    if (file.tensor_index_.count(info.name)) fail(at, "duplicate tensor name");
    const size_t dims_at = pos_;
    const auto n_dims = read<uint32_t>("the dimension count");
    if (n_dims == 0 || n_dims > kMaxTensorDims) {
      fail(dims_at, fmt::format("{} dimensions (braid reads 1 to {})", n_dims, kMaxTensorDims));
    }
    info.n_dims = static_cast<int>(n_dims);
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const size_t ne_at = pos_;
      const auto ne = read<uint64_t>("a dimension");
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (ne > 0 && elements > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(ne))) {
        fail(ne_at, fmt::format("dimension {} = {} makes the element count overflow", d, ne));
      }
      info.ne[d] = static_cast<int64_t>(ne);
      elements *= static_cast<int64_t>(ne);
    }
    const size_t type_at = pos_;
    info.ggml_type = read<uint32_t>("the tensor type");
    const GgmlTypeInfo* type = ggml_type_info(info.ggml_type);
    if (!type) fail(type_at, fmt::format("unknown tensor type {}", info.ggml_type));
    info.type_name = type->name;
    if (info.ne[0] % type->block_elements != 0) {
      fail(dims_at, fmt::format("row of {} elements is not a multiple of the {} block size {}", info.ne[0],
                                type->name, type->block_elements));
    }
    const uint64_t blocks = static_cast<uint64_t>(elements / type->block_elements);
    if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(type->block_bytes)) {
      fail(dims_at, "tensor byte size overflows");
    }
    info.bytes = blocks * static_cast<uint64_t>(type->block_bytes);
    const size_t offset_at = pos_;
    info.offset = read<uint64_t>("the tensor data offset");
    if (info.offset % file.alignment_ != 0) {
      fail(offset_at, fmt::format("data offset {} is not a multiple of the alignment {}", info.offset, file.alignment_));
    }
    offset_positions_.push_back(offset_at);
    file.tensor_index_.emplace(info.name, file.tensors_.size());
    file.tensors_.push_back(std::move(info));
  }

  // Checks each tensor's bytes lie inside the file and attaches its data pointer.
  void place_tensors(GgufFile& file) {
    const size_t alignment = file.alignment_;
    const size_t data_offset = pos_ + (alignment - pos_ % alignment) % alignment;
    file.data_offset_ = data_offset;
    if (file.tensors_.empty()) return;
    if (data_offset > size_) {
      fail(pos_, fmt::format("file ends before its data section (starts at byte {}, file is {} bytes)", data_offset,
                             size_));
    }
    const uint64_t data_size = size_ - data_offset;
    for (size_t i = 0; i < file.tensors_.size(); ++i) {
      GgufTensorInfo& info = file.tensors_[i];
      if (info.offset > data_size || info.bytes > data_size - info.offset) {
        context_ = fmt::format(" (tensor '{}')", info.name);
        fail(offset_positions_[i],
             fmt::format("tensor data [{}, {}) of the data section runs past its end ({} bytes; truncated file?)",
                         info.offset, info.offset + info.bytes, data_size));
      }
      info.data = bytes_ + data_offset + info.offset;
    }
  }

  const uint8_t* bytes_;
  size_t size_;
  const std::string& source_;
  size_t pos_ = 0;
  uint64_t tensor_count_ = 0;
  uint64_t metadata_count_ = 0;
  std::string context_;
  std::vector<size_t> offset_positions_;
};

GgufFile GgufFile::parse(std::shared_ptr<const void> owner, const uint8_t* bytes, size_t size, std::string source) {
  GgufFile file;
  file.source_ = std::move(source);
  file.owner_ = std::move(owner);
  file.size_ = size;
  GgufParser(bytes, size, file.source_).parse(file);
  return file;
}

GgufFile GgufFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    ::close(fd);
    throw Error(fmt::format("{}: {}", path, S_ISREG(st.st_mode) ? std::strerror(err) : "not a regular file"));
  }
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    throw Error(fmt::format("{}: empty file, not a GGUF file", path));
  }
  void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping stays valid without the descriptor
  if (mapped == MAP_FAILED) throw Error(fmt::format("{}: cannot map: {}", path, std::strerror(err)));
  std::shared_ptr<const void> mapping(mapped, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  return parse(std::move(mapping), static_cast<const uint8_t*>(mapped), size, path);
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = key_index_.find(std::string(key));
  return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  const GgufValue* value = find(key);
  if (!value) throw Error(fmt::format("{}: metadata key '{}' is missing", source_, key));
  return *value;
}

namespace {

// Runs a typed access and names the key when it fails.
template <typename F>
auto typed(const std::string& source, std::string_view key, F&& access) -> decltype(access()) {
  try {
    return access();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: metadata key '{}': {}", source, key, e.what()));
  }
}

}  // namespace

std::string GgufFile::get_string(std::string_view key) const {
  const GgufValue& value = get(key);
  return typed(source_, key, [&] { return value.as_string(); });
}
std::string GgufFile::get_string(std::string_view key, std::string fallback) const {
  return find(key) ? get_string(key) : fallback;
}
int64_t GgufFile::get_int(std::string_view key) const {
  const GgufValue& value = get(key);
  return typed(source_, key, [&] { return value.as_int(); });
}
int64_t GgufFile::get_int(std::string_view key, int64_t fallback) const {
  return find(key) ? get_int(key) : fallback;
}
double GgufFile::get_float(std::string_view key) const {
  const GgufValue& value = get(key);
  return typed(source_, key, [&] { return value.as_float(); });
}
double GgufFile::get_float(std::string_view key, double fallback) const {
  return find(key) ? get_float(key) : fallback;
}
bool GgufFile::get_bool(std::string_view key, bool fallback) const {
  const GgufValue* value = find(key);
  return value ? typed(source_, key, [&] { return value->as_bool(); }) : fallback;
}
const GgufValue& GgufFile::get_array(std::string_view key) const {
  const GgufValue& value = get(key);
  if (!value.is_array()) {
    throw Error(fmt::format("{}: metadata key '{}' is a {}, expected an array", source_, key,
                            gguf_type_name(value.type())));
  }
  return value;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* info = find_tensor(name);
  if (!info) throw Error(fmt::format("{}: tensor '{}' is missing", source_, name));
  return *info;
}

bool GgufTensorInfo::supported() const {
  const GgmlTypeInfo* info = ggml_type_info(ggml_type);
  return info && info->dtype.has_value();
}

DType GgufTensorInfo::dtype() const {
  const GgmlTypeInfo* info = ggml_type_info(ggml_type);
  if (!info || !info->dtype) throw Error(fmt::format("unsupported tensor type {} for {}", type_name, name));
  return *info->dtype;
}

std::string GgufTensorInfo::shape_string() const { return shape_text(ne, n_dims); }

}  // namespace braid
