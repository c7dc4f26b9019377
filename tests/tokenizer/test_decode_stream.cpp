// decode(encode(s)) == s, and the streaming detokenizer: chunks are always valid UTF-8 and add up
// to decode().
#include <catch2/catch.hpp>

#include "oracle_data.hpp"
#include "tokenizer/streaming_detokenizer.hpp"
#include "tokenizer/utf8.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

// Feeds `ids` one by one; checks every chunk is valid UTF-8; returns the concatenation.
std::string stream(const tokenizer& tok, const std::vector<int32_t>& ids, bool render_special) {
  streaming_detokenizer detok(tok, render_special);
  std::string all;
  for (int32_t id : ids) {
    const std::string chunk = detok.push(id);
    INFO("chunk after id " << id);
    CHECK(utf8::is_valid_utf8(chunk));
    all += chunk;
  }
  const std::string tail = detok.finish();
  CHECK(utf8::is_valid_utf8(tail));
  CHECK(detok.pending_bytes() == 0);
  return all + tail;
}

// The byte-level tokens spelling `bytes`, one token per byte (what a model may emit).
std::vector<int32_t> byte_tokens(const tokenizer& tok, std::string_view bytes) {
  std::vector<int32_t> ids;
  for (char b : bytes) {
    // The vocabulary holds every single byte (as its mapped character); find it by decoding.
    for (int32_t id = 0; id < tok.n_vocab(); ++id) {
      if (tok.token_piece(id, false) == std::string_view(&b, 1)) {
        ids.push_back(id);
        break;
      }
    }
  }
  REQUIRE(ids.size() == bytes.size());
  return ids;
}

}  // namespace

// True when every byte of `text` has a single-byte vocabulary entry. SmolLM2's vocabulary lacks a
// few control bytes (0x04, 0x06, 0x13, 0x14, 0x16, 0x1D); llama.cpp drops them when encoding, and
// so do we (the oracle agrees), so text holding them cannot round-trip.
bool bytes_all_in_vocabulary(const tokenizer& tok, std::string_view text) {
  static const std::vector<bool> present = [&] {
    std::vector<bool> p(256, false);
    for (int32_t id = 0; id < tok.n_vocab(); ++id) {
      const auto piece = tok.token_piece(id, false);
      if (piece.size() == 1 && tok.kind_of(id) == token_kind::normal) p[static_cast<uint8_t>(piece[0])] = true;
    }
    return p;
  }();
  for (char b : text)
    if (!present[static_cast<uint8_t>(b)]) return false;
  return true;
}

TEST_CASE("decode(encode(s)) == s for every valid UTF-8 corpus string", "[tokenizer][decode]") {
  const auto& tok = default_tokenizer();
  size_t checked = 0, skipped = 0;
  for (const auto& c : oracle().cases) {
    if (!c.valid_utf8) continue;
    if (!bytes_all_in_vocabulary(tok, c.text)) {
      ++skipped;
      continue;
    }
    INFO(c.name);
    CHECK(tok.decode(tok.encode(c.text, false, true), true) == c.text);
    CHECK(tok.decode(tok.encode(c.text, false, false), false) == c.text);
    ++checked;
  }
  CHECK(checked >= 250);
  CHECK(skipped <= 1);  // only the string of all ASCII control characters
}

TEST_CASE("invalid UTF-8 is encoded as llama.cpp reads it: each bad byte becomes U+FFFD", "[tokenizer][decode]") {
  const auto& tok = default_tokenizer();
  CHECK(tok.decode(tok.encode("a\xff" "b", false, false), false) == "a\xEF\xBF\xBD" "b");
  CHECK(tok.decode(tok.encode("\xe4\xb8", false, false), false) == "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("decode hides control tokens unless asked to render them", "[tokenizer][decode]") {
  const auto& tok = default_tokenizer();
  const auto ids = tok.encode("<|im_start|>user\nhi<|im_end|>", false, true);
  CHECK(tok.decode(ids, true) == "<|im_start|>user\nhi<|im_end|>");
  CHECK(tok.decode(ids, false) == "user\nhi");
  const std::vector<int32_t> bad = {-1, tok.n_vocab(), 1 << 30};
  CHECK(tok.decode(bad, true).empty());
}

TEST_CASE("streaming output equals decode() and every chunk is valid UTF-8", "[tokenizer][stream]") {
  const auto& tok = default_tokenizer();
  for (const auto& c : oracle().cases) {
    INFO(c.name);
    CHECK(stream(tok, c.ids_special, true) == utf8::to_valid_utf8(tok.decode(c.ids_special, true)));
    CHECK(stream(tok, c.ids_special, false) == utf8::to_valid_utf8(tok.decode(c.ids_special, false)));
  }
}

TEST_CASE("a character split across byte tokens is held back until complete", "[tokenizer][stream]") {
  const auto& tok = default_tokenizer();
  const std::string text = "a😀中é!";  // 1 + 4 + 3 + 2 + 1 bytes
  const auto ids = byte_tokens(tok, text);
  streaming_detokenizer detok(tok);
  std::vector<std::string> chunks;
  for (int32_t id : ids) chunks.push_back(detok.push(id));
  CHECK(detok.finish().empty());
  const std::vector<std::string> expected = {"a", "", "", "", "😀", "", "", "中", "", "é", "!"};
  CHECK(chunks == expected);
}

TEST_CASE("bytes that can never form a character come out as U+FFFD, a cut-off tail at finish()", "[tokenizer][stream]") {
  const auto& tok = default_tokenizer();
  // A lone 0x80 is never valid; "\xF0\x9F\x98" is a cut-off emoji; "\xC3" waits, then "("
  // proves it bad.
  streaming_detokenizer detok(tok);
  std::string out;
  for (int32_t id : byte_tokens(tok, "x\x80" "y\xc3")) out += detok.push(id);
  CHECK(out == "x\xEF\xBF\xBDy");
  CHECK(detok.pending_bytes() == 1);
  for (int32_t id : byte_tokens(tok, "(\xF0\x9F\x98")) out += detok.push(id);
  CHECK(out == "x\xEF\xBF\xBDy\xEF\xBF\xBD(");
  CHECK(detok.finish() == "\xEF\xBF\xBD");
  CHECK(detok.push(byte_tokens(tok, "z")[0]) == "z");  // reusable after finish()
}
