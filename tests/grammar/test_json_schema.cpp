// JSON Schema -> grammar, checked the way a user would: every output of random constrained walks
// over the SmolLM2 vocabulary parses as JSON and validates against its schema (a corpus of nested
// objects, arrays, enums, bounded numbers, anyOf and $ref), bounded numbers are exact, and
// unsupported schemas are refused with an error that names the keyword and where it is.
#include <catch2/catch.hpp>

#include <random>

#include "grammar/grammar_constraint.hpp"
#include "grammar/json_schema_gbnf.hpp"
#include "grammar/number_range_gbnf.hpp"
#include "grammar_test_util.hpp"
#include "json_subset_validator.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

// Uniform among the allowed tokens a quarter of the time, else uniform among the allowed tokens
// of one byte (which include every closing quote, bracket and brace): pure uniform picks from
// ~49k tokens would almost never close an unbounded string.
int32_t pick(const token_mask& m, const token_vocabulary& v, std::mt19937& rng) {
  std::vector<int32_t> all, short_ones;
  for (size_t w = 0; w < m.words.size(); ++w) {
    for (uint64_t bits = m.words[w]; bits; bits &= bits - 1) {
      const auto id = static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits)));
      all.push_back(id);
      if (v.piece(id).size() == 1 || v.is_end(id)) short_ones.push_back(id);
    }
  }
  REQUIRE_FALSE(all.empty());
  const auto& from = (!short_ones.empty() && rng() % 4 != 0) ? short_ones : all;
  return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(rng)];
}

struct walk_result {
  std::string text;
  bool ended = false;  // an end token was sampled
};

walk_result random_walk(grammar_constraint& c, std::mt19937& rng, int max_tokens) {
  auto shared = std::shared_ptr<grammar_constraint>(&c, [](grammar_constraint*) {});
  grammar_matcher m(shared);
  walk_result out;
  for (int i = 0; i < max_tokens; ++i) {
    auto mask = m.allowed_tokens();
    REQUIRE(mask.ok());
    const int32_t id = pick(**mask, c.vocabulary(), rng);
    if (c.vocabulary().is_end(id)) {
      out.ended = true;
      return out;
    }
    REQUIRE(m.accept(id).ok());
    out.text += c.vocabulary().piece(id);
  }
  return out;
}

void check_schema_walks(const std::string& schema, int walks) {
  INFO("schema: " << schema);
  auto gbnf = json_schema_gbnf(schema);
  REQUIRE(gbnf.ok());
  INFO("grammar:\n" << *gbnf);
  auto c = compile_grammar_constraint(*gbnf, default_vocabulary());
  REQUIRE(c.ok());
  simdjson::dom::parser schema_parser;
  const simdjson::padded_string schema_text(schema);
  simdjson::dom::element schema_root = schema_parser.parse(schema_text).value();
  std::mt19937 rng(42);
  for (int w = 0; w < walks; ++w) {
    const auto r = random_walk(**c, rng, 5000);
    INFO("output: " << r.text);
    REQUIRE(r.ended);
    simdjson::dom::parser p;
    simdjson::dom::element value;
    const simdjson::padded_string text(r.text);
    REQUIRE(p.parse(text).get(value) == simdjson::SUCCESS);
    CHECK(validate_json(value, schema_root, schema_root) == "");
  }
}

}  // namespace

TEST_CASE("schema corpus: random walks always give valid JSON that validates", "[grammar][schema]") {
  const char* const corpus[] = {
      // strict-mode object: all required, property order as given, nested enum array
      R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},
          "age":{"type":"integer","minimum":0,"maximum":120},
          "tags":{"type":"array","items":{"enum":["a","b","c d"]},"maxItems":3}},
          "required":["name","age","tags"],"additionalProperties":false})",
      // nested objects, bounded numbers, minItems
      R"({"type":"object","properties":{
          "user":{"type":"object","properties":{"id":{"type":"integer","minimum":1},
            "profile":{"type":"object","properties":{"nick":{"type":"string","minLength":1,"maxLength":8},
              "verified":{"type":"boolean"}},"required":["nick","verified"],"additionalProperties":false}},
            "required":["id","profile"],"additionalProperties":false},
          "scores":{"type":"array","items":{"type":"number","minimum":-10,"maximum":10},"minItems":1,"maxItems":4}},
          "required":["user","scores"],"additionalProperties":false})",
      // anyOf, type lists, null
      R"({"type":"object","properties":{"value":{"anyOf":[{"type":"integer","minimum":-5,"maximum":5},
          {"type":"string","maxLength":5},{"type":"null"}]},
          "maybe":{"type":["string","null"],"maxLength":3}},
          "required":["value","maybe"],"additionalProperties":false})",
      // $ref / $defs, reused
      R"({"$defs":{"point":{"type":"object","properties":{"x":{"type":"number","minimum":0,"maximum":100},
          "y":{"type":"integer","exclusiveMinimum":-100,"exclusiveMaximum":0}},"required":["x","y"],
          "additionalProperties":false}},
          "type":"object","properties":{"a":{"$ref":"#/$defs/point"},
          "b":{"type":"array","items":{"$ref":"#/$defs/point"},"maxItems":3}},
          "required":["a","b"],"additionalProperties":false})",
      // recursive $ref (a tree), bounded by the walk
      R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer","minimum":0,"maximum":9},
          "kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v","kids"],
          "additionalProperties":false}},"$ref":"#/$defs/node"})",
      // enum / const of several JSON types
      R"({"type":"object","properties":{"kind":{"const":"fixed"},"color":{"enum":["red","green","blue"]},
          "level":{"enum":[1,2.5,"x\"y",null,{"k":[true]}]}},"required":["kind","color","level"]})",
      // optional properties (non-strict): commas must stay right in every combination
      R"({"type":"object","properties":{"a":{"type":"integer","minimum":0,"maximum":3},
          "b":{"type":"string","maxLength":3},"c":{"type":"boolean"},"d":{"type":"null"}},"required":["b"]})",
      R"({"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"boolean"}}})",
      // a map, wide integer and number ranges
      R"({"type":"object","properties":{"m":{"type":"object","additionalProperties":{"type":"integer","minimum":-1234,"maximum":56789}},
          "n":{"type":"number","minimum":-3,"maximum":250},"i":{"type":"integer","minimum":17}},
          "required":["m","n","i"],"additionalProperties":false})",
      // formats
      R"({"type":"object","properties":{"d":{"type":"string","format":"date"},"t":{"type":"string","format":"date-time"},
          "u":{"type":"string","format":"uuid"}},"required":["d","t","u"],"additionalProperties":false})",
      // a top-level array of free-form values
      R"({"type":"array","items":{},"maxItems":3})",
  };
  for (const char* schema : corpus) check_schema_walks(schema, 12);
}

TEST_CASE("json_object: random walks give one JSON object", "[grammar][schema]") {
  auto c = compile_grammar_constraint(json_object_gbnf(), default_vocabulary());
  REQUIRE(c.ok());
  std::mt19937 rng(7);
  for (int w = 0; w < 12; ++w) {
    const auto r = random_walk(**c, rng, 5000);
    INFO(r.text);
    REQUIRE(r.ended);
    simdjson::dom::parser p;
    simdjson::dom::element value;
    const simdjson::padded_string text(r.text);
    REQUIRE(p.parse(text).get(value) == simdjson::SUCCESS);
    CHECK(value.is_object());
  }
}

TEST_CASE("integer ranges are exact", "[grammar][schema]") {
  const std::optional<int64_t> none;
  const std::vector<std::pair<std::optional<int64_t>, std::optional<int64_t>>> ranges = {
      {0, 0}, {0, 9}, {1, 10}, {17, 342}, {-5, 5}, {-120, -7}, {-1000, 999}, {99, 1001},
      {none, 5}, {none, -3}, {7, none}, {-40, none}, {none, none}, {100, 100}};
  for (const auto& [lo, hi] : ranges) {
    auto body = grammar_detail::integer_range_gbnf(lo, hi);
    REQUIRE(body.ok());
    auto a = automaton_of("root ::= " + *body);
    INFO("range " << (lo ? std::to_string(*lo) : "-inf") << ".." << (hi ? std::to_string(*hi) : "inf")
                  << ": " << *body);
    for (int64_t n = -1500; n <= 1500; ++n) {
      const bool in = (!lo || n >= *lo) && (!hi || n <= *hi);
      INFO(n);
      REQUIRE(accepts(a, std::to_string(n)) == in);
    }
    CHECK_FALSE(accepts(a, "-0"));
    CHECK_FALSE(accepts(a, "007"));
  }
}

TEST_CASE("number ranges are exact on decimals", "[grammar][schema]") {
  auto body = grammar_detail::number_range_gbnf(-3, 250);
  REQUIRE(body.ok());
  auto a = automaton_of("root ::= " + *body);
  for (const char* in : {"-3", "-3.0", "-2.999", "0", "-0.5", "0.25", "249.99", "250", "250.000", "17"}) {
    CHECK(accepts(a, in));
  }
  for (const char* out : {"-3.01", "-4", "250.01", "251", "1e2", "01", "3.", ".5"}) {
    INFO(out);
    CHECK_FALSE(accepts(a, out));
  }
  auto pos = automaton_of("root ::= " + *grammar_detail::number_range_gbnf(2, 5));
  CHECK(accepts(pos, "2"));
  CHECK(accepts(pos, "4.75"));
  CHECK_FALSE(accepts(pos, "1.99"));
  CHECK_FALSE(accepts(pos, "-0.5"));
  CHECK_FALSE(accepts(pos, "5.5"));
}

TEST_CASE("unsupported schemas are refused naming the keyword and its place", "[grammar][schema]") {
  auto refused = [](const std::string& schema) {
    auto r = json_schema_gbnf(schema);
    return r ? std::string("(accepted)") : r.message();
  };
  CHECK(refused(R"({"type":"object","properties":{"a":{"type":"string","pattern":"(x)\\1"}}})") ==
        "json_schema: /properties/a/pattern: regex: at offset 3: backreferences are not supported");
  CHECK(refused(R"({"type":"string","pattern":"x+","maxLength":3})") ==
        "json_schema: /: 'pattern' next to length bounds or 'format' is not supported");
  CHECK(refused(R"({"type":"integer","multipleOf":3})") ==
        "json_schema: /: 'multipleOf' is not supported");
  CHECK(refused(R"({"type":"number","minimum":0.5})") ==
        "json_schema: /minimum: fractional or exclusive bounds on 'number' are not supported (use "
        "'integer', or whole inclusive bounds)");
  CHECK(refused(R"({"type":"string","format":"email"})") ==
        "json_schema: /format: format 'email' is not supported");
  CHECK(refused(R"({"type":"array","uniqueItems":true})") ==
        "json_schema: /uniqueItems: uniqueItems: true is not supported");
  CHECK(refused(R"({"$ref":"http://example.com/s.json"})") ==
        "json_schema: /$ref: only local references ('#/$defs/...') are supported");
  CHECK(refused(R"({"$ref":"#/$defs/missing"})") ==
        "json_schema: /$ref: '#/$defs/missing' points to nothing");
  CHECK(refused(R"({"type":"object","properties":{"a":{}},"required":["b"]})") ==
        "json_schema: /required: 'b' is not among the properties");
  CHECK(refused(R"({"type":"sound"})") == "json_schema: /type: unknown type 'sound'");
  CHECK(refused(R"({"type":"integer","minimum":5,"maximum":1})") ==
        "json_schema: /: minimum is greater than maximum");
  CHECK(refused(R"({"type":"array","items":{"type":"string","minLength":3,"maxLength":2}})") ==
        "json_schema: /items: minLength is greater than maxLength");
  CHECK(refused(R"({"anyOf":[{"type":"string"}],"type":"string"})") ==
        "json_schema: /: 'type' next to 'anyOf' is not supported");
  CHECK(refused("{") .rfind("json_schema: not valid JSON", 0) == 0);
  CHECK(refused("false") == "json_schema: /: the schema 'false' accepts nothing");
}

TEST_CASE("schema keywords the issue names are accepted", "[grammar][schema]") {
  for (const char* schema : {
           R"({"type":"object","title":"T","description":"d","properties":{},"additionalProperties":false})",
           R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10})",
           R"({"oneOf":[{"type":"string"},{"type":"integer"}]})",
           R"({"allOf":[{"type":"string"}]})",
           R"({"type":"array","items":{"type":"string"},"minItems":2,"maxItems":2})",
           R"({"$defs":{"a":{"type":"boolean"}},"type":"object","properties":{"x":{"$ref":"#/$defs/a"}}})",
           R"({"definitions":{"a":{"type":"boolean"}},"$ref":"#/definitions/a"})",
       }) {
    INFO(schema);
    auto g = json_schema_gbnf(schema);
    REQUIRE(g.ok());
    CHECK(parse_gbnf(*g).ok());
  }
}
