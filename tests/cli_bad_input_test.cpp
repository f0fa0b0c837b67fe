// Bad input, end to end: every braid command run as the built binary on files that are
// not models (missing, a folder, empty, truncated), models braid cannot run (an
// unsupported tensor type, shapes that do not fit the architecture, no vocabulary) and
// impossible options. Each must fail with exactly one line on stderr and exit code 1
// ("braid: error: ...") or 2 for command lines that do not parse ("braid: usage
// error: ..."): no crash, and no partial output file left behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "braid/backend.h"
#include "braid/gguf.h"
#include "cli_test_util.h"

namespace braid {
namespace {

namespace fs = std::filesystem;
using test::CliResult;
using test::contains;
using test::run_cli;

// The bad files, written once from the stories260K fixture into a folder of their own.
struct BadFiles {
  std::string dir, missing, empty, truncated_header, truncated_data, unsupported_type, wrong_shape, odd_head_size,
      no_vocab;
};

using test::Metadata;
using test::rewrite;
using test::set_key;
using Tensors = test::TensorList;

const BadFiles& bad_files() {
  static const BadFiles files = [] {
    BadFiles f;
    f.dir = (fs::temp_directory_path() / ("braid_" + std::to_string(::getpid()) + "_cli_bad_input")).string();
    fs::create_directories(f.dir);
    const std::string stories = test::fixture("stories260K.gguf");
    const std::vector<uint8_t> bytes = test::read_bytes(stories);
    const GgufFile source = GgufFile::open(stories);
    f.missing = "/nonexistent/braid/model.gguf";
    f.empty = f.dir + "/empty.gguf";
    test::write_bytes(f.empty, {});
    f.truncated_header = f.dir + "/truncated-header.gguf";  // inside the vocabulary
    test::write_bytes(f.truncated_header, std::vector<uint8_t>(bytes.begin(), bytes.begin() + 5000));
    f.truncated_data = f.dir + "/truncated-data.gguf";  // inside the last tensor
    test::write_bytes(f.truncated_data, std::vector<uint8_t>(bytes.begin(), bytes.end() - 1000));
    // iq4_nl has 32-element blocks, so the [64, 64] shape still holds; braid does not compute with it.
    static std::vector<uint8_t> iq4_nl(64 * 64 / 32 * 18, 0x5a);
    f.unsupported_type = f.dir + "/iq4_nl.gguf";
    rewrite(source, f.unsupported_type, [](Metadata&, Tensors& tensors) {
      for (GgufTensorInfo& t : tensors) {
        if (t.name == "blk.0.attn_q.weight") {
          t.ggml_type = 20;
          t.bytes = iq4_nl.size();
          t.data = iq4_nl.data();
        }
      }
    });
    f.wrong_shape = f.dir + "/wrong-shape.gguf";
    rewrite(source, f.wrong_shape, [](Metadata& m, Tensors&) {
      set_key(m, "llama.embedding_length", GgufValue::u32(128));
      set_key(m, "llama.rope.dimension_count", GgufValue::u32(16));
    });
    // 64 heads of size 1 (32 of them for K and V): every tensor fits, but rope needs an
    // even head size.
    f.odd_head_size = f.dir + "/odd-head-size.gguf";
    rewrite(source, f.odd_head_size, [](Metadata& m, Tensors&) {
      set_key(m, "llama.attention.head_count", GgufValue::u32(64));
      set_key(m, "llama.attention.head_count_kv", GgufValue::u32(32));
      set_key(m, "llama.rope.dimension_count", GgufValue::u32(1));
    });
    f.no_vocab = f.dir + "/no-vocab.gguf";
    rewrite(source, f.no_vocab, [](Metadata& m, Tensors&) {
      std::erase_if(m, [](const auto& entry) { return entry.first.rfind("tokenizer.", 0) == 0; });
    });
    return f;
  }();
  return files;
}

std::string shell_quoted(const std::string& path) { return "'" + path + "'"; }

// Exactly one line on stderr, of the right kind, saying `part`.
void expect_failure(const std::string& args, int code, const std::string& part) {
  SCOPED_TRACE("braid " + args);
  const CliResult r = run_cli(args);
  EXPECT_EQ(r.exit_code, code) << r.err;
  EXPECT_EQ(r.err_lines(), 1) << r.err;
  const std::string prefix = code == 2 ? "braid: usage error: " : "braid: error: ";
  EXPECT_EQ(r.err.rfind(prefix, 0), 0u) << r.err;
  EXPECT_TRUE(contains(r.err, part)) << r.err << "(expected to contain: " << part << ")";
}

class CliBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_fixture("stories260K.gguf")) GTEST_SKIP();
    files_ = &bad_files();
    out_dir_ = test::temp_path("out");
    fs::create_directories(out_dir_);
  }
  void TearDown() override {
    if (!out_dir_.empty()) {
      // Nothing may be left behind by a failed command.
      std::vector<std::string> left;
      for (const auto& entry : fs::directory_iterator(out_dir_)) left.push_back(entry.path().filename().string());
      EXPECT_TRUE(left.empty()) << "left behind: " << (left.empty() ? "" : left.front());
      fs::remove_all(out_dir_);
    }
  }
  static void TearDownTestSuite() {
    const std::string dir = (fs::temp_directory_path() / ("braid_" + std::to_string(::getpid()) + "_cli_bad_input")).string();
    fs::remove_all(dir);
  }

  // The commands that load a model from -m FILE, with settings that would run quickly.
  std::vector<std::string> model_commands(const std::string& file) const {
    const std::string m = "-m " + shell_quoted(file);
    return {
        "bench " + m + " -p 0 -n 1 -r 1 --backend cpu",
        "trace " + m + " --prompt 0 --backend cpu --out " + shell_quoted(out_dir_ + "/t.json") + " --svg " +
            shell_quoted(out_dir_ + "/t.svg"),
        "generate " + m + " -p hi -n 1 --backend cpu",
        "stress " + m + " --steps 1 --backend cpu",
    };
  }
  // The commands that read only the container or the vocabulary.
  std::vector<std::string> file_commands(const std::string& file) const {
    return {"tokenize -m " + shell_quoted(file) + " -p hi", "info " + shell_quoted(file),
            "make-model --preset tiny-256 --layers 1 --out " + shell_quoted(out_dir_ + "/m.gguf") + " --vocab " + shell_quoted(file)};
  }
  std::vector<std::string> every_file_command(const std::string& file) const {
    auto all = model_commands(file);
    for (auto& c : file_commands(file)) all.push_back(c);
    return all;
  }

  const BadFiles* files_ = nullptr;
  std::string out_dir_;
};

TEST_F(CliBadInput, FilesThatAreNotGguf) {
  const std::pair<std::string, std::string> cases[] = {
      {files_->missing, files_->missing + ": cannot open: No such file or directory"},
      {files_->dir, files_->dir + ": not a regular file"},
      {files_->empty, files_->empty + ": empty file, not a GGUF file"},
      {files_->truncated_header, files_->truncated_header + ": "},
      {files_->truncated_data, "runs past its end"},
  };
  for (const auto& [file, message] : cases) {
    for (const std::string& command : every_file_command(file)) expect_failure(command, 1, message);
  }
  // Truncations say where.
  expect_failure("info " + shell_quoted(files_->truncated_header), 1, " at byte ");
  expect_failure("info " + shell_quoted(files_->truncated_data), 1, "truncated file?");
}

TEST_F(CliBadInput, ModelsBraidCannotRun) {
  const std::pair<std::string, std::string> cases[] = {
      {files_->unsupported_type, "unsupported tensor type iq4_nl for blk.0.attn_q.weight"},
      {files_->wrong_shape, "tensor token_embd.weight has shape [64, 512], expected [128, n_vocab]"},
      {files_->odd_head_size, "head size 1 must be even"},
  };
  for (const auto& [file, message] : cases) {
    for (const std::string& command : model_commands(file)) expect_failure(command, 1, file + ": ");
    for (const std::string& command : model_commands(file)) expect_failure(command, 1, message);
    // The container and the vocabulary are fine: these commands work.
    const CliResult info = run_cli("info " + shell_quoted(file));
    EXPECT_EQ(info.exit_code, 0) << info.err;
    const CliResult tokens = run_cli("tokenize -m " + shell_quoted(file) + " -p 'Once upon a time'");
    EXPECT_EQ(tokens.exit_code, 0) << tokens.err;
    EXPECT_FALSE(tokens.out.empty());
  }
  EXPECT_TRUE(contains(run_cli("info " + shell_quoted(files_->unsupported_type)).out, "iq4_nl"));
}

TEST_F(CliBadInput, ModelWithoutVocabulary) {
  const std::string m = "-m " + shell_quoted(files_->no_vocab);
  expect_failure("generate " + m + " -p hi -n 1 --backend cpu", 1, "tokenizer.ggml.tokens");
  expect_failure("tokenize " + m + " -p hi", 1, "tokenizer.ggml.tokens");
  expect_failure("make-model --preset tiny-256 --out " + shell_quoted(out_dir_ + "/m.gguf") + " --vocab " +
                     shell_quoted(files_->no_vocab),
                 1, "tokenizer.ggml.tokens");
}

TEST_F(CliBadInput, ImpossibleOptions) {
  const std::string stories = shell_quoted(test::fixture("stories260K.gguf"));
  const std::string out = " --out " + shell_quoted(out_dir_ + "/x.gguf");
  const std::string trace_out = " --out " + shell_quoted(out_dir_ + "/t.json") + " --svg " + shell_quoted(out_dir_ + "/t.svg");
  struct Case {
    std::string args;
    int code;
    std::string part;
  };
  const Case cases[] = {
      {"", 2, "A subcommand is required"},
      {"bogus --x 1", 2, "unknown command 'bogus'"},
      {"version --bogus", 2, "--bogus"},
      {"version extra", 2, "extra"},
      // bench
      {"bench --preset tiny-256 --streams 0", 2, "--streams"},
      {"bench --preset tiny-256 -p -1", 2, "-p"},
      {"bench --preset tiny-256 -n -5", 2, "-n"},
      {"bench --preset tiny-256 -r 0", 2, "-r"},
      {"bench --preset tiny-256 --layers -3", 2, "--layers"},
      {"bench --preset tiny-256 --ctx 0", 2, "--ctx"},
      {"bench --preset tiny-256 --graph 2", 2, "--graph"},
      {"bench --preset tiny-256 -o xml", 2, "--output"},
      {"bench --preset tiny-256 --backend tpu", 2, "--backend"},
      {"bench --preset tiny-256 --policy bogus", 1, "unknown policy 'bogus' (known: serial, branch"},
      {"bench --preset no-such-model", 1, "unknown preset 'no-such-model' (known: "},
      {"bench --preset tiny-256 --type q9_9", 1, "unknown weight type 'q9_9'"},
      {"bench --preset tiny-256 --ctx 4 -p 8 -n 0 --backend cpu", 1, "--ctx 4 is shorter than the longest test (8 tokens)"},
      // plan
      {"plan --streams 0", 2, "--streams"},
      {"plan --batch 0", 2, "--batch"},
      {"plan --batch -2", 2, "--batch"},
      {"plan --policy bogus", 1, "unknown policy 'bogus'"},
      {"plan --preset no-such-model", 1, "unknown preset 'no-such-model'"},
      // trace
      {"trace --preset tiny-256 --streams 0" + trace_out, 2, "--streams"},
      {"trace --preset tiny-256 --batch 0" + trace_out, 2, "--batch"},
      {"trace --preset tiny-256 --prompt -1" + trace_out, 2, "--prompt"},
      {"trace --preset tiny-256 --backend tpu" + trace_out, 2, "--backend"},
      {"trace --preset tiny-256 --cache-type f8" + trace_out, 2, "--cache-type"},
      {"trace --preset tiny-256 --policy bogus" + trace_out, 1, "unknown policy 'bogus'"},
      {"trace --preset no-such-model" + trace_out, 1, "unknown preset 'no-such-model'"},
      {"trace --preset tiny-256 --layers 1 --ctx 8 --prompt 16 --backend cpu" + trace_out, 1, "context"},
      {"trace --preset tiny-256 -m " + stories + trace_out, 1, "exactly one of -m FILE or --preset NAME"},
      // generate
      {"generate -m " + stories + " -p hi -n -1", 2, "-n"},
      {"generate -m " + stories + " -p hi --streams 0", 2, "--streams"},
      {"generate -m " + stories + " -p hi --top-p 2", 2, "--top-p"},
      {"generate -m " + stories + " -p hi --ctx 0", 2, "--ctx"},
      {"generate -m " + stories + " -p hi --backend tpu", 2, "--backend"},
      {"generate -m " + stories + " -p hi --cache-type q4_0", 2, "--cache-type"},
      {"generate -m " + stories, 2, "--prompt"},
      {"generate -m " + stories + " -p hi --policy bogus --backend cpu", 1, "unknown policy 'bogus'"},
      {"generate -m " + stories + " -p 'Once upon a time there was' --ctx 3 --backend cpu", 1, "context"},
      {"generate -m " + stories + " -p hi --chat hi", 2, "--chat"},
      {"generate -m " + stories + " -p hi --system 'Be brief.'", 2, "--chat"},
      {"generate -m " + stories + " --chat hi --backend cpu", 1, "no chat template"},
      {"generate -m " + stories + " --chat hi --chat-template bogus --backend cpu", 1, "unknown chat template 'bogus'"},
      {"generate -m " + stories + " --chat hi --chat-template chatml --ctx 8 --backend cpu", 1, "conversation is full"},
      // chat
      {"chat -p hi", 2, "--model"},
      {"chat -m " + stories + " --backend cpu </dev/null", 1, "no chat template"},
      {"chat -m " + stories + " --chat-template bogus --backend cpu </dev/null", 1, "unknown chat template 'bogus'"},
      {"chat -m " + stories + " --chat-template chatml -n -1 </dev/null", 2, "-n"},
      // tokenize, info
      {"tokenize -p hi", 2, "--model"},
      {"tokenize -m " + stories, 2, "--prompt"},
      {"info", 2, "file"},
      // make-model
      {"make-model --preset tiny-256", 2, "--out"},
      {"make-model --preset tiny-256 --layers 0" + out, 2, "--layers"},
      {"make-model --preset tiny-256 --layers -1" + out, 2, "--layers"},
      {"make-model --preset tiny-256 --type q9_9" + out, 2, "--type"},
      {"make-model --preset no-such-model" + out, 1, "unknown preset 'no-such-model'"},
      {"make-model --preset tiny-256 --layers 1 --out /nonexistent/braid/m.gguf", 1, "/nonexistent/braid/m.gguf"},
      {"make-model --preset tiny-256 --layers 1 --out " + shell_quoted(out_dir_), 1, "cannot rename"},
      // stress
      {"stress --preset tiny-256 --steps 0", 2, "--steps"},
      {"stress --preset tiny-256 --check-every 0", 2, "--check-every"},
      {"stress --preset tiny-256 --streams 0", 2, "--streams"},
      {"stress --preset tiny-256 --backend tpu", 2, "--backend"},
      {"stress --preset tiny-256 --policy bogus", 1, "unknown policy 'bogus'"},
      {"stress --preset no-such-model", 1, "unknown preset 'no-such-model'"},
  };
  for (const Case& c : cases) expect_failure(c.args, c.code, c.part);
}

TEST_F(CliBadInput, OutputPathsThatCannotBeWritten) {
  // The SVG cannot be written: the trace JSON, written first, must not stay behind.
  const std::string json = out_dir_ + "/t.json";
  expect_failure("trace --preset tiny-256 --layers 1 --ctx 8 --prompt 2 --backend cpu --out " + shell_quoted(json) +
                     " --svg /nonexistent/braid/t.svg",
                 1, "cannot write /nonexistent/braid/t.svg");
  EXPECT_FALSE(fs::exists(json));
  expect_failure("plan --preset tiny-256 --dot /nonexistent/braid/plan.dot", 1, "cannot write /nonexistent/braid/plan.dot");
}

TEST_F(CliBadInput, CudaWhereThereIsNone) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  for (const std::string& command : std::vector<std::string>{"bench --preset tiny-256 --backend cuda",
                                     "generate -m " + shell_quoted(test::fixture("stories260K.gguf")) + " -p hi --backend cuda",
                                     "stress --preset tiny-256 --backend cuda",
                                     "trace --preset tiny-256 --backend cuda --out " + shell_quoted(out_dir_ + "/t.json") +
                                         " --svg " + shell_quoted(out_dir_ + "/t.svg")}) {
    expect_failure(command, 1, "backend cuda: ");
  }
}

}  // namespace
}  // namespace braid
