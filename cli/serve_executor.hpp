// serve_executor: the stage factory of `troupe serve`. The supervisor calls it for each stage
// at start and after every death of a stage; each call makes an actors::engine_step_executor
// for that stage's layer range (all layers with one stage) with fresh, empty K/V pages of its
// layers, sharing the model file and the stage's own kernel thread pool (stages[k].threads).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "actors/supervisor_actor.hpp"
#include "cli/serve_config.hpp"
#include "memory/llama_model_file.hpp"
#include "troupe/result.hpp"

namespace troupe::cli {

// Resolves the stages' layer ranges and thread counts against the model (resolve_stages), then
// creates every stage's first executor right away, so that a bad range or a K/V pool that
// cannot be allocated stops the start with a message (naming the key or the size) instead of
// failing at the first request. end_of_generation: the ids ignore_eos bans. draft: the
// speculative model (null: none), already checked against the model's vocabulary; the last
// stage runs it, with its own K/V pages of num_kv_blocks blocks (packed once in fast mode).
// Thread: any; the factory runs on the supervisor.
result<actors::pipeline_factory> make_executor_factory(
    std::shared_ptr<const llama_model_file> model, const serve_config& cfg,
    std::vector<int32_t> end_of_generation,
    std::shared_ptr<const llama_model_file> draft = nullptr);

}  // namespace troupe::cli
