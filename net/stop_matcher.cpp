#include "net/stop_matcher.hpp"

#include <algorithm>

namespace troupe::net {

stop_matcher::stop_matcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

stop_matcher::output stop_matcher::feed(std::string_view piece) {
  output out;
  if (stopped_) return out;
  held_.append(piece);
  // The earliest complete stop string wins: the client must see nothing after where it starts.
  std::size_t first = std::string::npos;
  for (const auto& s : stops_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    out.text = held_.substr(0, first);
    out.stopped = stopped_ = true;
    held_.clear();
    return out;
  }
  // No stop string is complete, so a held suffix is at most max_len-1 bytes long; keep the
  // longest suffix that is a proper prefix of some stop string.
  std::size_t keep = 0;
  for (const auto& s : stops_) {
    std::size_t max_k = std::min(s.size() - 1, held_.size());
    for (std::size_t k = max_k; k > keep; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  out.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string stop_matcher::flush() {
  std::string s = std::move(held_);
  held_.clear();
  return s;
}

}  // namespace troupe::net
