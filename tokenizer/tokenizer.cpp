#include "tokenizer/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <optional>

#include "tokenizer/bpe_model.hpp"
#include "tokenizer/byte_unicode.hpp"
#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/special_tokens.hpp"
#include "tokenizer/unicode_props.hpp"
#include "tokenizer/utf8.hpp"

namespace troupe {

struct tokenizer::impl {
  std::vector<std::string> tokens;
  std::vector<token_kind> kinds;
  std::vector<std::string> merges;
  std::vector<std::string> pieces;  // what each token decodes to (CONTROL/UNKNOWN: their text)
  std::vector<bool> end_of_generation;
  std::string pre_name;
  pre_tokenizer_info pre{};
  int32_t bos = -1, eos = -1, eot = -1;
  bool add_bos = false, add_eos = false;
  // Built last: both view the strings above, which never move once built (impl is pinned in a
  // shared_ptr and not copyable).
  std::optional<bpe_model> bpe;
  std::optional<special_token_matcher> specials;

  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  void encode_raw(std::string_view text, std::vector<int32_t>& out) const;
};

namespace {

// Texts llama.cpp recognises as ending a turn or a document (llama_vocab's end-of-generation
// detection); it also marks them CONTROL.
constexpr std::array<std::string_view, 12> eog_texts = {
    "<|eot_id|>",  "<|im_end|>", "<|end|>",   "<|return|>",      "<|call|>", "<end_of_turn>",
    "<|endoftext|>", "<|eom_id|>", "<EOT>",   "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
};
constexpr std::array<std::string_view, 9> eot_texts = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "<end_of_utterance>",
};
// FIM tokens that llama.cpp also treats as end of generation.
constexpr std::array<std::string_view, 3> fim_pad_texts = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>"};
constexpr std::array<std::string_view, 5> fim_rep_texts = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                                           "<REPO>", "<reponame>"};
constexpr std::array<std::string_view, 1> fim_sep_texts = {"<|file_sep|>"};

template <size_t N>
bool is_one_of(std::string_view s, const std::array<std::string_view, N>& list) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

// What a NORMAL token decodes to: each code point back to its byte. A code point that stands
// for no byte is written the way llama.cpp writes it, so that output stays comparable.
std::string unmap_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto cpts = utf8::decode_code_points_lenient(text);
  for (uint32_t c : cpts) {
    const int b = byte_unicode::byte_of_code_point(c);
    if (b >= 0) {
      out += static_cast<char>(b);
      continue;
    }
    std::string utf;
    utf8::append_code_point(utf, std::min(c, unicode::max_code_point));
    out += "[UNK_BYTE_0x";
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned char u : utf) {
      out += hex[u >> 4];
      out += hex[u & 15];
    }
    out += std::string(text) + "]";
  }
  return out;
}

}  // namespace

result<tokenizer> tokenizer::from_gguf(const gguf_file& file) {
  auto spec = read_tokenizer_spec(file);
  if (!spec) return spec.err();
  return from_spec(std::move(spec).value());
}

result<tokenizer> tokenizer::from_spec(tokenizer_spec spec) {
  const std::string where = spec.source.empty() ? "tokenizer" : spec.source;
  if (spec.model != "gpt2")
    return error{where + ": tokenizer model '" + spec.model +
                 "' (tokenizer.ggml.model) is not supported; only 'gpt2' (byte-level BPE) is"};
  auto pre = find_pre_tokenizer(spec.pre);
  if (!pre) return error{where + ": " + pre.message()};
  const size_t n = spec.tokens.size();
  if (n == 0) return error{where + ": tokenizer.ggml.tokens is empty"};
  if (n > static_cast<size_t>(INT32_MAX)) return error{where + ": tokenizer.ggml.tokens is too large"};
  if (!spec.token_kinds.empty() && spec.token_kinds.size() != n)
    return error{where + ": tokenizer.ggml.token_type has " + std::to_string(spec.token_kinds.size()) +
                 " entries but there are " + std::to_string(n) + " tokens"};
  if (spec.merges.empty()) return error{where + ": tokenizer.ggml.merges is missing or empty (required for gpt2)"};

  auto p = std::make_shared<impl>();
  p->tokens = std::move(spec.tokens);
  p->kinds = spec.token_kinds.empty() ? std::vector<token_kind>(n, token_kind::normal)
                                      : std::move(spec.token_kinds);
  p->merges = std::move(spec.merges);
  p->pre_name = spec.pre.empty() ? "default" : spec.pre;
  p->pre = pre.value();
  for (size_t i = 0; i < n; ++i)
    if (p->tokens[i].empty()) p->tokens[i] = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp

  // Ids from the file that fall outside the vocabulary are ignored, as llama.cpp does.
  auto id_or = [n](const std::optional<int64_t>& v, int32_t fallback) -> int32_t {
    return v && *v >= 0 && static_cast<uint64_t>(*v) < n ? static_cast<int32_t>(*v) : fallback;
  };
  // llama.cpp's defaults for gpt2 vocabularies without BOS/EOS keys.
  const int32_t gpt2_default = n > 11 ? 11 : -1;
  p->bos = id_or(spec.bos_id, gpt2_default);
  p->eos = id_or(spec.eos_id, gpt2_default);
  p->add_bos = spec.add_bos.value_or(p->pre.forces_add_bos);
  p->add_eos = spec.add_eos.value_or(false);

  // End-of-generation tokens, found by text the way llama.cpp finds them; any of them that is
  // not CONTROL becomes CONTROL (which also changes how special-token parsing treats it).
  p->end_of_generation.assign(n, false);
  p->eot = id_or(spec.eot_id, -1);
  int32_t eom = id_or(spec.eom_id, -1);
  int32_t fim_pad = id_or(spec.fim_pad_id, -1), fim_rep = id_or(spec.fim_rep_id, -1),
          fim_sep = id_or(spec.fim_sep_id, -1);
  auto make_control = [&](size_t i) { p->kinds[i] = token_kind::control; };
  for (size_t i = 0; i < n; ++i) {
    const std::string_view t = p->tokens[i];
    const auto id = static_cast<int32_t>(i);
    if (p->eot < 0 && is_one_of(t, eot_texts)) p->eot = id, make_control(i);
    if (eom < 0 && t == "<|eom_id|>") eom = id, make_control(i);
    if (fim_pad < 0 && is_one_of(t, fim_pad_texts)) fim_pad = id, make_control(i);
    if (fim_rep < 0 && is_one_of(t, fim_rep_texts)) fim_rep = id, make_control(i);
    if (fim_sep < 0 && is_one_of(t, fim_sep_texts)) fim_sep = id, make_control(i);
    if (is_one_of(t, eog_texts)) p->end_of_generation[i] = true, make_control(i);
  }
  for (int32_t id : {p->eos, p->eot, eom, fim_pad, fim_rep, fim_sep})
    if (id >= 0) p->end_of_generation[id] = true;

  p->pieces.resize(n);
  for (size_t i = 0; i < n; ++i) {
    switch (p->kinds[i]) {
      case token_kind::normal: p->pieces[i] = unmap_bytes(p->tokens[i]); break;
      case token_kind::control:
      case token_kind::unknown:
      case token_kind::user_defined: p->pieces[i] = p->tokens[i]; break;
      default: break;  // BYTE/UNUSED/UNDEFINED render as nothing in byte-level BPE
    }
  }

  p->bpe.emplace(p->tokens, p->merges, p->pre.ignore_merges);
  p->specials.emplace(p->tokens, p->kinds);
  return tokenizer(std::move(p));
}

void tokenizer::impl::encode_raw(std::string_view text, std::vector<int32_t>& out) const {
  const std::vector<uint32_t> cpts = utf8::decode_code_points_lenient(text);
  const std::vector<size_t> lengths = split_into_pieces(pre.kind, cpts);
  std::string piece_bytes, mapped;
  size_t start = 0;
  for (size_t len : lengths) {
    piece_bytes.clear();
    for (size_t i = start; i < start + len; ++i) utf8::append_code_point(piece_bytes, cpts[i]);
    mapped.clear();
    for (char b : piece_bytes) mapped += byte_unicode::text_of_byte(static_cast<uint8_t>(b));
    bpe->encode_piece(mapped, out);
    start += len;
  }
}

std::vector<int32_t> tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const text_span whole{0, text.size(), parse_special};
  return encode(text, add_special, std::span<const text_span>(&whole, 1));
}

std::vector<int32_t> tokenizer::encode(std::string_view text, bool add_special,
                                       std::span<const text_span> spans) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && impl_->add_bos && impl_->bos >= 0) out.push_back(impl_->bos);
  const std::vector<text_fragment> fragments = impl_->specials->partition(text, spans);
  for (size_t i = 0; i < fragments.size(); ++i) {
    const text_fragment& f = fragments[i];
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    // Raw text runs on across span boundaries: the pre-tokenizer must see it whole, as it would
    // in the unsplit text.
    size_t end = f.offset + f.length;
    while (i + 1 < fragments.size() && fragments[i + 1].token < 0 && fragments[i + 1].offset == end)
      end += fragments[++i].length;
    impl_->encode_raw(text.substr(f.offset, end - f.offset), out);
  }
  if (add_special && impl_->add_eos && impl_->eos >= 0) out.push_back(impl_->eos);
  return out;
}

std::string_view tokenizer::token_piece(int32_t id, bool render_special) const {
  if (!is_valid(id)) return {};
  const token_kind k = impl_->kinds[id];
  if (!render_special && (k == token_kind::control || k == token_kind::unknown)) return {};
  return impl_->pieces[id];
}

std::string tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  for (int32_t id : ids) out += token_piece(id, render_special);
  return out;
}

std::string_view tokenizer::token_text(int32_t id) const {
  TROUPE_ASSERT(is_valid(id));
  return impl_->tokens[id];
}

token_kind tokenizer::kind_of(int32_t id) const {
  TROUPE_ASSERT(is_valid(id));
  return impl_->kinds[id];
}

int32_t tokenizer::n_vocab() const { return static_cast<int32_t>(impl_->tokens.size()); }
int32_t tokenizer::bos_id() const { return impl_->bos; }
int32_t tokenizer::eos_id() const { return impl_->eos; }
int32_t tokenizer::eot_id() const { return impl_->eot; }
bool tokenizer::adds_bos() const { return impl_->add_bos; }
bool tokenizer::adds_eos() const { return impl_->add_eos; }
const std::string& tokenizer::pre_tokenizer_name() const { return impl_->pre_name; }
bool tokenizer::is_end_of_generation(int32_t id) const {
  return is_valid(id) && impl_->end_of_generation[id];
}

}  // namespace troupe
