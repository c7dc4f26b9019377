// response_format and guided_* as the request parser reads them: the GBNF they become, and 400s
// that name the field (never a silent 200 for a format we do not enforce).
#include <catch2/catch.hpp>

#include "grammar/grammar_rules.hpp"
#include "frontend/openai_request.hpp"

using namespace troupe;
using namespace troupe::frontend;

namespace {

std::string grammar_of(const std::string& extra) {
  auto r = parse_chat_request(R"({"messages":[{"role":"user","content":"x"}],)" + extra + "}");
  INFO(extra << " -> " << r.error.message);
  REQUIRE(r.ok());
  return r.value->grammar;
}

api_error error_of(const std::string& extra) {
  auto r = parse_chat_request(R"({"messages":[{"role":"user","content":"x"}],)" + extra + "}");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error.http_status == 400);
  return r.error;
}

}  // namespace

TEST_CASE("response_format and guided fields become a grammar that parses", "[structured]") {
  CHECK(grammar_of(R"("response_format":{"type":"text"})").empty());
  CHECK(grammar_of(R"("response_format":null)").empty());
  for (const char* extra : {
           R"("response_format":{"type":"json_object"})",
           R"("response_format":{"type":"json_schema","json_schema":{"name":"p","strict":true,
              "schema":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}}})",
           R"("guided_json":{"type":"array","items":{"type":"boolean"}})",
           R"("guided_json":"{\"type\":\"string\",\"maxLength\":3}")",
           R"("guided_grammar":"root ::= \"yes\" | \"no\"")",
           R"("guided_choice":["a \"quoted\" one","b\\c"])",
           R"("guided_regex":"\\d{3}-[a-z]+")",
           R"("structured_outputs":{"json":{"type":"integer"},"disable_fallback":true})",
           R"x("structured_outputs":{"regex":"(yes|no)"})x",
           R"("structured_outputs":{"choice":["a","b"]})",
           R"("structured_outputs":{"grammar":"root ::= \"x\""})",
           R"("structured_outputs":{"json_object":true})",
       }) {
    INFO(extra);
    const std::string g = grammar_of(extra);
    REQUIRE_FALSE(g.empty());
    CHECK(parse_gbnf(g).ok());
  }
}

TEST_CASE("bad structured-output fields are 400s naming the field", "[structured]") {
  CHECK(error_of(R"("response_format":{"type":"sound"})").param == "response_format");
  CHECK(error_of(R"("response_format":"json")").param == "response_format");
  CHECK(error_of(R"("response_format":{"type":"json_schema"})").message ==
        "'response_format.json_schema.schema' is required");
  const auto refused = error_of(
      R"("response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"integer","multipleOf":2}}})");
  CHECK(refused.param == "response_format");
  CHECK(refused.message == "json_schema: /: 'multipleOf' is not supported");
  const auto circular = error_of(
      R"("response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"$ref":"#"}}})");
  CHECK(circular.param == "response_format");
  CHECK(circular.message.find("left-recursive") != std::string::npos);
  CHECK(error_of(R"("guided_grammar":"root ::= [a-")").param == "guided_grammar");
  const auto regex = error_of(R"("guided_regex":"(?<=a)b")");
  CHECK(regex.param == "guided_regex");
  CHECK(regex.message == "guided_regex: at offset 0: lookaround is not supported");
  CHECK(error_of(R"("guided_regex":7)").param == "guided_regex");
  CHECK(error_of(R"("structured_outputs":{"regex":"\\1"})").param == "structured_outputs.regex");
  CHECK(error_of(R"("structured_outputs":{"json":{"type":"sound"}})").param ==
        "structured_outputs.json");
  CHECK(error_of(R"("structured_outputs":{"choice":["a"],"regex":"b"})").param ==
        "structured_outputs");
  CHECK(error_of(R"("structured_outputs":{"structural_tag":"x"})").param ==
        "structured_outputs.structural_tag");
  CHECK(error_of(R"("structured_outputs":{"disable_any_whitespace":true})").param ==
        "structured_outputs.disable_any_whitespace");
  CHECK(error_of(R"("structured_outputs":[])").param == "structured_outputs");
  CHECK(error_of(R"("structured_outputs":{"regex":"a"},"guided_json":{})").param == "guided_json");
  CHECK(grammar_of(R"("structured_outputs":{"json_object":false})").empty());
  CHECK(error_of(R"("guided_choice":[])").param == "guided_choice");
  CHECK(error_of(R"("guided_json":{"type":"object"},"guided_choice":["a"])").message ==
        "only one of response_format, structured_outputs, guided_json, guided_regex, "
        "guided_grammar, guided_choice and grammar may be given");
}
