// The GGUF writer: what it writes reads back identically, metadata and tensor bytes.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "braid/gguf.h"
#include "gguf_test_util.h"

namespace braid {
namespace {

using namespace std::string_literals;

using test::fixture;
using test::have_fixture;

// Every metadata type, nested arrays and an empty array included.
std::vector<std::pair<std::string, GgufValue>> every_type() {
  return {
      {"t.u8", GgufValue::u8(200)},
      {"t.i8", GgufValue::i8(-100)},
      {"t.u16", GgufValue::u16(60000)},
      {"t.i16", GgufValue::i16(-30000)},
      {"t.u32", GgufValue::u32(4000000000u)},
      {"t.i32", GgufValue::i32(-2000000000)},
      {"t.u64", GgufValue::u64(~uint64_t{0} - 5)},
      {"t.i64", GgufValue::i64(-(int64_t{1} << 62))},
      {"t.f32", GgufValue::f32(-1.5e-7f)},
      {"t.f64", GgufValue::f64(3.141592653589793)},
      {"t.bool", GgufValue::boolean(true)},
      {"t.string", GgufValue::string("utf-8 \xc3\xa9 and a NUL \0 inside"s)},
      {"t.empty_string", GgufValue::string("")},
      {"t.floats", GgufValue::floats({0.5f, -2.0f, 1e30f})},
      {"t.ints", GgufValue::ints({-1, 0, 7})},
      {"t.u64s", GgufValue::array(GgufType::UInt64, {GgufValue::u64(1), GgufValue::u64(~uint64_t{0})})},
      {"t.bools", GgufValue::array(GgufType::Bool, {GgufValue::boolean(false), GgufValue::boolean(true)})},
      {"t.strings", GgufValue::strings({"a", "", "long string with spaces"})},
      {"t.empty", GgufValue::array(GgufType::Int16, {})},
      {"t.nested", GgufValue::array(GgufType::Array, {GgufValue::ints({1, 2}), GgufValue::strings({"x"}),
                                                      GgufValue::array(GgufType::Array, {GgufValue::floats({})})})},
  };
}

TEST(GgufWriter, EveryMetadataTypeRoundTrips) {
  GgufWriter writer;
  const auto metadata = every_type();
  for (const auto& [key, value] : metadata) writer.set(key, value);
  writer.set("t.u8", GgufValue::u8(201));  // replacing keeps the key's place
  const std::string path = test::temp_path("types.gguf");
  writer.write(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const GgufFile file = GgufFile::open(path);
  EXPECT_EQ(file.version(), 3u);
  ASSERT_EQ(file.metadata().size(), metadata.size());
  for (size_t i = 0; i < metadata.size(); ++i) {
    EXPECT_EQ(file.metadata()[i].first, metadata[i].first);
    if (i == 0) {
      EXPECT_EQ(file.metadata()[i].second, GgufValue::u8(201));
    } else {
      EXPECT_EQ(file.metadata()[i].second, metadata[i].second) << metadata[i].first;
    }
  }
  EXPECT_EQ(file.get_string("t.string").size(), 27u);
  EXPECT_EQ(file.get("t.nested").at(2).at(0).size(), 0u);
  EXPECT_TRUE(file.tensors().empty());
  std::filesystem::remove(path);
}

TEST(GgufWriter, TensorsAreAlignedAndByteIdentical) {
  for (const uint32_t alignment : {32u, 64u, 4096u}) {
    GgufWriter writer;
    writer.set("general.alignment", GgufValue::u32(alignment));
    EXPECT_EQ(writer.alignment(), alignment);
    const std::vector<float> a = test::random_floats(96 * 3, 11);
    std::vector<uint8_t> q(row_bytes(DType::Q4_1, 64) * 5);
    const std::vector<float> q_source = test::random_floats(64 * 5, 12);
    from_f32(DType::Q4_1, q_source.data(), q.data(), 64 * 5);
    const std::vector<float> e = test::random_floats(4 * 3 * 2 * 2, 13);
    writer.add_tensor("a", DType::F32, {96, 3, 1, 1}, a.data());
    writer.add_tensor("quantized", DType::Q4_1, {64, 5, 1, 1}, q.data());
    writer.add_tensor("four_d", DType::F32, {4, 3, 2, 2}, e.data());
    const std::string path = test::temp_path("tensors.gguf");
    writer.write(path);
    const GgufFile file = GgufFile::open(path);
    EXPECT_EQ(file.alignment(), alignment);
    EXPECT_EQ(file.data_offset() % alignment, 0u);
    ASSERT_EQ(file.tensors().size(), 3u);
    const GgufTensorInfo& ta = file.tensor("a");
    EXPECT_EQ(ta.n_dims, 2);
    EXPECT_EQ(ta.ne, (Graph::Shape{96, 3, 1, 1}));
    EXPECT_EQ(std::memcmp(ta.data, a.data(), a.size() * 4), 0);
    const GgufTensorInfo& tq = file.tensor("quantized");
    EXPECT_EQ(tq.dtype(), DType::Q4_1);
    EXPECT_EQ(tq.bytes, q.size());
    EXPECT_EQ(std::memcmp(tq.data, q.data(), q.size()), 0);
    const GgufTensorInfo& te = file.tensor("four_d");
    EXPECT_EQ(te.n_dims, 4);
    EXPECT_EQ(std::memcmp(te.data, e.data(), e.size() * 4), 0);
    for (const GgufTensorInfo& t : file.tensors()) {
      EXPECT_EQ(t.offset % alignment, 0u) << t.name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % alignment, 0u) << t.name;  // mapped at a page boundary
    }
    std::filesystem::remove(path);
  }
}

TEST(GgufWriter, FixtureRoundTripIsIdentical) {
  for (const char* name : {"stories260K.gguf", "llama-2-tiny-random.gguf", "ggml-vocab-llama-spm.gguf"}) {
    if (!have_fixture(name)) return;
    const GgufFile source = GgufFile::open(fixture(name));
    GgufWriter writer;
    for (const auto& [key, value] : source.metadata()) writer.set(key, value);
    for (const GgufTensorInfo& t : source.tensors()) writer.add_tensor(t);
    const std::string path = test::temp_path("copy.gguf");
    writer.write(path);
    const GgufFile copy = GgufFile::open(path);
    ASSERT_EQ(copy.metadata().size(), source.metadata().size()) << name;
    for (size_t i = 0; i < source.metadata().size(); ++i) {
      EXPECT_EQ(copy.metadata()[i], source.metadata()[i]) << name << " " << source.metadata()[i].first;
    }
    ASSERT_EQ(copy.tensors().size(), source.tensors().size()) << name;
    for (size_t i = 0; i < source.tensors().size(); ++i) {
      const GgufTensorInfo& a = source.tensors()[i];
      const GgufTensorInfo& b = copy.tensors()[i];
      EXPECT_EQ(b.name, a.name);
      EXPECT_EQ(b.ggml_type, a.ggml_type);
      EXPECT_EQ(b.n_dims, a.n_dims);
      EXPECT_EQ(b.ne, a.ne);
      EXPECT_EQ(b.offset, a.offset) << "llama.cpp's converter packs tensors as the writer does";
      ASSERT_EQ(b.bytes, a.bytes);
      EXPECT_EQ(std::memcmp(b.data, a.data, a.bytes), 0) << name << " " << a.name;
    }
    // llama.cpp's converter lays the file out exactly as braid's writer does.
    EXPECT_EQ(test::read_bytes(path), test::read_bytes(fixture(name))) << name;
    std::filesystem::remove(path);
  }
}

TEST(GgufWriter, UnsupportedTypesAreCopiedButNotComputed) {
  std::vector<uint8_t> blocks(2 * 136);  // two iq4_xs blocks
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = static_cast<uint8_t>(i * 7 + 1);
  GgufTensorInfo info;
  info.name = "blk.0.attn_q.weight";
  info.ggml_type = 23;
  info.n_dims = 2;
  info.ne = {256, 2, 1, 1};
  info.bytes = blocks.size();
  info.data = blocks.data();
  GgufWriter writer;
  writer.add_tensor(info);
  EXPECT_THROW(writer.add_tensor(info), Error);  // duplicate name
  const std::string path = test::temp_path("iq4_xs.gguf");
  writer.write(path);
  const GgufFile file = GgufFile::open(path);
  const GgufTensorInfo& t = file.tensor("blk.0.attn_q.weight");
  EXPECT_EQ(t.type_name, "iq4_xs");
  EXPECT_FALSE(t.supported());
  EXPECT_EQ(std::memcmp(t.data, blocks.data(), blocks.size()), 0);
  try {
    t.dtype();
    ADD_FAILURE() << "iq4_xs accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "unsupported tensor type iq4_xs for blk.0.attn_q.weight");
  }
  std::filesystem::remove(path);
}

TEST(GgufWriter, RefusesBadInputAndLeavesNoFileOnFailure) {
  GgufWriter writer;
  EXPECT_THROW(writer.set("general.alignment", GgufValue::u32(24)), Error);
  EXPECT_THROW(writer.set("general.alignment", GgufValue::u64(32)), Error);
  EXPECT_EQ(writer.alignment(), 32u);
  const std::vector<float> data = test::random_floats(40, 3);
  EXPECT_THROW(writer.add_tensor("bad_row", DType::Q8_0, {40, 1, 1, 1}, data.data()), Error);
  const std::string missing_dir = test::temp_path("no_such_dir") + "/out.gguf";
  try {
    writer.write(missing_dir);
    ADD_FAILURE() << "wrote into a missing folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(missing_dir));
  EXPECT_FALSE(std::filesystem::exists(missing_dir + ".tmp"));
}

}  // namespace
}  // namespace braid
