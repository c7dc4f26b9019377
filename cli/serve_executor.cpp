#include "cli/serve_executor.hpp"

#include <fmt/format.h>

#include <utility>

#include "actors/engine_step_executor.hpp"
#include "kernels/cpu/thread_pool.hpp"

namespace troupe::cli {

result<actors::executor_factory> make_executor_factory(std::shared_ptr<const llama_model_file> model,
                                                       const serve_config& cfg,
                                                       std::vector<int32_t> end_of_generation) {
  const int32_t num_blocks = cfg.scheduler.num_kv_blocks;
  const int32_t block_size = cfg.scheduler.block_size;
  auto pool = std::make_shared<kernels::thread_pool>(cfg.stages.front().threads);
  auto first = actors::engine_step_executor::create(model, pool, num_blocks, block_size,
                                                    end_of_generation);
  if (!first)
    return error{fmt::format("cannot create the executor with {} KV blocks of {} tokens: {}",
                             num_blocks, block_size, first.message())};
  // The first call gets the executor made above; later calls (restarts) get fresh pages.
  auto pending = std::make_shared<std::shared_ptr<actors::step_executor>>(std::move(*first));
  return actors::executor_factory{
      [pending, model, pool, num_blocks, block_size,
       eog = std::move(end_of_generation)]() -> std::shared_ptr<actors::step_executor> {
        if (*pending) return std::exchange(*pending, nullptr);
        auto e = actors::engine_step_executor::create(model, pool, num_blocks, block_size, eog);
        if (!e) {
          std::fprintf(stderr, "troupe serve: cannot recreate the executor: %s\n",
                       e.message().c_str());
          return nullptr;
        }
        return std::shared_ptr<actors::step_executor>(std::move(*e));
      }};
}

}  // namespace troupe::cli
