// Fuzz target: the tokenizer with the default model's vocabulary (loaded once).
//
// The first byte picks the mode, the rest is the input:
// - text (even first byte): encode with the flags of bits 1-2. Every id is in the vocabulary, and
//   without BOS/EOS valid UTF-8 round-trips byte for byte (special-token text comes back verbatim
//   with render_special) except for the bytes the vocabulary has no token for: llama.cpp drops
//   those, and so do we (SmolLM2 lacks ASCII control bytes such as 0x04, and 0xF1).
// - ids (odd first byte): the rest read as int32 ids, any value (a client's /detokenize or a
//   completions prompt of token ids): decode, and the streaming detokenizer's chunks are valid
//   UTF-8 and concatenate to to_valid_utf8(decode) (streaming_detokenizer.hpp).
// The model: $TROUPE_FUZZ_MODEL, else the default model of the build.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "fuzz/fuzz_check.hpp"
#include "memory/gguf_file.hpp"
#include "tokenizer/byte_unicode.hpp"
#include "tokenizer/streaming_detokenizer.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace {

using namespace troupe;

std::optional<tokenizer> g_tok;
std::string g_dropped_bytes;  // single bytes that encode to nothing

// `text` without the bytes the vocabulary cannot represent.
std::string representable(std::string_view text) {
  std::string out;
  for (char c : text)
    if (g_dropped_bytes.find(c) == std::string::npos) out += c;
  return out;
}

void fuzz_text(std::string_view text, uint8_t flags) {
  const bool add_special = flags & 2;
  const bool parse_special = flags & 4;
  const auto ids = g_tok->encode(text, add_special, parse_special);
  for (auto id : ids) FUZZ_CHECK(g_tok->is_valid(id));
  if (!add_special && utf8::is_valid_utf8(text)) {
    FUZZ_CHECK(g_tok->decode(ids, /*render_special=*/true) == representable(text));
  }
}

void fuzz_ids(std::string_view rest, uint8_t flags) {
  std::vector<int32_t> ids(rest.size() / sizeof(int32_t));
  if (!ids.empty()) std::memcpy(ids.data(), rest.data(), ids.size() * sizeof(int32_t));
  const bool render_special = flags & 2;
  const std::string whole = g_tok->decode(ids, render_special);
  streaming_detokenizer detok(*g_tok, render_special);
  std::string streamed;
  for (auto id : ids) {
    auto chunk = detok.push(id);
    FUZZ_CHECK(utf8::is_valid_utf8(chunk));
    streamed += chunk;
  }
  auto tail = detok.finish();
  FUZZ_CHECK(utf8::is_valid_utf8(tail));
  streamed += tail;
  FUZZ_CHECK(detok.pending_bytes() == 0);
  FUZZ_CHECK(streamed == utf8::to_valid_utf8(whole));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* env = std::getenv("TROUPE_FUZZ_MODEL");
  const std::string path = env && *env ? env : TROUPE_DEFAULT_MODEL;
  auto file = gguf_file::open(path);
  if (!file) {
    std::fprintf(stderr, "fuzz_tokenizer: %s (run `make model`)\n", file.message().c_str());
    std::exit(2);
  }
  auto tok = tokenizer::from_gguf(*file);
  if (!tok) {
    std::fprintf(stderr, "fuzz_tokenizer: %s\n", tok.message().c_str());
    std::exit(2);
  }
  g_tok = std::move(*tok);
  // A byte is representable when its byte-level character (GPT-2's byte-to-unicode map) is a
  // token: that is the last resort of BPE for any piece of text.
  std::unordered_set<std::string_view> texts;
  for (int32_t id = 0; id < g_tok->n_vocab(); ++id) texts.insert(g_tok->token_text(id));
  for (int b = 0; b < 256; ++b)
    if (!texts.contains(byte_unicode::text_of_byte(static_cast<uint8_t>(b))))
      g_dropped_bytes += static_cast<char>(b);
  std::fprintf(stderr, "fuzz_tokenizer: %zu bytes have no token\n", g_dropped_bytes.size());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (flags & 1)
    fuzz_ids(rest, flags);
  else
    fuzz_text(rest, flags);
  return 0;
}
