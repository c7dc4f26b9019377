#include "cli/serve_config.hpp"

#include <fmt/format.h>

#include <toml++/toml.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <set>

#include "logging/log.hpp"

namespace troupe::cli {

namespace {

// Walks one table, applying known keys and rejecting the rest. Errors carry the dotted key.
class table_reader {
 public:
  table_reader(const toml::table& t, std::string prefix, std::string* err)
      : t_(t), prefix_(std::move(prefix)), err_(err) {}

  template <class Int>
  void integer(const char* key, Int& out, std::int64_t lo, std::int64_t hi) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (!n || !err_->empty()) return;
    auto v = n->value<std::int64_t>();
    if (!n->is_integer() || !v || *v < lo || *v > hi) {
      *err_ = fmt::format("{}{}: must be an integer in [{}, {}]", prefix_, key, lo, hi);
      return;
    }
    out = static_cast<Int>(*v);
  }
  void number(const char* key, double& out, double lo, double hi) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (!n || !err_->empty()) return;
    auto v = n->value<double>();  // an integer counts too (2 for 2.0)
    if (!(n->is_floating_point() || n->is_integer()) || !v || *v < lo || *v > hi) {
      *err_ = fmt::format("{}{}: must be a number in [{}, {}]", prefix_, key, lo, hi);
      return;
    }
    out = *v;
  }
  void boolean(const char* key, bool& out) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (!n || !err_->empty()) return;
    if (!n->is_boolean()) {
      *err_ = fmt::format("{}{}: must be true or false", prefix_, key);
      return;
    }
    out = *n->value<bool>();
  }
  void string(const char* key, std::string& out) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (!n || !err_->empty()) return;
    if (!n->is_string()) {
      *err_ = fmt::format("{}{}: must be a string", prefix_, key);
      return;
    }
    out = *n->value<std::string>();
  }
  // `key = ["a", "b"]`: an array of non-empty strings.
  void string_list(const char* key, std::vector<std::string>& out) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (!n || !err_->empty()) return;
    const toml::array* a = n->as_array();
    std::vector<std::string> v;
    for (std::size_t i = 0; a && i < a->size(); ++i) {
      auto s = a->get(i)->value<std::string>();
      if (!a->get(i)->is_string() || !s || s->empty()) {
        a = nullptr;
        break;
      }
      v.push_back(*s);
    }
    if (!a) {
      *err_ = fmt::format("{}{}: must be an array of non-empty strings", prefix_, key);
      return;
    }
    out = std::move(v);
  }
  // A layer range `key = [first, last]`: two integers, 0 <= first < last.
  void layer_range(const char* key, std::int32_t& first, std::int32_t& last) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (!n || !err_->empty()) return;
    const toml::array* a = n->as_array();
    std::optional<std::int64_t> f, l;
    if (a && a->size() == 2) {
      f = a->get(0)->value<std::int64_t>();
      l = a->get(1)->value<std::int64_t>();
    }
    if (!a || a->size() != 2 || !a->get(0)->is_integer() || !a->get(1)->is_integer() || !f ||
        !l || *f < 0 || *l <= *f || *l > 100000) {
      *err_ = fmt::format("{}{}: must be [first, last], integers with 0 <= first < last (the "
                          "half-open range of layers this stage runs)",
                          prefix_, key);
      return;
    }
    first = static_cast<std::int32_t>(*f);
    last = static_cast<std::int32_t>(*l);
  }
  // After all known keys were read: the first key nobody asked for is an error.
  void reject_unknown() {
    if (!err_->empty()) return;
    for (auto&& [k, v] : t_) {
      if (!seen_.count(std::string(k.str()))) {
        *err_ = fmt::format("{}{}: unknown key", prefix_, k.str());
        return;
      }
    }
  }

 private:
  const toml::table& t_;
  std::string prefix_;
  std::string* err_;
  std::set<std::string> seen_;
};

constexpr std::int64_t int32_max = std::numeric_limits<std::int32_t>::max();

}  // namespace

result<serve_config> load_serve_config(const std::string& path) {
  serve_config c;
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return error{fmt::format("config {}: {} (line {}, column {})", path, e.description(),
                             e.source().begin.line, e.source().begin.column)};
  }
  std::string err;
  auto section = [&](const char* name) -> const toml::table* {
    const toml::node* n = root.get(name);
    if (!n) return nullptr;
    if (!n->is_table()) {
      err = fmt::format("{}: must be a table ([{}])", name, name);
      return nullptr;
    }
    return n->as_table();
  };
  static const std::set<std::string> sections = {"server", "model", "engine", "scheduler",
                                                 "kv", "supervisor", "stages", "faults"};
  for (auto&& [k, v] : root) {
    if (!sections.count(std::string(k.str()))) {
      err = fmt::format("{}: unknown section", k.str());
      break;
    }
  }
  if (err.empty()) {
    if (auto* t = section("server")) {
      table_reader r(*t, "server.", &err);
      r.string("host", c.http.host);
      r.integer("port", c.http.port, 0, 65535);
      r.integer("io_threads", c.http.io_threads, 1, 64);
      std::int64_t body = static_cast<std::int64_t>(c.http.max_body_bytes);
      r.integer("max_body_bytes", body, 1024, std::int64_t{1} << 30);
      c.http.max_body_bytes = static_cast<std::size_t>(body);
      r.integer("read_timeout_s", c.http.read_timeout_s, 1, 3600);
      r.integer("keep_alive_timeout_s", c.http.keep_alive_timeout_s, 1, 3600);
      r.integer("header_timeout_s", c.http.header_timeout_s, 1, 15);  // issue 10: <= 15 s
      r.integer("min_request_bytes_per_s", c.http.min_request_bytes_per_s, 0, 1 << 30);
      r.integer("max_connections", c.http.max_connections, 1, 1'000'000);
      r.integer("write_timeout_s", c.http.write_timeout_s, 1, 3600);
      std::int64_t stream_buffer = static_cast<std::int64_t>(c.http.max_stream_buffer_bytes);
      r.integer("max_stream_buffer_bytes", stream_buffer, 4096, std::int64_t{1} << 30);
      c.http.max_stream_buffer_bytes = static_cast<std::size_t>(stream_buffer);
      r.integer("shutdown_timeout_s", c.shutdown_timeout_s, 0, 3600);
      r.integer("request_timeout_s", c.request_timeout_s, 0, 86400);
      r.boolean("parse_special_tokens_in_messages", c.parse_special_tokens_in_messages);
      r.boolean("ignore_unknown_fields", c.ignore_unknown_fields);
      r.string_list("cors_origins", c.http.cors_origins);
      for (const auto& o : c.http.cors_origins)
        if (err.empty() && o != "*" && !o.starts_with("http://") && !o.starts_with("https://"))
          err = fmt::format("server.cors_origins: '{}' is not \"*\" nor an origin such as "
                            "\"https://app.example.com\"",
                            o);
      r.integer("tokenizer_threads", c.tokenizer_threads, 1, 64);
      r.integer("max_num_waiting_tokenizations", c.max_num_waiting_tokenizations, 1, 1'000'000);
      r.string("log_level", c.log_level);
      if (logging::level l; err.empty() && !logging::parse_level(c.log_level, l))
        err = fmt::format("server.log_level: '{}' is not one of debug, info, warn, error, off",
                          c.log_level);
      r.reject_unknown();
    }
  }
  if (err.empty()) {
    if (auto* t = section("model")) {
      table_reader r(*t, "model.", &err);
      r.string("path", c.model_path);
      r.string("served_model_name", c.served_model_name);
      r.string("chat_template", c.chat_template);
      r.reject_unknown();
    }
  }
  if (err.empty()) {
    if (auto* t = section("engine")) {
      table_reader r(*t, "engine.", &err);
      std::string name(engine::arithmetic_name(c.arithmetic));
      r.string("arithmetic", name);
      if (err.empty()) {
        if (auto a = engine::parse_arithmetic(name))
          c.arithmetic = *a;
        else
          err = fmt::format("engine.arithmetic: '{}' is not one of {}", name,
                            engine::arithmetic_names);
      }
      r.reject_unknown();
    }
  }
  if (err.empty()) {
    if (auto* t = section("scheduler")) {
      table_reader r(*t, "scheduler.", &err);
      auto& s = c.scheduler;
      r.integer("max_num_batched_tokens", s.max_num_batched_tokens, 1, int32_max);
      r.integer("max_num_seqs", s.max_num_seqs, 1, 4096);
      r.integer("max_model_len", s.max_model_len, 2, int32_max);
      r.integer("long_prefill_token_threshold", s.long_prefill_token_threshold, 0, int32_max);
      r.integer("max_num_waiting_requests", s.max_num_waiting_requests, 1, int32_max);
      r.boolean("enable_prefix_caching", s.enable_prefix_caching);
      r.integer("slo_ttft_ms", s.slo_ttft_ms, 0, 3'600'000);
      r.integer("slo_tpot_ms", s.slo_tpot_ms, 0, 3'600'000);
      r.number("max_decode_gap_factor", s.max_decode_gap_factor, 0, 1000);
      r.integer("num_speculative_tokens", s.num_speculative_tokens, 0, 64);
      r.integer("prompt_lookup_min", s.prompt_lookup_min, 1, 64);
      r.integer("prompt_lookup_max", s.prompt_lookup_max, 1, 64);
      r.integer("speculative_disable_by_batch_size", s.speculative_disable_by_batch_size, 1,
                int32_max);
      r.string("speculative_model", c.speculative_model);
      r.reject_unknown();
    }
  }
  if (err.empty()) {
    if (auto* t = section("kv")) {
      table_reader r(*t, "kv.", &err);
      r.integer("block_size", c.scheduler.block_size, 1, 1024);
      r.integer("num_blocks", c.scheduler.num_kv_blocks, 1, int32_max);
      r.reject_unknown();
    }
  }
  if (err.empty()) {
    if (auto* t = section("supervisor")) {
      table_reader r(*t, "supervisor.", &err);
      r.integer("max_restarts", c.max_restarts, 0, 1000);
      r.integer("restart_window_s", c.restart_window_s, 1, 86400);
      r.integer("step_timeout_ms", c.step_timeout_ms, 0, 86'400'000);
      r.integer("ready_stall_ms", c.ready_stall_ms, 1, 86'400'000);
      r.reject_unknown();
    }
  }
  if (err.empty()) {
    if (const toml::node* n = root.get("stages")) {
      const toml::array* arr = n->as_array();
      if (!arr || !arr->is_array_of_tables()) {
        err = "stages: must be an array of tables ([[stages]])";
      } else {
        c.stages.clear();
        for (std::size_t i = 0; i < arr->size() && err.empty(); ++i) {
          stage_config st;
          table_reader r(*arr->get(i)->as_table(), fmt::format("stages[{}].", i), &err);
          r.string("backend", st.backend);
          r.integer("threads", st.threads, 0, 1024);
          r.layer_range("layers", st.first_layer, st.last_layer);
          r.reject_unknown();
          c.stages.push_back(st);
        }
      }
    }
  }
  if (err.empty()) {
    if (auto* t = section("faults")) {
      table_reader r(*t, "faults.", &err);
      auto& f = c.faults;
      r.integer("crash_every_steps", f.crash_every_steps, 0, int32_max);
      r.integer("hang_every_steps", f.hang_every_steps, 0, int32_max);
      r.integer("hang_ms", f.hang_ms, 0, 3'600'000);
      r.integer("poison_token", f.poison_token, -1, int32_max);
      std::int64_t seed = static_cast<std::int64_t>(f.seed);
      r.integer("seed", seed, 0, std::numeric_limits<std::int64_t>::max());
      f.seed = static_cast<std::uint64_t>(seed);
      r.reject_unknown();
    }
  }
  if (!err.empty()) return error{fmt::format("config {}: {}", path, err)};
  if (auto st = validate(c); !st) return error{fmt::format("config {}: {}", path, st.message())};
  return c;
}

status validate(const serve_config& c) {
  if (c.stages.empty()) return error{"stages: at least one stage is required"};
  std::size_t num_with_layers = 0;
  for (const auto& st : c.stages) num_with_layers += st.first_layer >= 0 ? 1 : 0;
  for (std::size_t i = 0; i < c.stages.size(); ++i) {
    const auto& st = c.stages[i];
    if (st.backend != "cpu")
      return error{fmt::format("stages[{}].backend: '{}' is not available (known: cpu)", i,
                               st.backend)};
    if (num_with_layers == 0) continue;
    if (st.first_layer < 0)
      return error{fmt::format("stages[{}].layers: missing (give every stage its layers, or "
                               "none to split them evenly)",
                               i)};
    if (i == 0 && st.first_layer != 0)
      return error{fmt::format("stages[0].layers: must start at layer 0, not {}",
                               st.first_layer)};
    if (i > 0 && st.first_layer != c.stages[i - 1].last_layer)
      return error{fmt::format(
          "stages[{}].layers: starts at layer {} but stages[{}] ends at {} (ranges are "
          "half-open and must be contiguous: no gap, no overlap)",
          i, st.first_layer, i - 1, c.stages[i - 1].last_layer)};
  }
  if (c.http.host.empty()) return error{"server.host: must not be empty"};
  if (c.faults.hang_every_steps > 0 && c.faults.hang_ms < 1)
    return error{"faults.hang_ms: must be >= 1 when faults.hang_every_steps is set"};
  if (c.faults.crash_every_steps < 0 || c.faults.hang_every_steps < 0 || c.faults.hang_ms < 0)
    return error{"faults: crash_every_steps, hang_every_steps and hang_ms must be >= 0"};
  if (c.faults.poison_token < -1)
    return error{"faults.poison_token: must be a token id, or -1 (off)"};
  if (c.step_timeout_ms < 0) return error{"supervisor.step_timeout_ms: must be >= 0 (0: none)"};
  if (c.ready_stall_ms < 1) return error{"supervisor.ready_stall_ms: must be >= 1"};
  if (auto s = actors::validate(c.scheduler); !s) return s;
  return {};
}

status resolve_stages(std::vector<stage_config>& stages, std::int32_t n_layer,
                      std::int32_t num_cores) {
  const auto n = static_cast<std::int32_t>(stages.size());
  if (n < 1) return error{"stages: at least one stage is required"};
  if (stages.front().first_layer < 0) {
    if (n > n_layer)
      return error{fmt::format("stages: {} stages but the model has only {} layers", n, n_layer)};
    // Even split; the first stages take one more layer when it does not divide.
    std::int32_t first = 0;
    for (std::int32_t i = 0; i < n; ++i) {
      const std::int32_t len = n_layer / n + (i < n_layer % n ? 1 : 0);
      stages[static_cast<std::size_t>(i)].first_layer = first;
      stages[static_cast<std::size_t>(i)].last_layer = first + len;
      first += len;
    }
  }
  const auto& last = stages.back();
  if (last.last_layer != n_layer)
    return error{fmt::format("stages[{}].layers: ends at layer {} but the model has {} layers "
                             "(the stages must cover all of them)",
                             n - 1, last.last_layer, n_layer)};
  const std::int32_t share = std::max(1, num_cores / n);
  for (auto& st : stages)
    if (st.threads == 0) st.threads = share;
  return {};
}

}  // namespace troupe::cli
