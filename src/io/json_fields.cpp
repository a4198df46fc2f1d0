#include "io/json_fields.h"

#include <cmath>

namespace bringup {

Json parse_json(const std::string& text, const std::string& source) {
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
