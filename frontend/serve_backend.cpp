#include "frontend/serve_backend.hpp"

#include "frontend/tool_calling.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <chrono>

#include "actors/request_actor.hpp"
#include "frontend/request_validation.hpp"
#include "logging/log.hpp"
#include "net/json_writer.hpp"
#include "net/openai_response.hpp"

namespace troupe::frontend {


serve_backend::serve_backend(caf::actor_system& sys, std::shared_ptr<net::server_metrics> metrics,
                             model_card card, prompt_worker_config worker)
    : sys_(sys),
      metrics_(std::move(metrics)),
      card_(std::move(card)),
      worker_(worker.num_threads, static_cast<std::size_t>(worker.max_num_waiting)) {}

void serve_backend::stop() { worker_.stop(); }

void serve_backend::set_runtime(std::shared_ptr<const serve_runtime> rt) {
  std::lock_guard lock(mu_);
  rt_ = std::move(rt);
}

std::shared_ptr<const serve_runtime> serve_backend::runtime() const {
  std::lock_guard lock(mu_);
  return rt_;
}

bool serve_backend::is_ready() const { return runtime() != nullptr; }

model_card serve_backend::model() const { return card_; }

namespace {

std::vector<engine::chat_message> to_engine_messages(const std::vector<chat_message>& in) {
  std::vector<engine::chat_message> out;
  out.reserve(in.size());
  for (const auto& m : in) {
    engine::chat_message e{m.role, m.content, {}};
    for (const auto& c : m.tool_calls) e.tool_calls.push_back({c.name, c.arguments});
    out.push_back(std::move(e));
  }
  return out;
}

// A rendered chat's ids: the template's markers are special tokens; the messages' text is plain
// text unless the deployment trusts its clients.
std::vector<std::int32_t> encode_chat(const tokenizer& tok, const engine::chat_prompt& p,
                                      bool parse_special_in_messages) {
  if (parse_special_in_messages) return tok.encode(p.text, /*add_special=*/false, true);
  return tok.encode(p.text, /*add_special=*/false, p.spans);
}

}  // namespace

void serve_backend::generate(generation_request req, std::shared_ptr<net::http_exchange> ex) {
  auto rt = runtime();
  if (!rt) return respond_error(*ex, net::unavailable("the model is still loading"));
  std::size_t text_bytes = 0;
  for (const auto& m : req.messages) {
    text_bytes += m.content.size() + m.role.size();
    for (const auto& c : m.tool_calls) text_bytes += c.name.size() + c.arguments.size();
  }
  for (const auto& t : req.tools) text_bytes += t.rendered.size();
  for (const auto& p : req.prompts) text_bytes += p.text.size() + p.tokens.size() * 4;
  auto shared_req = std::make_shared<generation_request>(std::move(req));
  run_sized(text_bytes, ex, [this, rt, shared_req, ex] { generate_now(*rt, *shared_req, ex); });
}

void serve_backend::generate_now(const serve_runtime& rt, generation_request& req,
                                 std::shared_ptr<net::http_exchange> ex) {
  // Every refusal is logged with the request id (never the prompt) and answered.
  const std::string request_id = ex->request_id();
  auto reject = [&](const net::api_error& e) {
    logging::info("request.rejected", {{"request_id", request_id},
                                       {"status", e.http_status},
                                       {"param", e.param},
                                       {"message", e.message}});
    respond_error(*ex, e);
  };
  const bool chat = req.kind == net::endpoint_kind::chat;
  const auto& tok = rt.tok;

  // Prompt tokens, one list per prompt (completions may send a batch; each prompt is generated
  // independently). Completions text is tokenized like vLLM and llama-server (special tokens
  // added as the model says, special-token text recognised: the client writes the whole prompt,
  // there is no turn of someone else's to break out of); chat text comes from the template,
  // whose markers alone are special (encode_chat).
  std::vector<tokenized_prompt> prompts;
  // Tool calling (frontend/tool_calling.hpp): the family's syntax renders the tools and, for a
  // required or named choice, shapes the grammar every output follows.
  const auto tool_syntax = rt.chat.tool_calls();
  if (!req.tools.empty() && !tool_syntax)
    return reject(net::invalid_parameter(
        "tools", fmt::format("tool calling is not supported with this model's chat template "
                             "({}); troupe renders tools for chatml templates only",
                             engine::chat_family_name(rt.chat.family()))));
  if (req.tool_choice == tool_choice_mode::required || req.tool_choice == tool_choice_mode::named)
    req.grammar = tool_call_grammar(req, tool_syntax->open, tool_syntax->close,
                                    tool_syntax->separator);
  if (chat) {
    std::vector<std::string> tools;
    for (const auto& t : req.tools) tools.push_back(t.rendered);
    auto rendered = rt.chat.render_prompt(to_engine_messages(req.messages),
                                          req.add_generation_prompt, tools);
    if (!rendered) return reject(net::invalid_parameter("messages", rendered.message()));
    tokenized_prompt p;
    p.ids = encode_chat(tok, *rendered, rt.parse_special_tokens_in_messages);
    p.text = std::move(rendered->text);
    prompts.push_back(std::move(p));
  }
  for (std::size_t k = 0; !chat && k < req.prompts.size(); ++k) {
    const auto& in = req.prompts[k];
    tokenized_prompt p;
    p.from_token_ids = in.is_tokens;
    if (in.is_tokens) {
      p.ids = in.tokens;
    } else {
      p.text = in.text;
      p.ids = tok.encode(p.text, /*add_special=*/true, /*parse_special=*/true);
    }
    prompts.push_back(std::move(p));
  }
  auto checked = validate_generation(req, std::move(prompts), rt.limits);
  if (!checked.ok()) return reject(checked.error);
  auto& valid = *checked.value;
  // Echo needs a token prompt's text; its ids are now known to be inside the vocabulary.
  for (auto& p : valid.prompts)
    if (p.from_token_ids && req.echo) p.text = tok.decode(p.ids, /*render_special=*/true);
  const auto& sp = valid.sampling;
  const std::int64_t max_tokens = valid.max_tokens;
  const std::int64_t num_prompt_total = valid.num_prompt_tokens;
  auto& valid_prompts = valid.prompts;

  actors::request_context ctx{.requests = {},
                              .response = {},
                              .tok = tok,
                              .skip_special_tokens = req.skip_special_tokens,
                              .exchange = std::move(ex),
                              .metrics = metrics_,
                              .scheduler = rt.scheduler,
                              .timeout = std::chrono::seconds(rt.request_timeout_s)};
  // Consecutive ids, one scheduler request per prompt.
  const std::uint64_t first_id = next_request_id_.fetch_add(valid_prompts.size());
  auto& r = ctx.response;
  for (std::size_t k = 0; k < valid_prompts.size(); ++k) {
    actors::generate_request g;
    g.request_id = first_id + k;
    g.log_id = request_id;
    g.prompt_token_ids = std::move(valid_prompts[k].ids);
    g.sampling = sp;
    // Without a user seed each prompt draws like a request of its own.
    if (k > 0 && !req.seed) g.sampling.seed = engine::random_seed();
    g.max_tokens = static_cast<std::int32_t>(max_tokens);
    g.min_tokens = static_cast<std::int32_t>(req.min_tokens);
    g.stop_token_ids = req.stop_token_ids;
    g.n = req.n;
    // Drafts are verified without the grammar's mask: a constrained request does not speculate.
    g.allow_speculation = req.speculative_decoding && req.grammar.empty();
    ctx.requests.push_back(std::move(g));
    if (req.echo && !chat) r.prompt_texts.push_back(std::move(valid_prompts[k].text));
  }

  r.kind = req.kind;
  r.id = net::make_response_id(chat ? "chatcmpl" : "cmpl");
  r.model = rt.card.id;
  r.created = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  r.n = req.n;
  r.num_prompts = static_cast<std::int32_t>(valid_prompts.size());
  r.stream = req.stream;
  r.include_usage = req.include_usage;
  r.continuous_usage_stats = req.continuous_usage_stats;
  r.logprobs = req.logprobs;
  r.top_logprobs = req.top_logprobs;
  r.echo = req.echo && !chat;
  r.stop = req.stop;
  r.num_prompt_tokens = static_cast<std::int32_t>(num_prompt_total);
  r.system_fingerprint = rt.card.system_fingerprint;
  if (parses_tool_calls(req)) {
    r.tool_calls.enabled = true;
    r.tool_calls.open = tool_syntax->open;
    r.tool_calls.close = tool_syntax->close;
    for (const auto& t : req.tools) r.tool_calls.names.push_back(t.name);
    // The grammar writes every call in the one form the parser can stream piece by piece.
    r.tool_calls.stream_arguments = req.stream && (req.tool_choice == tool_choice_mode::required ||
                                                   req.tool_choice == tool_choice_mode::named);
  }
  // The scheduler's ids of this request are first_id.. (seq_request): they join its own lines.
  logging::info("request.start", {{"request_id", request_id},
                                  {"endpoint", chat ? "chat" : "completions"},
                                  {"seq_request", first_id},
                                  {"num_prompts", valid_prompts.size()},
                                  {"num_prompt_tokens", num_prompt_total},
                                  {"max_tokens", max_tokens},
                                  {"n", req.n},
                                  {"stream", req.stream}});
  ctx.request_id = request_id;
  actors::spawn_request_actor(sys_, std::move(ctx));
}

void serve_backend::run_sized(std::size_t text_bytes, std::shared_ptr<net::http_exchange> ex,
                              std::function<void()> job) {
  if (text_bytes <= inline_prompt_max_bytes) return job();
  // The job holds its own reference to the exchange; ours answers a refusal.
  auto guarded = [ex, job = std::move(job)] {
    if (!ex->is_disconnected()) job();  // a client that left while queued costs nothing more
  };
  if (!worker_.try_submit(std::move(guarded))) {
    logging::info("request.shed", {{"request_id", ex->request_id()},
                                   {"status", 429},
                                   {"reason", "tokenizer_queue_full"},
                                   {"text_bytes", text_bytes}});
    respond_error(*ex, net::queue_full(worker_.max_num_queued_jobs()));
  }
}

void serve_backend::tokenize(tokenize_request req, std::shared_ptr<net::http_exchange> ex) {
  auto rt = runtime();
  if (!rt) return respond_error(*ex, net::unavailable("the model is still loading"));
  std::size_t text_bytes = req.prompt.size();
  for (const auto& m : req.messages) text_bytes += m.content.size() + m.role.size();
  auto shared_req = std::make_shared<tokenize_request>(std::move(req));
  run_sized(text_bytes, ex, [this, rt, shared_req, ex] { tokenize_now(*rt, *shared_req, *ex); });
}

void serve_backend::tokenize_now(const serve_runtime& rt, const tokenize_request& req,
                                 net::http_exchange& ex) {
  std::vector<std::int32_t> ids;
  if (req.is_chat) {
    // The same ids a chat completion of these messages would be given.
    auto rendered =
        rt.chat.render_prompt(to_engine_messages(req.messages), req.add_generation_prompt);
    if (!rendered) return respond_error(ex, net::invalid_parameter("messages", rendered.message()));
    ids = encode_chat(rt.tok, *rendered, rt.parse_special_tokens_in_messages);
  } else {
    ids = rt.tok.encode(req.prompt, req.add_special_tokens, true);
  }
  net::json_writer w;
  w.begin_object().field("count", static_cast<std::int64_t>(ids.size()))
      .field("max_model_len", rt.card.max_model_len)
      .key("tokens").begin_array();
  for (auto id : ids) w.value(id);
  w.end_array().key("token_strs").null().end_object();
  ex.respond_json(200, w.take());
}

void serve_backend::detokenize(detokenize_request req,
                               std::shared_ptr<net::http_exchange> ex) {
  auto rt = runtime();
  if (!rt) return respond_error(*ex, net::unavailable("the model is still loading"));
  for (std::size_t i = 0; i < req.tokens.size(); ++i) {
    if (!rt->tok.is_valid(req.tokens[i]))
      return respond_error(*ex, net::invalid_parameter(
                                    fmt::format("tokens[{}]", i),
                                    fmt::format("token id {} is outside the vocabulary [0, {})",
                                                req.tokens[i], rt->tok.n_vocab())));
  }
  net::json_writer w;
  w.begin_object().field("prompt", rt->tok.decode(req.tokens, /*render_special=*/true)).end_object();
  ex->respond_json(200, w.take());
}

namespace {

// A short-lived actor that gathers the scheduler's and supervisor's counters without blocking
// the io thread; an unreachable runtime still gets the server-side numbers. (Its state travels
// as spawn arguments: CAF 0.17 dereferences a null argument tuple for argument-less function
// actors, which UBSan reports.)
void gather_metrics(caf::event_based_actor* self, std::shared_ptr<const serve_runtime> rt,
                    std::shared_ptr<net::server_metrics> m,
                    std::shared_ptr<net::http_exchange> ex) {
  self->request(rt->scheduler, std::chrono::seconds(5), actors::stats_atom::value)
      .then(
          [self, rt, m, ex](actors::scheduler_stats& s) {
            net::runtime_gauges g;
            g.num_waiting_seqs = s.num_waiting_seqs;
            g.num_running_seqs = s.num_running_seqs;
            g.num_kv_blocks_total = s.num_kv_blocks_total;
            g.num_kv_blocks_used = s.num_kv_blocks_used;
            g.num_kv_blocks_cached = s.num_kv_blocks_cached;
            g.num_preemptions_total = s.num_preemptions_total;
            g.num_steps_total = s.num_steps_total;
            g.num_prompt_tokens_computed_total = s.num_prompt_tokens_total;
            g.num_executor_replays_total = s.num_executor_replays_total;
            g.num_prefix_cache_hit_tokens_total = s.num_prefix_cache_hit_tokens_total;
            g.num_spec_decode_draft_tokens_total = s.num_spec_draft_tokens_total;
            g.num_spec_decode_accepted_tokens_total = s.num_spec_accepted_tokens_total;
            g.batch_num_seqs_buckets = s.batch_num_seqs_buckets;
            auto hist = [](actors::histogram_data& h) {
              return net::histogram_snapshot{std::move(h.bounds), std::move(h.counts), h.sum,
                                             h.count};
            };
            g.step_plan_build_s = hist(s.step_timers.plan_build_s);
            g.step_round_trip_s = hist(s.step_timers.round_trip_s);
            for (auto& h : s.step_timers.forward_s) g.step_forward_s.push_back(hist(h));
            g.step_sample_s = hist(s.step_timers.sample_s);
            g.step_num_tokens = hist(s.step_timers.num_tokens);
            const uint64_t replayed = s.num_requests_replayed_total;
            const uint64_t faults =
                rt->faults ? rt->faults->num_faults_injected_total.load() : 0;
            self->request(rt->supervisor, std::chrono::seconds(5), actors::stats_atom::value)
                .then(
                    [m, ex, g, replayed, faults](actors::supervisor_stats& sup) {
                      auto text = m->render(g);
                      text += fmt::format(
                          "# HELP troupe:stage_restarts_total Executor stage restarts (deaths "
                          "and hangs past the step deadline).\n"
                          "# TYPE troupe:stage_restarts_total counter\n"
                          "troupe:stage_restarts_total {}\n"
                          "# HELP troupe:faults_injected_total Faults injected ([faults]).\n"
                          "# TYPE troupe:faults_injected_total counter\n"
                          "troupe:faults_injected_total {}\n"
                          "# HELP troupe:requests_replayed_total Requests recomputed after a "
                          "stage restart (once per restart).\n"
                          "# TYPE troupe:requests_replayed_total counter\n"
                          "troupe:requests_replayed_total {}\n",
                          sup.num_executor_restarts_total, faults, replayed);
                      ex->respond(200, "text/plain; version=0.0.4", std::move(text));
                    },
                    [m, ex, g](caf::error&) {
                      ex->respond(200, "text/plain; version=0.0.4", m->render(g));
                    });
          },
          [m, ex](caf::error&) { ex->respond(200, "text/plain; version=0.0.4", m->render({})); });
}

}  // namespace

void serve_backend::metrics(std::shared_ptr<net::http_exchange> ex) {
  auto rt = runtime();
  if (!rt) return ex->respond(200, "text/plain; version=0.0.4", metrics_->render({}));
  sys_.spawn(gather_metrics, rt, metrics_, std::move(ex));
}

}  // namespace troupe::frontend
