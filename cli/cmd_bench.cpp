// troupe bench: a load generator for any OpenAI-compatible server (troupe serve, llama-server,
// vLLM), reporting vLLM benchmark_serving's metrics with its definitions (see bench/stats.hpp).
//
//   troupe bench --base-url http://127.0.0.1:8000 --concurrency 16 --num-requests 200
//   troupe bench --request-rate 4 --workload short-chat --slo-ttft-ms 200 --slo-tpot-ms 50
//   troupe bench --dataset prompts.jsonl --endpoint /v1/chat/completions --json out.json
//   troupe bench --request-rates 0.5,1,2,4 --slo-ttft-ms 1000 --slo-tpot-ms 50 --json sweep.json
//
// Prompts: synthetic (--workload sharegpt|short-chat lengths, bench/workload.hpp) built to exact
// token counts with the tokenizer of --tokenizer (a GGUF file; the default model when present,
// else whitespace words approximate tokens), or --dataset FILE.jsonl. One unmeasured warm-up
// request checks the server first (--no-warmup skips it); if it fails, the run stops (exit 1).
// Output: the table on stdout, a progress bar on stderr when stderr is a terminal, --json FILE.
// A sweep (--request-rates R1,R2,...) runs the same requests once per rate, in the order given,
// each run after the previous one finished (synthetic prompts keep their lengths but get new
// text per rate, so no prefix cache carries over): a table per rate, then one line per rate
// (goodput with the --slo-* targets); --json writes {"sweep": [one result object per rate]},
// which tools/plot-goodput draws.
// Exit status: 0 when the run completed and at least one request succeeded, 1 otherwise.
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <simdjson.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>

#include "bench/load_client.hpp"
#include "bench/report.hpp"
#include "bench/stats.hpp"
#include "bench/workload.hpp"
#include "cli/commands.hpp"
#include "memory/gguf_file.hpp"
#include "tokenizer/tokenizer.hpp"

namespace troupe::cli {
namespace {

struct bench_options {
  std::string base_url = "http://127.0.0.1:8000";
  std::string endpoint = "/v1/completions";
  std::string model;
  size_t concurrency = 1;
  double request_rate = std::numeric_limits<double>::infinity();
  std::string request_rates;  // "0.5,1,2": a sweep
  double burstiness = 1.0;
  size_t num_requests = 100;
  std::string workload = "sharegpt";
  std::string dataset;
  int64_t input_len = 0, output_len = 0;
  std::string tokenizer_path = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  uint64_t seed = 0;
  double slo_ttft_ms = 0, slo_tpot_ms = 0, slo_e2e_ms = 0;
  std::string json_path;
  bool json_per_request = false;
  double timeout_s = 600;
  bool no_warmup = false, no_progress = false;
};

// The first model id of GET /v1/models, for servers that check the name.
result<std::string> first_model_id(const bench::server_target& t) {
  namespace http = boost::beast::http;
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    boost::asio::ip::tcp::socket sock(io);
    boost::asio::connect(sock, resolver.resolve(t.host, t.port));
    http::request<http::empty_body> req{http::verb::get, t.path_prefix + "/v1/models", 11};
    req.set(http::field::host, t.host + ":" + t.port);
    http::write(sock, req);
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(sock, buf, res);
    if (res.result() != http::status::ok)
      return error{"GET /v1/models answered " + std::to_string(res.result_int())};
    simdjson::ondemand::parser parser;
    simdjson::padded_string body(res.body());
    std::string_view id;
    auto doc = parser.iterate(body);
    if (doc["data"].at(0)["id"].get_string().get(id))
      return error{"GET /v1/models has no data[0].id"};
    return std::string(id);
  } catch (const std::exception& e) {
    return error{"GET /v1/models at " + t.host + ":" + t.port + ": " + e.what()};
  }
}

// Whitespace words as tokens: used when no tokenizer file is available.
bench::token_codec word_codec() {
  auto words = std::make_shared<std::vector<std::string>>();
  bench::token_codec c;
  c.encode = [words](std::string_view text) {
    std::vector<int32_t> ids;
    std::istringstream in{std::string(text)};
    for (std::string w; in >> w;) {
      ids.push_back(static_cast<int32_t>(words->size()));
      words->push_back(w);
    }
    return ids;
  };
  c.decode = [words](const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += (s.empty() ? "" : " ") + (*words)[static_cast<size_t>(id)];
    return s;
  };
  return c;
}

void draw_progress(size_t done, size_t total) {
  const int width = 40;
  const int filled = total ? static_cast<int>(width * done / total) : width;
  std::fprintf(stderr, "\r[%s%s] %zu/%zu requests", std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(width - filled), '.').c_str(), done, total);
  if (done == total) std::fputc('\n', stderr);
  std::fflush(stderr);
}

// "0.5,1,2,inf" -> rates (> 0), or an error naming the bad entry.
result<std::vector<double>> parse_rates(const std::string& text) {
  std::vector<double> rates;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    double v = 0;
    size_t used = 0;
    try {
      v = item == "inf" ? std::numeric_limits<double>::infinity() : std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if ((item != "inf" && used != item.size()) || !(v > 0))
      return error{"--request-rates: '" + item + "' is not a positive number (or inf)"};
    rates.push_back(v);
  }
  if (rates.empty()) return error{"--request-rates: give at least one rate, e.g. 0.5,1,2,4"};
  return rates;
}

int run_bench(const bench_options& o) {
  std::vector<double> rates = {o.request_rate};
  if (!o.request_rates.empty()) {
    auto parsed = parse_rates(o.request_rates);
    if (!parsed) {
      std::fprintf(stderr, "troupe bench: %s\n", parsed.message().c_str());
      return 1;
    }
    rates = std::move(parsed.value());
  }
  auto target = bench::parse_base_url(o.base_url);
  if (!target) {
    std::fprintf(stderr, "troupe bench: %s\n", target.message().c_str());
    return 1;
  }
  std::string model = o.model;
  if (model.empty()) {
    auto id = first_model_id(*target);
    if (!id) {
      std::fprintf(stderr, "troupe bench: %s (give --model)\n", id.message().c_str());
      return 1;
    }
    model = *id;
  }

  // Token codec: the real tokenizer when its GGUF is there, else words.
  bench::token_codec codec = word_codec();
  std::string codec_name = "whitespace words";
  if (std::ifstream(o.tokenizer_path).good()) {
    auto file = gguf_file::open(o.tokenizer_path);
    if (!file) {
      std::fprintf(stderr, "troupe bench: %s\n", file.message().c_str());
      return 1;
    }
    auto tok = tokenizer::from_gguf(file.value());
    if (!tok) {
      std::fprintf(stderr, "troupe bench: %s\n", tok.message().c_str());
      return 1;
    }
    auto shared = std::make_shared<tokenizer>(std::move(tok.value()));
    codec.encode = [shared](std::string_view t) { return shared->encode(t, false, false); };
    codec.decode = [shared](const std::vector<int32_t>& ids) { return shared->decode(ids, false); };
    codec_name = o.tokenizer_path;
  }

  std::vector<bench::bench_request> requests;
  std::string workload;
  // Synthetic prompts with the same lengths and a different text per sweep run (`run` > 0):
  // a server's prefix cache would otherwise answer every run after the first from the prompts
  // it has just seen.
  std::vector<bench::length_pair> synthetic_lengths;
  auto synthesize = [&](size_t run) {
    std::vector<bench::bench_request> out;
    for (size_t i = 0; i < synthetic_lengths.size(); ++i)
      out.push_back(bench::synthesize_request(codec, synthetic_lengths[i].input,
                                              synthetic_lengths[i].output,
                                              (o.seed + run * 7919) * 1000003 + i));
    return out;
  };
  if (!o.dataset.empty()) {
    auto loaded = bench::load_dataset(o.dataset, o.output_len > 0 ? o.output_len : 128, &codec);
    if (!loaded) {
      std::fprintf(stderr, "troupe bench: %s\n", loaded.message().c_str());
      return 1;
    }
    requests = std::move(loaded.value());
    while (requests.size() < o.num_requests)  // cycle the file to reach --num-requests
      requests.push_back(requests[requests.size() % loaded.value().size()]);
    requests.resize(o.num_requests);
    workload = o.dataset;
  } else {
    auto profile = bench::find_length_profile(o.workload);
    if (!profile) {
      std::fprintf(stderr, "troupe bench: %s\n", profile.message().c_str());
      return 1;
    }
    synthetic_lengths = bench::sample_lengths(*profile, o.num_requests, o.seed);
    for (auto& l : synthetic_lengths) {
      if (o.input_len > 0) l.input = o.input_len;
      if (o.output_len > 0) l.output = o.output_len;
    }
    requests = synthesize(0);
    workload = o.workload;
    if (o.input_len > 0) workload += " input=" + std::to_string(o.input_len);
    if (o.output_len > 0) workload += " output=" + std::to_string(o.output_len);
  }
  workload += " (tokens: " + codec_name + ")";

  bench::load_options lo;
  lo.server = *target;
  lo.endpoint = o.endpoint;
  lo.kind = o.endpoint.find("chat") != std::string::npos ? bench::api_kind::chat
                                                          : bench::api_kind::completions;
  lo.model = model;
  lo.request_timeout_s = o.timeout_s;

  if (!o.no_warmup) {
    lo.max_concurrency = 1;
    lo.arrivals_s = {0.0};
    auto warm = requests.front();
    warm.max_tokens = std::min<int64_t>(warm.max_tokens, 16);
    const auto w = bench::run_load(lo, {warm});
    if (!w.records[0].success) {
      std::fprintf(stderr, "troupe bench: the warm-up request to %s%s failed: %s\n",
                   o.base_url.c_str(), o.endpoint.c_str(), w.records[0].error.c_str());
      return 1;
    }
  }

  lo.max_concurrency = o.concurrency;
  if (!o.no_progress && isatty(STDERR_FILENO)) lo.on_progress = draw_progress;
  bench::slo goal;
  if (o.slo_ttft_ms > 0) goal.ttft_ms = o.slo_ttft_ms;
  if (o.slo_tpot_ms > 0) goal.tpot_ms = o.slo_tpot_ms;
  if (o.slo_e2e_ms > 0) goal.e2e_ms = o.slo_e2e_ms;

  std::vector<bench::sweep_point> points;
  if (rates.size() > 1 && !o.dataset.empty())
    std::fprintf(stderr, "troupe bench: note: every rate sends the same --dataset prompts; a "
                         "server's prefix cache answers later rates faster\n");
  for (size_t run = 0; run < rates.size(); ++run) {
    const double rate = rates[run];
    if (run > 0 && o.dataset.empty()) requests = synthesize(run);
    lo.arrivals_s = bench::arrival_times(requests.size(), rate, o.burstiness, o.seed);
    auto res = bench::run_load(lo, requests);
    const auto metrics = bench::compute_metrics(res.records, res.duration_s, goal);

    bench::run_description d;
    d.base_url = o.base_url;
    d.endpoint = o.endpoint;
    d.model = model;
    d.workload = workload;
    d.num_requests = requests.size();
    d.max_concurrency = o.concurrency;
    d.request_rate = rate;
    d.burstiness = o.burstiness;
    d.seed = o.seed;
    d.connections_opened = res.connections_opened;
    d.goal = goal;
    const auto table = bench::format_table(d, metrics);
    std::fwrite(table.data(), 1, table.size(), stdout);
    std::fflush(stdout);
    points.push_back({d, metrics, o.json_per_request ? std::move(res.records)
                                                     : std::vector<bench::request_record>{}});
  }

  if (points.size() > 1) {
    const auto sweep = bench::format_sweep_table(points);
    std::fwrite(sweep.data(), 1, sweep.size(), stdout);
    std::fflush(stdout);
  }
  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    const auto& p = points.front();
    if (o.request_rates.empty())
      out << bench::format_json(p.run, p.metrics, o.json_per_request ? &p.records : nullptr);
    else
      out << bench::format_sweep_json(points, o.json_per_request);
    out << '\n';
    if (!out) {
      std::fprintf(stderr, "troupe bench: cannot write %s\n", o.json_path.c_str());
      return 1;
    }
  }
  bool all_completed = true;
  for (const auto& p : points) all_completed = all_completed && p.metrics.completed > 0;
  return all_completed ? 0 : 1;
}

}  // namespace

command add_bench_command(CLI::App& root) {
  auto o = std::make_shared<bench_options>();
  auto* app = root.add_subcommand(
      "bench", "load-test an OpenAI-compatible server (TTFT, TPOT, ITL, throughput, goodput)");
  app->add_option("--base-url", o->base_url, "server URL (http://host:port)")->capture_default_str();
  app->add_option("--endpoint", o->endpoint, "/v1/completions or /v1/chat/completions")
      ->check(CLI::IsMember({"/v1/completions", "/v1/chat/completions"}))
      ->capture_default_str();
  app->add_option("--model", o->model, "model name sent (default: first id of GET /v1/models)");
  app->add_option("--concurrency", o->concurrency,
                  "max requests in flight; with no --request-rate this is a closed loop (0 = no cap)")
      ->capture_default_str();
  app->add_option("--request-rate", o->request_rate,
                  "open loop: Poisson arrivals at this many requests/s (default inf = closed loop)")
      ->check(CLI::PositiveNumber);
  app->add_option("--request-rates", o->request_rates,
                  "sweep: comma-separated rates (e.g. 0.5,1,2,4), one run of --num-requests each")
      ->excludes("--request-rate");
  app->add_option("--burstiness", o->burstiness, "gamma shape of arrival gaps (1 = Poisson)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--num-requests", o->num_requests, "requests to send")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--workload", o->workload, "synthetic lengths: sharegpt or short-chat")
      ->capture_default_str();
  app->add_option("--dataset", o->dataset,
                  "JSONL of {\"prompt\": ..., \"max_tokens\": N} instead of synthetic prompts");
  app->add_option("--input-len", o->input_len, "fixed prompt length in tokens (synthetic)");
  app->add_option("--output-len", o->output_len, "fixed max_tokens for every request");
  app->add_option("--tokenizer", o->tokenizer_path, "GGUF whose tokenizer sizes the prompts")
      ->capture_default_str();
  app->add_option("--seed", o->seed, "seed of lengths, prompts and arrivals")->capture_default_str();
  app->add_option("--slo-ttft-ms", o->slo_ttft_ms, "goodput SLO on TTFT (ms)");
  app->add_option("--slo-tpot-ms", o->slo_tpot_ms, "goodput SLO on TPOT (ms)");
  app->add_option("--slo-e2e-ms", o->slo_e2e_ms, "goodput SLO on end-to-end latency (ms)");
  app->add_option("--json", o->json_path, "write the results as JSON to this file");
  app->add_flag("--json-per-request", o->json_per_request, "include every request in --json");
  app->add_option("--timeout", o->timeout_s, "per-request timeout in seconds")->capture_default_str();
  app->add_flag("--no-warmup", o->no_warmup, "skip the unmeasured warm-up request");
  app->add_flag("--no-progress", o->no_progress, "no progress bar");
  return {app, [o] { return run_bench(*o); }};
}

}  // namespace troupe::cli
