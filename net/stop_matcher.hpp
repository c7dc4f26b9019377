// stop_matcher: finds OpenAI `stop` strings in streamed text, across token boundaries, and makes
// sure no part of a stop string is ever emitted.
//
// Text arrives in pieces (one per token). feed() returns the text that is safe to emit now: it
// holds back the longest suffix that could still be the start of a stop string, and when a stop
// string completes it returns only the text before it and reports stopped. flush() releases the
// held text when generation ends for another reason (length, EOS). After stopped, further input
// is ignored. One matcher per choice; not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace troupe::net {

class stop_matcher {
 public:
  explicit stop_matcher(std::vector<std::string> stops);

  struct output {
    std::string text;      // safe to emit now
    bool stopped = false;  // a stop string matched; text ends right before it
  };

  output feed(std::string_view piece);
  // The held-back text (no stop string matched before the end). Empties the matcher.
  std::string flush();

  bool stopped() const { return stopped_; }
  std::size_t held_bytes() const { return held_.size(); }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace troupe::net
