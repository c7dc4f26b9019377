// Message payloads travel through caf::message intact, and submit errors keep code + text.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include "actors/scheduler_actor.hpp"
#include "actors/step_plan.hpp"

using namespace troupe::actors;

TEST_CASE("token_event survives a caf::message round trip", "[actors][messages]") {
  token_event ev;
  ev.request_id = 7;
  ev.choice_index = 1;
  ev.token_ids = {5, 6};
  ev.logprobs.resize(2);
  ev.logprobs[1].top = {{3, -0.5f}};
  ev.finish = finish_reason::length;
  auto msg = caf::make_message(token_atom::value, ev);
  REQUIRE(msg.match_elements<token_atom, token_event>());
  const auto& back = msg.get_as<token_event>(1);
  CHECK(back.request_id == 7);
  CHECK(back.token_ids == std::vector<int32_t>{5, 6});
  CHECK(back.logprobs[1].top.at(0).token == 3);
  CHECK(back.finish == finish_reason::length);
  CHECK(caf::to_string(msg).find("token_event") != std::string::npos);
}

TEST_CASE("submit errors carry their code and message", "[actors][messages]") {
  caf::error e = make_error(submit_error::queue_full, "waiting queue is full (1024)");
  REQUIRE(to_submit_error(e) == submit_error::queue_full);
  CHECK(submit_error_message(e) == "waiting queue is full (1024)");
  CHECK_FALSE(to_submit_error(caf::make_error(caf::sec::request_timeout)).has_value());
}
