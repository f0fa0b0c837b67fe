// GGUF metadata values and the table of ggml tensor types.
#include <fmt/format.h>

#include <array>
#include <cstring>
#include <limits>

#include "braid/gguf.h"

namespace braid {
namespace {

constexpr std::array<std::string_view, kGgufTypeCount> kTypeNames = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
constexpr std::array<size_t, kGgufTypeCount> kScalarSizes = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

bool is_signed(GgufType t) {
  return t == GgufType::Int8 || t == GgufType::Int16 || t == GgufType::Int32 || t == GgufType::Int64;
}

// Sign-extends the low `bytes` bytes of `bits`.
int64_t sign_extend(uint64_t bits, size_t bytes) {
  if (bytes >= 8) return static_cast<int64_t>(bits);
  const unsigned shift = static_cast<unsigned>(64 - 8 * bytes);
  return static_cast<int64_t>(bits << shift) >> shift;
}

// Every type ggml has defined, with its block layout (from ggml's type traits). Ids that
// ggml retired (4, 5, 31-33, 36-38) are left out: a file using them is malformed.
const std::array<GgmlTypeInfo, 32> kGgmlTypes = {{
    {0, "f32", 1, 4, DType::F32},
    {1, "f16", 1, 2, DType::F16},
    {2, "q4_0", 32, 18, DType::Q4_0},
    {3, "q4_1", 32, 20, DType::Q4_1},
    {6, "q5_0", 32, 22, DType::Q5_0},
    {7, "q5_1", 32, 24, DType::Q5_1},
    {8, "q8_0", 32, 34, DType::Q8_0},
    {9, "q8_1", 32, 36, std::nullopt},
    {10, "q2_K", 256, 84, DType::Q2_K},
    {11, "q3_K", 256, 110, DType::Q3_K},
    {12, "q4_K", 256, 144, DType::Q4_K},
    {13, "q5_K", 256, 176, DType::Q5_K},
    {14, "q6_K", 256, 210, DType::Q6_K},
    {15, "q8_K", 256, 292, std::nullopt},
    {16, "iq2_xxs", 256, 66, std::nullopt},
    {17, "iq2_xs", 256, 74, std::nullopt},
    {18, "iq3_xxs", 256, 98, std::nullopt},
    {19, "iq1_s", 256, 50, std::nullopt},
    {20, "iq4_nl", 32, 18, std::nullopt},
    {21, "iq3_s", 256, 110, std::nullopt},
    {22, "iq2_s", 256, 82, std::nullopt},
    {23, "iq4_xs", 256, 136, std::nullopt},
    {24, "i8", 1, 1, std::nullopt},
    {25, "i16", 1, 2, std::nullopt},
    {26, "i32", 1, 4, DType::I32},
    {27, "i64", 1, 8, std::nullopt},
    {28, "f64", 1, 8, std::nullopt},
    {29, "iq1_m", 256, 56, std::nullopt},
    {30, "bf16", 1, 2, DType::BF16},
    {34, "tq1_0", 256, 54, std::nullopt},
    {35, "tq2_0", 256, 66, std::nullopt},
    {39, "mxfp4", 32, 17, std::nullopt},
}};

}  // namespace

std::string_view gguf_type_name(GgufType type) {
  const auto index = static_cast<uint32_t>(type);
  return index < kGgufTypeCount ? kTypeNames[index] : std::string_view("?");
}

size_t gguf_scalar_size(GgufType type) {
  const auto index = static_cast<uint32_t>(type);
  BRAID_ASSERT(index < kGgufTypeCount);
  return kScalarSizes[index];
}

const GgmlTypeInfo* ggml_type_info(uint32_t ggml_type) {
  for (const GgmlTypeInfo& info : kGgmlTypes) {
    if (info.id == ggml_type) return &info;
  }
  return nullptr;
}

uint32_t ggml_type_of(DType type) {
  for (const GgmlTypeInfo& info : kGgmlTypes) {
    if (info.dtype == type) return info.id;
  }
  BRAID_ASSERT(false && "every DType has a ggml type");
  return 0;
}

namespace {

template <typename T>
uint64_t bits_of(T value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  return bits;
}

GgufValue scalar(GgufType type, uint64_t bits) { return GgufValue::from_bits(type, bits); }

}  // namespace

GgufValue GgufValue::from_bits(GgufType scalar_type, uint64_t bits) {
  const size_t size = gguf_scalar_size(scalar_type);
  BRAID_ASSERT(size > 0);
  GgufValue value;
  value.type_ = scalar_type;
  value.bits_ = size == 8 ? bits : bits & ((uint64_t{1} << (8 * size)) - 1);
  return value;
}

GgufValue GgufValue::u8(uint8_t v) { return scalar(GgufType::UInt8, v); }
GgufValue GgufValue::i8(int8_t v) { return scalar(GgufType::Int8, bits_of(v)); }
GgufValue GgufValue::u16(uint16_t v) { return scalar(GgufType::UInt16, v); }
GgufValue GgufValue::i16(int16_t v) { return scalar(GgufType::Int16, bits_of(v)); }
GgufValue GgufValue::u32(uint32_t v) { return scalar(GgufType::UInt32, v); }
GgufValue GgufValue::i32(int32_t v) { return scalar(GgufType::Int32, bits_of(v)); }
GgufValue GgufValue::u64(uint64_t v) { return scalar(GgufType::UInt64, v); }
GgufValue GgufValue::i64(int64_t v) { return scalar(GgufType::Int64, bits_of(v)); }
GgufValue GgufValue::f32(float v) { return scalar(GgufType::Float32, bits_of(v)); }
GgufValue GgufValue::f64(double v) { return scalar(GgufType::Float64, bits_of(v)); }
GgufValue GgufValue::boolean(bool v) { return scalar(GgufType::Bool, v ? 1 : 0); }

GgufValue GgufValue::string(std::string v) {
  GgufValue value;
  value.type_ = GgufType::String;
  value.text_ = std::move(v);
  return value;
}

GgufValue GgufValue::packed_array(GgufType element_type, std::vector<uint8_t> bytes) {
  const size_t size = gguf_scalar_size(element_type);
  BRAID_ASSERT(size > 0 && bytes.size() % size == 0);
  GgufValue value;
  value.type_ = GgufType::Array;
  value.element_type_ = element_type;
  value.packed_ = std::move(bytes);
  return value;
}

GgufValue GgufValue::array(GgufType element_type, std::vector<GgufValue> items) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].type() != element_type) {
      throw Error(fmt::format("gguf array of {}: item {} is a {}", gguf_type_name(element_type), i,
                              gguf_type_name(items[i].type())));
    }
  }
  const size_t size = gguf_scalar_size(element_type);
  if (size == 0) {
    GgufValue value;
    value.type_ = GgufType::Array;
    value.element_type_ = element_type;
    value.items_ = std::move(items);
    return value;
  }
  std::vector<uint8_t> bytes(items.size() * size);
  for (size_t i = 0; i < items.size(); ++i) std::memcpy(bytes.data() + i * size, &items[i].bits_, size);
  return packed_array(element_type, std::move(bytes));
}

GgufValue GgufValue::strings(const std::vector<std::string>& items) {
  GgufValue value;
  value.type_ = GgufType::Array;
  value.element_type_ = GgufType::String;
  value.items_.reserve(items.size());
  for (const std::string& s : items) value.items_.push_back(string(s));
  return value;
}

GgufValue GgufValue::floats(const std::vector<float>& items) {
  std::vector<uint8_t> bytes(items.size() * 4);
  if (!items.empty()) std::memcpy(bytes.data(), items.data(), bytes.size());
  return packed_array(GgufType::Float32, std::move(bytes));
}

GgufValue GgufValue::ints(const std::vector<int32_t>& items) {
  std::vector<uint8_t> bytes(items.size() * 4);
  if (!items.empty()) std::memcpy(bytes.data(), items.data(), bytes.size());
  return packed_array(GgufType::Int32, std::move(bytes));
}

bool GgufValue::is_integer() const {
  switch (type_) {
    case GgufType::UInt8: case GgufType::Int8: case GgufType::UInt16: case GgufType::Int16:
    case GgufType::UInt32: case GgufType::Int32: case GgufType::UInt64: case GgufType::Int64:
      return true;
    default:
      return false;
  }
}

int64_t GgufValue::as_int() const {
  if (!is_integer()) throw Error(fmt::format("expected an integer, found a {}", gguf_type_name(type_)));
  if (is_signed(type_)) return sign_extend(bits_, gguf_scalar_size(type_));
  if (bits_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw Error(fmt::format("integer {} is too large", bits_));
  }
  return static_cast<int64_t>(bits_);
}

double GgufValue::as_float() const {
  if (type_ == GgufType::Float32) {
    float f;
    const auto low = static_cast<uint32_t>(bits_);
    std::memcpy(&f, &low, 4);
    return f;
  }
  if (type_ == GgufType::Float64) {
    double d;
    std::memcpy(&d, &bits_, 8);
    return d;
  }
  if (is_integer()) {
    return is_signed(type_) ? static_cast<double>(sign_extend(bits_, gguf_scalar_size(type_)))
                            : static_cast<double>(bits_);
  }
  throw Error(fmt::format("expected a number, found a {}", gguf_type_name(type_)));
}

bool GgufValue::as_bool() const {
  if (type_ != GgufType::Bool) throw Error(fmt::format("expected a bool, found a {}", gguf_type_name(type_)));
  return bits_ != 0;
}

const std::string& GgufValue::as_string() const {
  if (type_ != GgufType::String) {
    throw Error(fmt::format("expected a string, found a {}", gguf_type_name(type_)));
  }
  return text_;
}

size_t GgufValue::size() const {
  if (type_ != GgufType::Array) throw Error(fmt::format("expected an array, found a {}", gguf_type_name(type_)));
  const size_t element = gguf_scalar_size(element_type_);
  return element > 0 ? packed_.size() / element : items_.size();
}

GgufValue GgufValue::at(size_t index) const {
  const size_t count = size();
  if (index >= count) throw Error(fmt::format("array index {} out of range (size {})", index, count));
  const size_t element = gguf_scalar_size(element_type_);
  if (element == 0) return items_[index];
  GgufValue value;
  value.type_ = element_type_;
  std::memcpy(&value.bits_, packed_.data() + index * element, element);
  return value;
}

std::vector<std::string> GgufValue::as_strings() const {
  if (type_ != GgufType::Array || element_type_ != GgufType::String) {
    throw Error(fmt::format("expected an array of strings, found a {}", gguf_type_name(type_)));
  }
  std::vector<std::string> out;
  out.reserve(items_.size());
  for (const GgufValue& item : items_) out.push_back(item.text_);
  return out;
}

std::vector<double> GgufValue::as_floats() const {
  const size_t count = size();
  if (gguf_scalar_size(element_type_) == 0 || element_type_ == GgufType::Bool) {
    throw Error(fmt::format("expected an array of numbers, found an array of {}", gguf_type_name(element_type_)));
  }
  std::vector<double> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = at(i).as_float();
  return out;
}

namespace {

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

std::string GgufValue::to_string(size_t max_items) const {
  switch (type_) {
    case GgufType::String:
      return quoted(text_);
    case GgufType::Bool:
      return bits_ ? "true" : "false";
    case GgufType::Float32:  // shortest text that reads back as the same f32: 1e-05, not 9.99999974e-06
      return fmt::format("{}", static_cast<float>(as_float()));
    case GgufType::Float64:
      return fmt::format("{}", as_float());
    case GgufType::Array: {
      const size_t count = size();
      std::string out = "[";
      for (size_t i = 0; i < count && i < max_items; ++i) {
        if (i > 0) out += ", ";
        out += at(i).to_string(max_items);
      }
      if (count > max_items) out += fmt::format(", ... ({} items)", count);
      return out + "]";
    }
    default:
      return is_signed(type_) ? fmt::format("{}", as_int()) : fmt::format("{}", bits_);
  }
}

}  // namespace braid
