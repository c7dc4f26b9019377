// A JSON Schema validator for the subset json_schema_gbnf supports, written independently of the
// converter (from the JSON Schema spec) so that the tests check the converter against it.
#pragma once

#include <simdjson.h>

#include <string>

namespace troupe::test {

// Empty when `value` is valid against `schema` (whose document root is `root`, for $ref), else
// the first violation with its JSON pointer.
std::string validate_json(simdjson::dom::element value, simdjson::dom::element schema,
                          simdjson::dom::element root, const std::string& path = "");

}  // namespace troupe::test
