// Tokenizers: text to token ids and back, from the vocabulary a GGUF file carries.
//
// A GGUF model names its tokenizer in tokenizer.ggml.model: "llama" is SentencePiece
// (SPM, LLaMA 1/2, Mistral, Mixtral, TinyStories), "gpt2" is byte-level BPE (LLaMA 3,
// Qwen2, GPT-2, SmolLM2).
// The vocabulary (pieces, scores, types, special ids) is loaded once into a Vocabulary;
// make_tokenizer picks the algorithm by that name, so another algorithm is one more
// class beside tokenizer_spm.cpp and one more line in the factory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace braid {

class GgufFile;

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,      // BOS, EOS, ...: no text
  UserDefined = 4,  // added tokens, shown as they are
  Unused = 5,
  Byte = 6,         // "<0x0A>": one raw byte
};

struct Vocabulary {
  std::string model;  // tokenizer.ggml.model: "llama", "gpt2", ...
  std::vector<std::string> tokens;
  std::vector<float> scores;     // merge priority (SPM): higher merges first
  std::vector<TokenType> types;
  int32_t bos_id = -1;  // -1: none
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  int32_t eot_id = -1;  // tokenizer.ggml.eot_token_id: end of a chat turn
  // Tokens that end a chat turn besides EOS: eot_id and the control or user-defined pieces
  // "<|im_end|>", "<|eot_id|>", "<end_of_turn>", ... (end_of_turn_ids; the Tokenizer fills it).
  std::vector<int32_t> end_of_turn;
  bool add_bos = true;           // encode() callers usually want BOS first
  bool add_space_prefix = true;  // SPM: a space before the text, as SentencePiece does
  // Byte-level BPE ("gpt2"): the pre-tokenizer name (tokenizer.ggml.pre) and the merges
  // ("left right", highest priority first; tokenizer.ggml.merges).
  std::string pre;
  std::vector<std::string> merges;

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  // The id of a piece, or -1 (the first id when a piece repeats). Needs index(), which
  // load_vocabulary and every Tokenizer call; call it again after changing tokens.
  int32_t find(std::string_view piece) const;
  void index();
  TokenType type(int32_t id) const;  // throws braid::Error for an id outside the vocabulary
  // Throws braid::Error when sizes disagree or a special id lies outside the vocabulary.
  void check() const;

 private:
  // Transparent, so that find() looks a string_view up without copying it to a string.
  struct PieceHash {
    using is_transparent = void;
    size_t operator()(std::string_view piece) const { return std::hash<std::string_view>{}(piece); }
  };
  std::unordered_map<std::string, int32_t, PieceHash, std::equal_to<>> ids_;
  bool indexed_ = false;
};

// The ids that end a chat turn in `vocab` (indexed): its eot_id and the pieces chat
// models end a turn with, where the vocabulary holds them as control or user-defined tokens.
std::vector<int32_t> end_of_turn_ids(const Vocabulary& vocab);

// Reads the tokenizer.* keys. Throws braid::Error when the file has no vocabulary
// (tokenizer.ggml.tokens) or it is inconsistent.
Vocabulary load_vocabulary(const GgufFile& file);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids of `text`, with the vocabulary's BOS first when add_bos (and it has one).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;
  // The bytes one token stands for in running text: control tokens give "", byte
  // tokens their byte (so a multi-byte character may span several tokens).
  virtual std::string token_to_piece(int32_t id) const = 0;
  // The text of a whole sequence: the pieces joined, minus what encode() added (the
  // SPM space prefix), so that decode(encode(text, b)) == text.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;

  const Vocabulary& vocabulary() const { return vocab_; }
  // EOS, or a token that ends a chat turn (Vocabulary::end_of_turn).
  bool is_end_of_generation(int32_t id) const;
  // Like encode(), but where `text` writes out the piece of a control, user-defined or
  // unknown token ("<|im_start|>", "<s>"), that token's id stands for it (as llama.cpp
  // parses special tokens), as chat templates need;
  // the text between such pieces goes through encode() one stretch at a time.
  std::vector<int32_t> encode_with_special(std::string_view text, bool add_bos) const;

 protected:
  explicit Tokenizer(Vocabulary vocab);
  Vocabulary vocab_;
};

// The tokenizer vocab.model names; throws braid::Error for algorithms braid lacks.
std::unique_ptr<Tokenizer> make_tokenizer(Vocabulary vocab);
std::unique_ptr<Tokenizer> load_tokenizer(const GgufFile& file);

// Makers of each algorithm (used by make_tokenizer; one file each).
std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocabulary vocab);
// Byte-level BPE: throws braid::Error for an unknown pre-tokenizer or a merge that names
// a piece the vocabulary lacks.
std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocabulary vocab);

}  // namespace braid
