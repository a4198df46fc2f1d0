// Every failure the library reports on bad input is a bringup::Error whose message is one line
// that names the file, field or argument at fault and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace bringup {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace bringup
