// serve_executor: the executor factory of `troupe serve`. The supervisor calls it for the first
// executor and after every executor death; each call makes an actors::engine_step_executor (one
// CPU stage holding all layers) with fresh, empty K/V pages, sharing the model file and the
// kernel thread pool.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "actors/supervisor_actor.hpp"
#include "cli/serve_config.hpp"
#include "memory/llama_model_file.hpp"
#include "troupe/result.hpp"

namespace troupe::cli {

// Creates the first executor right away, so that a K/V pool that cannot be allocated stops the
// start with a message (naming the size) instead of failing at the first request.
// end_of_generation: the ids ignore_eos bans. Thread: any; the factory runs on the supervisor.
result<actors::executor_factory> make_executor_factory(std::shared_ptr<const llama_model_file> model,
                                                       const serve_config& cfg,
                                                       std::vector<int32_t> end_of_generation);

}  // namespace troupe::cli
