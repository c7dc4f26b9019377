// json_schema_gbnf: GBNF for `response_format` -- any JSON object (json_object), or the JSON
// values a JSON Schema describes (json_schema).
//
// Supported (everything else is refused with an error naming the keyword and where it is):
//   type (a name or a list), enum, const, anyOf, oneOf (as anyOf: branches should not overlap),
//   allOf with one member, $ref to "#", "#/$defs/<name>" or "#/definitions/<name>" (recursion
//   allowed; the automaton's depth limit bounds it),
//   object: properties (emitted in the order given; required ones always, the others optional),
//     required, additionalProperties (false/true/absent: only the listed properties are
//     generated; a schema with no properties: a map whose values follow it),
//   array: items, minItems, maxItems,
//   string: minLength, maxLength, format date | time | date-time | uuid, pattern (alone: the
//     regex subset of regex_gbnf.hpp, matched by the whole string, as written inside the JSON
//     string; an unsupported construct is refused naming /.../pattern),
//   integer: minimum, maximum, exclusiveMinimum, exclusiveMaximum (exact),
//   number: minimum, maximum when they are whole numbers (exact: no exponent is generated then),
//   boolean, null; annotations (title, description, default, examples, $schema, $id, $comment,
//   deprecated, readOnly, writeOnly) are ignored.
// Refused: other formats, multipleOf, uniqueItems: true, prefixItems, contains,
// patternProperties, propertyNames, min/maxProperties, not, if/then/else, dependent*, and
// fractional or exclusive bounds on `number`.
//
// Output style: whitespace is allowed (at most 20 blanks) after punctuation, never before the
// first byte or after the last, and numbers have at most 16 integer, 15 fraction and 2 exponent
// digits (so every number is a finite double): a model cannot loop on blanks or digits.
// Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

#include "troupe/result.hpp"

namespace troupe {

// Any JSON object.
std::string json_object_gbnf();

// A GBNF string literal matching exactly `bytes` (quotes, backslashes and control bytes escaped;
// other bytes, UTF-8 included, as they are). For callers that build grammars from user strings
// (guided_choice).
std::string gbnf_literal(std::string_view bytes);

// The GBNF of `schema_json`. Errors start with "json_schema: " and name the JSON pointer of the
// offending (sub)schema, e.g. "json_schema: /properties/age: 'multipleOf' is not supported".
result<std::string> json_schema_gbnf(std::string_view schema_json);

}  // namespace troupe
