// Typed access to JSON fields whose errors name the file and the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "bringup/error.h"

namespace bringup {

using Json = nlohmann::json;

// Parses text as JSON; a syntax error names the source and the byte where it was found.
// Arrays and objects nested deeper than this are refused, as serde_json refuses them.
inline constexpr size_t kMaxJsonDepth = 128;

Json parse_json(const std::string& text, const std::string& source);

class JsonFields {
 public:
  JsonFields(const Json& object, std::string source);

  bool has(const char* key) const;
  bool is_null(const char* key) const;
  int64_t integer(const char* key) const;
  std::optional<int64_t> optional_integer(const char* key) const;
  double number(const char* key) const;
  std::optional<double> optional_number(const char* key) const;
  std::string string(const char* key) const;
  std::optional<std::string> optional_string(const char* key) const;
  std::optional<bool> optional_boolean(const char* key) const;
  const Json& value(const char* key) const;  // present, any type

  [[noreturn]] void fail(const char* key, const std::string& what) const;
  const std::string& source() const { return source_; }

 private:
  const Json* object_;
  std::string source_;
};

// "a string", "an integer", ... for messages.
std::string json_type_name(const Json& v);

}  // namespace bringup
