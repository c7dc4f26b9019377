// regex_gbnf: a regular expression as GBNF, for vLLM's `guided_regex` / `structured_outputs.regex`
// and JSON Schema's string `pattern`.
//
// The output must match the whole regex (as Python's re.fullmatch, or PCRE2 with
// PCRE2_ANCHORED | PCRE2_ENDANCHORED): a constrained generation has no "rest of the text" for a
// search to skip. For a JSON Schema `pattern` (a search by the spec) that is narrower but sound:
// a string that matches the whole pattern also contains a match.
//
// Supported (a subset on which PCRE2, Python's re and ECMA-262 agree):
//   literals (UTF-8), escaped punctuation (\. \( \\ \/ \- ...), \n \r \t \f \a \e, \xHH,
//   \x{H...}, \uHHHH;
//   classes [abc] [a-z] [^...] (members: literals, ranges, escapes, \d \w \s \D \W \S);
//   .  (any character but \n, as PCRE2), \d [0-9], \w [A-Za-z0-9_], \s [\t\n\v\f\r ] and their
//   negations \D \W \S (ASCII, as PCRE2 without UCP and ECMA-262 without the u flag);
//   groups ( ), (?: ), (?<name> ), (?P<name> ); alternation |;
//   ? * + {m} {m,} {m,n} (m, n <= 1000), and their lazy forms *? +? ?? {m,n}? (the same set of
//   whole matches);
//   ^ as the first character and $ as the last (the output's ends, which are implied anyway).
// Refused with an error naming the construct and its byte offset: backreferences (\1, \k<..>),
// lookaround ((?= (?! (?<= (?<!), inline flags ((?i) ...), atomic groups, possessive
// quantifiers (a*+), anchors elsewhere, \b \B \A \z \Z \G \K \p \P \X \R \h \v \0 and other
// escapes whose meaning differs between engines, POSIX classes ([:alpha:]), `{,n}`.
//
// Size: the pattern is at most 16 KiB and 64 groups deep, and its GBNF at most 512 KiB (a
// repeated group whose body can match the empty string is rewritten once, which can grow it);
// parse_gbnf then bounds the expanded grammar (grammar_limits), so a hostile pattern is refused
// in time linear in its size.
// Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

#include "troupe/result.hpp"

namespace troupe {

// A GBNF expression (no rule names; groups, literals, classes, repetitions) matching exactly the
// strings that fully match `pattern`. With `json_string`, it matches those strings written as
// the inside of a JSON string literal instead: `"` `\` and control characters escaped (one
// canonical escape each: \" \\ \n \t \r \b \f \u00XX). Errors start with "regex: ".
result<std::string> regex_gbnf_expression(std::string_view pattern, bool json_string = false);

// A whole grammar: "root ::= <expression>\n".
result<std::string> regex_gbnf(std::string_view pattern);

}  // namespace troupe
