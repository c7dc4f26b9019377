#include "bench/workload.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>

namespace troupe::bench {
namespace {

int64_t draw(const lognormal_shape& s, std::mt19937_64& rng) {
  // mean of lognormal(mu, sigma) is exp(mu + sigma^2/2): pick mu so the mean is s.mean.
  const double mu = std::log(s.mean) - s.sigma * s.sigma / 2;
  std::lognormal_distribution<double> d(mu, s.sigma);
  const auto v = static_cast<int64_t>(std::llround(d(rng)));
  return std::clamp(v, s.min, s.max);
}

// Common English words; most are one token with a leading space in GPT-2-style vocabularies, so
// the text reads like prose and tokenizes predictably.
constexpr std::string_view words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "time", "people", "year",
    "way", "day", "man", "thing", "woman", "life", "child", "world", "school", "state", "family",
    "student", "group", "country", "problem", "hand", "part", "place", "case", "week", "company",
    "system", "program", "question", "work", "government", "number", "night", "point", "home",
    "water", "room", "mother", "area", "money", "story", "fact", "month", "lot", "right",
    "study", "book", "eye", "job", "word", "business", "issue", "side", "kind", "head", "house",
    "service", "friend", "father", "power", "hour", "game", "line", "end", "member", "law",
    "car", "city", "name", "team", "minute", "idea", "kid", "body", "information", "back",
    "parent", "face", "others", "level", "office", "door", "health", "person", "art", "war",
    "history", "party", "result", "change", "morning", "reason", "research", "girl", "guy",
    "moment", "air", "teacher", "force", "education", "explain", "write", "about"};

}  // namespace

result<length_profile> find_length_profile(std::string_view name) {
  if (name == "sharegpt")
    return length_profile{"sharegpt", {161.31, 1.0, 4, 1024}, {337.99, 0.9, 4, 1024}};
  if (name == "short-chat")
    return length_profile{"short-chat", {19.31, 0.7, 4, 256}, {58.45, 0.8, 4, 256}};
  return error{"unknown length profile '" + std::string(name) + "' (choose sharegpt or short-chat)"};
}

std::vector<length_pair> sample_lengths(const length_profile& p, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<length_pair> out(n);
  for (auto& lp : out) {
    lp.input = draw(p.input, rng);
    lp.output = draw(p.output, rng);
  }
  return out;
}

std::vector<double> arrival_times(size_t n, double rate_per_s, double burstiness, uint64_t seed) {
  TROUPE_ASSERT(rate_per_s > 0 && burstiness > 0);
  std::vector<double> out(n, 0.0);
  if (std::isinf(rate_per_s)) return out;
  // Gamma(shape k, scale theta) has mean k*theta: theta = 1/(rate*k) keeps the mean gap 1/rate
  // while k sets the variability (k = 1: exponential).
  std::mt19937_64 rng(seed);
  std::gamma_distribution<double> gap(burstiness, 1.0 / (rate_per_s * burstiness));
  double t = 0;
  for (auto& a : out) {
    t += gap(rng);
    a = t;
  }
  return out;
}

bench_request synthesize_request(const token_codec& codec, int64_t tokens, int64_t max_tokens,
                                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, std::size(words) - 1);
  std::string text;
  std::vector<int32_t> ids;
  // Grow by batches of words until the encoding is long enough; words are >= 1 token each.
  while (static_cast<int64_t>(ids.size()) < tokens) {
    for (int64_t i = 0; i < tokens - static_cast<int64_t>(ids.size()) + 1; ++i) {
      if (!text.empty()) text += ' ';
      text += words[pick(rng)];
    }
    ids = codec.encode(text);
  }
  ids.resize(static_cast<size_t>(tokens));
  bench_request r;
  r.prompt = codec.decode(ids);
  r.prompt_tokens = static_cast<int64_t>(codec.encode(r.prompt).size());
  r.max_tokens = max_tokens;
  return r;
}

result<std::vector<bench_request>> load_dataset(const std::string& path,
                                                int64_t default_max_tokens,
                                                const token_codec* codec) {
  std::ifstream in(path);
  if (!in) return error{path + ": cannot open"};
  std::vector<bench_request> out;
  simdjson::ondemand::parser parser;
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto where = path + ":" + std::to_string(line_no) + ": ";
    simdjson::padded_string padded(line);
    simdjson::ondemand::document doc;
    if (parser.iterate(padded).get(doc)) return error{where + "not valid JSON"};
    simdjson::ondemand::object obj;
    if (doc.get_object().get(obj)) return error{where + "not a JSON object"};
    bench_request r;
    r.max_tokens = default_max_tokens;
    bool has_prompt = false;
    for (auto field : obj) {
      std::string_view key;
      if (field.unescaped_key().get(key)) return error{where + "bad key"};
      if (key == "prompt") {
        std::string_view s;
        if (field.value().get_string().get(s)) return error{where + "\"prompt\" is not a string"};
        r.prompt = std::string(s);
        has_prompt = true;
      } else if (key == "max_tokens" || key == "output_len") {
        int64_t v = 0;
        if (field.value().get_int64().get(v) || v < 1)
          return error{where + "\"" + std::string(key) + "\" is not a positive integer"};
        r.max_tokens = v;
      }
    }
    if (!has_prompt) return error{where + "no \"prompt\" string"};
    if (codec) r.prompt_tokens = static_cast<int64_t>(codec->encode(r.prompt).size());
    out.push_back(std::move(r));
  }
  if (out.empty()) return error{path + ": no requests"};
  return out;
}

}  // namespace troupe::bench
