// `braid info FILE`: a GGUF file's header, metadata and tensor table, like gguf-dump.
#include <fmt/format.h>

#include <algorithm>

#include "braid/gguf.h"
#include "commands.h"

namespace braid::cli {
namespace {

constexpr size_t kMaxArrayItems = 8;
constexpr size_t kMaxValueChars = 120;

// Shortens long values (chat templates, merges) to one readable line, cutting on a
// UTF-8 character boundary.
std::string abbreviate(std::string text) {
  if (text.size() <= kMaxValueChars) return text;
  size_t cut = kMaxValueChars - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
  return fmt::format("{}... ({} chars)", text.substr(0, cut), text.size());
}

std::string type_label(const GgufValue& value) {
  if (!value.is_array()) return std::string(gguf_type_name(value.type()));
  return fmt::format("array[{}]", gguf_type_name(value.element_type()));
}

void print_info(const std::string& path) {
  const GgufFile file = GgufFile::open(path);
  fmt::print("{}: GGUF version {}, {} bytes, alignment {}", path, file.version(), file.file_size(),
             file.alignment());
  if (!file.tensors().empty()) fmt::print(", data section at byte {}", file.data_offset());
  fmt::print("\n");

  size_t key_width = 0, type_width = 0;
  for (const auto& [key, value] : file.metadata()) {
    key_width = std::max(key_width, key.size());
    type_width = std::max(type_width, type_label(value).size());
  }
  fmt::print("\nmetadata ({} entries):\n", file.metadata().size());
  for (const auto& [key, value] : file.metadata()) {
    fmt::print("  {:<{}}  {:<{}}  {}\n", key, key_width, type_label(value), type_width,
               abbreviate(value.to_string(kMaxArrayItems)));
  }

  size_t name_width = 4, shape_width = 5;
  uint64_t total_bytes = 0;
  int64_t total_elements = 0;
  for (const GgufTensorInfo& t : file.tensors()) {
    name_width = std::max(name_width, t.name.size());
    shape_width = std::max(shape_width, t.shape_string().size());
    total_bytes += t.bytes;
    total_elements += t.elements();
  }
  fmt::print("\ntensors ({}, {} elements, {} bytes; offsets are file offsets):\n", file.tensors().size(),
             total_elements, total_bytes);
  if (file.tensors().empty()) return;
  fmt::print("  {:>5}  {:<{}}  {:<7}  {:<{}}  {:>12}  {:>12}\n", "#", "name", name_width, "type", "shape",
             shape_width, "bytes", "offset");
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    const GgufTensorInfo& t = file.tensors()[i];
    fmt::print("  {:>5}  {:<{}}  {:<7}  {:<{}}  {:>12}  {:>12}\n", i, t.name, name_width, t.type_name,
               t.shape_string(), shape_width, t.bytes, file.data_offset() + t.offset);
  }
}

}  // namespace

void add_info_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("info", "Print a GGUF file's metadata and tensor table");
  auto path = std::make_shared<std::string>();
  cmd->add_option("file", *path, "GGUF file")->required();
  cmd->callback([path] { print_info(*path); });
}

}  // namespace braid::cli
