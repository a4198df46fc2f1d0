// Stop strings for streamed text: text is released as soon as it can no longer be the start of a
// stop string, and generation stops where one completes (the stop string itself is not shown).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace bringup {

class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops);
  // Adds generated text; returns the text that is safe to show now.
  std::string push(std::string_view text);
  // At the end of generation: whatever is still held back.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace bringup
