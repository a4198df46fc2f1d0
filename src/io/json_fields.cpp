#include "io/json_fields.h"

#include <algorithm>
#include <cmath>

namespace bringup {

namespace {

// The deepest nesting of arrays and objects in JSON text (brackets inside strings skipped).
size_t nesting_depth(const std::string& text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

Json parse_json(const std::string& text, const std::string& source) {
  // serde_json's limit, so we refuse what Hugging Face's Rust readers refuse; it also keeps the
  // recursive walks over the parsed values (e.g. nested "Sequence" normalizers) off the stack's
  // edge.
  if (const size_t depth = nesting_depth(text); depth > kMaxJsonDepth) {
    throw Error(source + ": JSON nested " + std::to_string(depth) + " levels deep (at most " +
                std::to_string(kMaxJsonDepth) + ")");
  }
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    throw Error(source + ": malformed JSON at byte " + std::to_string(e.byte));
  } catch (const Json::exception& e) {  // out_of_range: a number too large for a double
    throw Error(source + ": malformed JSON (" + std::string(e.what()) + ")");
  }
}

std::string json_type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

JsonFields::JsonFields(const Json& object, std::string source)
    : object_(&object), source_(std::move(source)) {
  if (!object.is_object()) {
    throw Error(source_ + ": expected a JSON object, found " + json_type_name(object));
  }
}

void JsonFields::fail(const char* key, const std::string& what) const {
  throw Error(source_ + ": field '" + key + "' " + what);
}

bool JsonFields::has(const char* key) const {
  return object_->contains(key);
}

bool JsonFields::is_null(const char* key) const {
  return !has(key) || (*object_)[key].is_null();
}

const Json& JsonFields::value(const char* key) const {
  if (!has(key)) fail(key, "is missing");
  return (*object_)[key];
}

std::optional<int64_t> JsonFields::optional_integer(const char* key) const {
  if (is_null(key)) return std::nullopt;
  const Json& v = (*object_)[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) fail(key, "is out of range");
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
      return static_cast<int64_t>(d);
    }
  }
  fail(key, "must be an integer, found " + json_type_name(v));
}

int64_t JsonFields::integer(const char* key) const {
  if (!has(key)) fail(key, "is missing");
  auto v = optional_integer(key);
  if (!v) fail(key, "must be an integer, found null");
  return *v;
}

std::optional<double> JsonFields::optional_number(const char* key) const {
  if (is_null(key)) return std::nullopt;
  const Json& v = (*object_)[key];
  if (!v.is_number()) fail(key, "must be a number, found " + json_type_name(v));
  const double d = v.get<double>();
  if (!std::isfinite(d)) fail(key, "must be finite");
  return d;
}

double JsonFields::number(const char* key) const {
  if (!has(key)) fail(key, "is missing");
  auto v = optional_number(key);
  if (!v) fail(key, "must be a number, found null");
  return *v;
}

std::optional<std::string> JsonFields::optional_string(const char* key) const {
  if (is_null(key)) return std::nullopt;
  const Json& v = (*object_)[key];
  if (!v.is_string()) fail(key, "must be a string, found " + json_type_name(v));
  return v.get<std::string>();
}

std::string JsonFields::string(const char* key) const {
  if (!has(key)) fail(key, "is missing");
  auto v = optional_string(key);
  if (!v) fail(key, "must be a string, found null");
  return *v;
}

std::optional<bool> JsonFields::optional_boolean(const char* key) const {
  if (is_null(key)) return std::nullopt;
  const Json& v = (*object_)[key];
  if (!v.is_boolean()) fail(key, "must be true or false, found " + json_type_name(v));
  return v.get<bool>();
}

}  // namespace bringup
