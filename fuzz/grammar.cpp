// Fuzz target: the grammar engine's untrusted inputs (guided_grammar text, response_format
// schemas, guided_regex patterns; grammar/).
//
// Contract: parse_gbnf and json_schema_gbnf never crash on any bytes and refuse with a message;
// every grammar json_schema_gbnf produces from a schema parses, unless the parser refuses it as
// left-recursive (a schema circular with no way out); an automaton over any grammar that parses
// reads any bytes without crashing or running past its limits; regex_gbnf refuses with a
// "regex: " message or produces GBNF that parses (never left-recursive: nullable repetitions
// are rewritten), in both its plain and JSON-string modes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "grammar/grammar_automaton.hpp"
#include "grammar/json_schema_gbnf.hpp"
#include "grammar/regex_gbnf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  troupe::grammar_limits limits;
  limits.max_elements = 1 << 14;  // keep each run fast; the bounds themselves are under test
  limits.max_states = 1 << 10;
  limits.max_stacks_per_state = 256;
  limits.max_stack_depth = 64;

  auto rules = troupe::parse_gbnf(input, limits);
  if (!rules) {
    FUZZ_CHECK(!rules.message().empty());
  } else {
    troupe::grammar_automaton a(std::move(rules).value(), limits);
    auto s = a.initial_state();
    if (s >= 0) {
      // Walk the input's own bytes: valid as far as the grammar allows.
      for (char c : input) {
        const auto t = a.next(s, static_cast<uint8_t>(c));
        if (t < 0) break;
        s = t;
      }
    }
    FUZZ_CHECK(a.num_states() <= limits.max_states);
  }

  auto gbnf = troupe::json_schema_gbnf(input);
  if (!gbnf) {
    FUZZ_CHECK(gbnf.message().rfind("json_schema: ", 0) == 0);
  } else {
    auto parsed = troupe::parse_gbnf(*gbnf);
    FUZZ_CHECK(parsed.ok() || parsed.message().find("left-recursive") != std::string::npos);
  }

  for (const bool json_string : {false, true}) {
    auto expr = troupe::regex_gbnf_expression(input, json_string);
    if (!expr) {
      FUZZ_CHECK(expr.message().rfind("regex: ", 0) == 0);
      continue;
    }
    auto parsed = troupe::parse_gbnf("root ::= " + *expr + "\n", limits);
    // The only refusal left is size (the fuzz limits are far below the defaults).
    FUZZ_CHECK(parsed.ok() || parsed.message().find("expands to more than") != std::string::npos);
  }
  return 0;
}
