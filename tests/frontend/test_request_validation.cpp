// The one validation (frontend/request_validation.hpp): what needs the model and the server's
// limits, each refusal naming its parameter as a value (never found in message text).
#include <catch2/catch.hpp>

#include "frontend/request_validation.hpp"

using namespace troupe::frontend;

namespace {

const server_limits limits{.vocab_size = 100, .max_model_len = 64, .max_num_seqs = 4,
                           .max_kv_tokens_per_seq = 48};

generation_request chat(const std::string& extra = "") {
  auto p = parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}])" + extra + "}");
  REQUIRE(p.ok());
  return *p.value;
}

std::vector<tokenized_prompt> prompt_of(std::size_t num_tokens, bool from_ids = false) {
  tokenized_prompt p;
  p.ids.assign(num_tokens, 5);
  p.from_token_ids = from_ids;
  return {p};
}

std::string refused_param(const generation_request& r, std::vector<tokenized_prompt> prompts) {
  auto v = validate_generation(r, std::move(prompts), limits);
  REQUIRE_FALSE(v.ok());
  CHECK(v.error.http_status == 400);
  return v.error.param;
}

}  // namespace

TEST_CASE("a valid request gets its defaults from the limits") {
  auto v = validate_generation(chat(), prompt_of(10), limits);
  REQUIRE(v.ok());
  // Chat without max_tokens: what the smaller of context and KV capacity leaves.
  CHECK(v.value->max_tokens == 48 - 10);
  CHECK(v.value->num_prompt_tokens == 10);
  auto seeded = validate_generation(chat(R"(,"seed":7,"max_tokens":3)"), prompt_of(10), limits);
  REQUIRE(seeded.ok());
  CHECK(seeded.value->sampling.seed == 7u);
  CHECK(seeded.value->max_tokens == 3);
}

TEST_CASE("each limit is refused naming its parameter") {
  CHECK(refused_param(chat(), prompt_of(0)) == "messages");
  CHECK(refused_param(chat(), prompt_of(48)) == "messages");            // KV capacity
  CHECK(refused_param(chat(R"(,"max_tokens":40)"), prompt_of(10)) == "max_tokens");
  CHECK(refused_param(chat(R"(,"n":5)"), prompt_of(10)) == "n");        // max_num_seqs 4
  CHECK(refused_param(chat(R"(,"logit_bias":{"100":1})"), prompt_of(10)) == "logit_bias");
  CHECK(refused_param(chat(R"(,"stop_token_ids":[1,100])"), prompt_of(10)) ==
        "stop_token_ids[1]");
  auto c = parse_completion_request(R"({"prompt":[1,2,300]})");
  REQUIRE(c.ok());
  auto ids = prompt_of(0, true);
  ids[0].ids = {1, 2, 300};
  auto v = validate_generation(*c.value, ids, limits);
  REQUIRE_FALSE(v.ok());
  CHECK(v.error.param == "prompt");
  CHECK(v.error.message.find("prompt[2]") != std::string::npos);
}

TEST_CASE("a completions batch names the prompt that does not fit") {
  auto c = parse_completion_request(R"({"prompt":["a","b"],"max_tokens":20})");
  REQUIRE(c.ok());
  auto prompts = prompt_of(10);
  prompts.push_back(prompt_of(30)[0]);
  auto v = validate_generation(*c.value, prompts, limits);
  REQUIRE_FALSE(v.ok());
  CHECK(v.error.param == "max_tokens");
  CHECK(v.error.message.find("prompt[1]") != std::string::npos);
}
