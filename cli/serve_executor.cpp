#include "cli/serve_executor.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <thread>
#include <utility>

#include "actors/engine_step_executor.hpp"
#include "engine/fast_weights.hpp"
#include "kernels/cpu/thread_pool.hpp"

namespace troupe::cli {

namespace {

// What one stage is made from; shared by the factory's copies.
struct stage_recipe {
  engine::layer_range layers;
  std::shared_ptr<kernels::thread_pool> pool;
  engine::model_options model_opts;  // the arithmetic; fast: the stage's packed weights
  actors::draft_options draft;       // the last stage's draft model (file null: none)
  std::shared_ptr<actors::step_executor> first;  // made at start; handed out once
};

}  // namespace

result<actors::pipeline_factory> make_executor_factory(
    std::shared_ptr<const llama_model_file> model, const serve_config& cfg,
    std::vector<int32_t> end_of_generation, std::shared_ptr<const llama_model_file> draft) {
  const int32_t num_blocks = cfg.scheduler.num_kv_blocks;
  const int32_t block_size = cfg.scheduler.block_size;
  std::vector<stage_config> stages = cfg.stages;
  const auto cores = static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
  if (auto st = resolve_stages(stages, static_cast<int32_t>(model->hparams.n_layer), cores); !st)
    return st.err();
  actors::draft_options draft_opts;
  if (draft) {
    draft_opts.file = draft;
    draft_opts.model_opts.mode = cfg.arithmetic;
    draft_opts.prompt_lookup_min = cfg.scheduler.prompt_lookup_min;
    draft_opts.prompt_lookup_max = cfg.scheduler.prompt_lookup_max;
    if (cfg.arithmetic == engine::arithmetic::fast) {
      auto packed = engine::fast_weights::pack(*draft, {0, static_cast<int32_t>(draft->hparams.n_layer)});
      if (!packed)
        return error{fmt::format("speculative model {}: cannot pack its weights: {}",
                                 cfg.speculative_model, packed.message())};
      draft_opts.model_opts.packed = std::move(*packed);
    }
    std::fprintf(stderr, "troupe serve: speculative model %s: %lld layers, drafts when prompt "
                 "lookup finds none\n", cfg.speculative_model.c_str(),
                 static_cast<long long>(draft->hparams.n_layer));
  }
  auto recipes = std::make_shared<std::vector<stage_recipe>>();
  for (size_t k = 0; k < stages.size(); ++k) {
    stage_recipe r;
    r.layers = {stages[k].first_layer, stages[k].last_layer};
    // Each stage drives its own pool: stages compute at the same time on different plans.
    r.pool = std::make_shared<kernels::thread_pool>(stages[k].threads);
    r.model_opts.mode = cfg.arithmetic;
    if (cfg.arithmetic == engine::arithmetic::fast) {
      // Packed once per stage; restarts of the stage share them (they are read-only).
      auto packed = engine::fast_weights::pack(*model, r.layers);
      if (!packed)
        return error{fmt::format("stage {}: cannot pack the weights for the fast arithmetic: {}",
                                 k, packed.message())};
      std::fprintf(stderr, "troupe serve: stage %zu: fast arithmetic, %.1f MiB of packed weights\n",
                   k, static_cast<double>((*packed)->bytes()) / (1 << 20));
      r.model_opts.packed = std::move(*packed);
    }
    if (k + 1 == stages.size()) r.draft = draft_opts;
    auto first = actors::engine_step_executor::create(model, r.pool, num_blocks, block_size,
                                                      end_of_generation, r.layers, r.model_opts,
                                                      r.draft);
    if (!first)
      return error{fmt::format("cannot create executor stage {} (layers [{}, {})) with {} KV "
                               "blocks of {} tokens: {}",
                               k, r.layers.first, r.layers.last, num_blocks, block_size,
                               first.message())};
    r.first = std::move(*first);
    if (stages.size() > 1)  // an operator reading the log sees the pipeline they configured
      std::fprintf(stderr, "troupe serve: stage %zu: layers [%d, %d), %d kernel threads\n", k,
                   r.layers.first, r.layers.last, r.pool->num_threads());
    recipes->push_back(std::move(r));
  }
  actors::pipeline_factory f;
  f.num_stages = static_cast<int32_t>(recipes->size());
  // The first call per stage gets the executor made above; later calls (restarts) get fresh
  // pages.
  f.make_stage = [recipes, model, num_blocks, block_size, eog = std::move(end_of_generation)](
                     int32_t stage) -> std::shared_ptr<actors::step_executor> {
    auto& r = recipes->at(static_cast<size_t>(stage));
    if (r.first) return std::exchange(r.first, nullptr);
    auto e = actors::engine_step_executor::create(model, r.pool, num_blocks, block_size, eog,
                                                  r.layers, r.model_opts, r.draft);
    if (!e) {
      std::fprintf(stderr, "troupe serve: cannot recreate executor stage %d: %s\n", stage,
                   e.message().c_str());
      return nullptr;
    }
    return std::shared_ptr<actors::step_executor>(std::move(*e));
  };
  return f;
}

}  // namespace troupe::cli
