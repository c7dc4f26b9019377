#include "engine/chat_prompt.hpp"

#include <algorithm>

#include "engine/chat_template.hpp"

namespace troupe::engine {

chat_prompt_builder& chat_prompt_builder::add(std::string_view s, bool parse_special) {
  if (s.empty()) return *this;
  if (!p_.spans.empty() && p_.spans.back().parse_special == parse_special)
    p_.spans.back().length += s.size();
  else
    p_.spans.push_back({p_.text.size(), s.size(), parse_special});
  p_.text.append(s);
  return *this;
}

void chat_prompt_builder::strip_since(std::size_t from) {
  const auto [lead, keep] = python_strip_bounds(std::string_view(p_.text).substr(from));
  const std::size_t begin = from + lead, end = begin + keep;
  // The text becomes text[0, from) + text[begin, end); each span keeps its parts of those two
  // ranges, the second moved left to follow the first.
  std::vector<text_span> spans;
  // [a, b) of the old text lands at a - shift; parts arrive in order, so neighbours of the same
  // kind merge.
  auto keep_part = [&spans](std::size_t a, std::size_t b, std::size_t shift, bool special) {
    if (b <= a) return;
    if (!spans.empty() && spans.back().parse_special == special)
      spans.back().length += b - a;
    else
      spans.push_back({a - shift, b - a, special});
  };
  for (const text_span& s : p_.spans) {
    const std::size_t a = s.offset, b = s.offset + s.length;
    keep_part(a, std::min(b, from), 0, s.parse_special);
    keep_part(std::max(a, begin), std::min(b, end), lead, s.parse_special);
  }
  p_.text.erase(end);
  p_.text.erase(from, lead);
  p_.spans = std::move(spans);
}

}  // namespace troupe::engine
