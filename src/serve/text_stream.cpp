#include "serve/text_stream.h"

#include <algorithm>

namespace braid::serve {

TextStream::TextStream(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {
  std::erase(stops_, std::string());
}

std::string TextStream::push(std::string_view piece) {
  if (stopped_) return {};
  held_ += utf8_.push(piece);
  // Every stop string that could appear must start inside held_ (what came before held_
  // could begin none), so searching held_ finds the earliest one.
  size_t cut = std::string::npos;
  for (const std::string& stop : stops_) cut = std::min(cut, held_.find(stop));
  std::string out;
  if (cut != std::string::npos) {
    out = held_.substr(0, cut);
    held_.clear();
    stopped_ = true;
  } else {
    // Keep the longest end of held_ that begins some stop string.
    size_t keep = 0;
    for (const std::string& stop : stops_) {
      for (size_t n = std::min(stop.size() - 1, held_.size()); n > keep; --n) {
        if (held_.compare(held_.size() - n, n, stop, 0, n) == 0) {
          keep = n;
          break;
        }
      }
    }
    out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
  }
  sent_ += out;
  return out;
}

std::string TextStream::finish() {
  if (stopped_) return {};
  std::string out = held_ + utf8_.flush();
  held_.clear();
  sent_ += out;
  return out;
}

}  // namespace braid::serve
