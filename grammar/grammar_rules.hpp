// grammar_rules: a context-free grammar over bytes, as parsed from GBNF text (llama.cpp's
// grammar syntax), ready for grammar_automaton.
//
// GBNF accepted (see docs/ARCHITECTURE.md, "Structured outputs"):
//   name ::= alternatives          one rule per line; `root` is the start rule
//   a b  |  c                      sequence, alternation (a line starting with `|` continues)
//   ( ... )                        group, may span lines
//   "lit\n\"\x41\u00e9"            string literal; escapes \n \r \t \\ \" \' \[ \] \- \^ \/
//                                  \xHH \uHHHH \UHHHHHHHH
//   [a-z_] [^"\\]  .               character classes over code points, negation, any character
//   x*  x+  x?  x{m}  x{m,}  x{m,n}  repetition
//   # comment                      to the end of the line
// Characters are Unicode code points written as UTF-8; classes are compiled into alternations
// of byte-range sequences (utf8_ranges.hpp), so every terminal here matches one byte.
//
// Layout (as llama.cpp lays out its rules): each alternative of each rule is a run of elements
// closed by an `end` element; rule_alternatives[r] lists the index of each alternative's first
// element. Repetition, groups and classes become generated rules named "<rule>/<n>".
//
// Errors (values, never exceptions): syntax errors name line:column and what was expected; an
// undefined rule names the line:column of its first use; a missing `root`; left recursion
// (a rule that can reach itself without reading a byte), which the automaton could not expand;
// a grammar over `limits.max_elements` elements after expanding repetitions.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/result.hpp"

namespace troupe {

// Bounds that keep a hostile or accidental grammar from taking unbounded time or memory.
struct grammar_limits {
  size_t max_text_bytes = 1 << 20;      // GBNF source
  size_t max_elements = 1 << 18;        // after expanding x{m,n}
  size_t max_stack_depth = 512;         // nesting (e.g. JSON depth) the automaton follows
  size_t max_stacks_per_state = 4096;   // ambiguity the automaton tolerates at one position
  size_t max_states = 1 << 15;          // distinct automaton states kept (each ~1 KiB + stacks)
  size_t max_cached_masks = 1024;       // token masks kept (each n_vocab / 8 bytes: 6 KiB)
};

enum class grammar_element_kind : uint8_t {
  end,    // closes an alternative
  bytes,  // one byte from byte_sets[value]
  rule,   // rule number `value`
};

struct grammar_element {
  grammar_element_kind kind = grammar_element_kind::end;
  uint32_t value = 0;
};

struct grammar_rules {
  std::vector<grammar_element> elements;
  std::vector<std::vector<uint32_t>> rule_alternatives;  // per rule: first element of each alt
  std::vector<std::string> rule_names;
  std::vector<std::bitset<256>> byte_sets;
  uint32_t root_rule = 0;
};

// Parses and checks GBNF text. Errors as described above, prefixed "grammar: ".
result<grammar_rules> parse_gbnf(std::string_view text, const grammar_limits& limits = {});

}  // namespace troupe
