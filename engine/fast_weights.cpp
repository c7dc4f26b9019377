#include "engine/fast_weights.hpp"

namespace troupe::engine {

namespace {

status pack_into(const tensor_view& w, std::optional<kernels::packed_weight>& out,
                 uint64_t& bytes) {
  if (!kernels::packed_weight::packable(w.type)) return {};  // stays on the exact kernels
  auto p = kernels::packed_weight::pack(w);
  if (!p) return p.err();
  bytes += p->bytes();
  out.emplace(std::move(*p));
  return {};
}

}  // namespace

result<std::shared_ptr<const fast_weights>> fast_weights::pack(const llama_model_file& file,
                                                               layer_range layers) {
  auto fw = std::make_shared<fast_weights>();
  fw->layers_ = layers;
  fw->per_layer_.resize(static_cast<size_t>(layers.size()));
  for (int32_t l = layers.first; l < layers.last; ++l) {
    const auto& w = file.weights.layers[static_cast<size_t>(l)];
    auto& p = fw->per_layer_[static_cast<size_t>(l - layers.first)];
    for (auto [src, dst] : {std::pair{&w.wq, &p.wq}, {&w.wk, &p.wk}, {&w.wv, &p.wv},
                            {&w.wo, &p.wo}, {&w.w_gate, &p.w_gate}, {&w.w_up, &p.w_up},
                            {&w.w_down, &p.w_down}})
      if (status st = pack_into(*src, *dst, fw->bytes_); !st.ok()) return st.err();
  }
  if (layers.last == file.hparams.n_layer)
    if (status st = pack_into(file.weights.output, fw->output_, fw->bytes_); !st.ok())
      return st.err();
  return std::shared_ptr<const fast_weights>(std::move(fw));
}

}  // namespace troupe::engine
