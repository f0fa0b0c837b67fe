// llama.cpp's tokenizer test vectors (ggml-vocab-NAME.gguf.inp / .out in the fixtures),
// read the same way for every vocabulary.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace braid::test {

struct TestVector {
  std::string text;
  std::vector<int32_t> ids;
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The .inp file: texts each followed by "\n__ggml_vocab_test__\n" (a text may itself
// be empty or consist of newlines). The .out file: one line of ids per text (no BOS).
// `vocab_path` is the vocabulary's path (its .inp and .out lie beside it).
inline std::vector<TestVector> read_test_vectors_at(const std::string& vocab_path) {
  const std::string inputs = read_text(vocab_path + ".inp");
  const std::string outputs = read_text(vocab_path + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<TestVector> vectors;
  for (size_t at = 0; at < inputs.size();) {
    const size_t end = inputs.find(separator, at);
    if (end == std::string::npos) break;
    vectors.push_back({inputs.substr(at, end - at), {}});
    at = end + separator.size();
  }
  std::istringstream lines(outputs);
  std::string line;
  for (auto& v : vectors) {
    if (!std::getline(lines, line)) break;
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) v.ids.push_back(id);
  }
  return vectors;
}

// A fixture's vectors: ggml-vocab-NAME.gguf in the fixtures folder.
inline std::vector<TestVector> read_test_vectors(const std::string& vocab_file) {
  return read_test_vectors_at(fixture(vocab_file));
}

// A text with newlines and tabs escaped, for failure messages.
inline std::string printable(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace braid::test
