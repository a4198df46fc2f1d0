#include "chat/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "bringup/error.h"

namespace bringup::jinja {

namespace {

// Python's repr() of a float: the shortest digits that round-trip, scientific notation when the
// exponent is below -4 or at least 16.
std::string python_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[40];
  int prec = 1;
  for (; prec < 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
  std::string s(buf);
  const size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  const int exp = std::atoi(s.c_str() + e + 1);
  std::string digits;
  const bool neg = mant[0] == '-';
  for (char c : mant) {
    if (c >= '0' && c <= '9') digits += c;
  }
  std::string out = neg ? "-" : "";
  if (exp < -4 || exp >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return out + eb;
  }
  if (exp >= 0) {
    if (static_cast<int>(digits.size()) <= exp + 1) {
      out += digits + std::string(exp + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
    }
  } else {
    out += "0." + std::string(-exp - 1, '0') + digits;
  }
  return out;
}

std::string python_repr_string(const std::string& s) {
  // Python picks single quotes unless the string holds a single quote and no double quote.
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == q) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + q;
}

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void dump(std::string& out, const Value& v, int indent, int depth) {
  auto newline = [&](int d) {
    out += '\n';
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.truthy() ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::kFloat: {
      const double d = v.as_float();
      out += std::isnan(d)   ? "NaN"
             : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity")
                             : python_float(d);
      return;
    }
    case Value::Kind::kString:
      json_string(out, v.str());
      return;
    case Value::Kind::kList: {
      if (v.list().empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < v.list().size(); ++i) {
        if (i) out += indent >= 0 ? "," : ", ";
        if (indent >= 0) newline(depth + 1);
        dump(out, v.list()[i], indent, depth + 1);
      }
      if (indent >= 0) newline(depth);
      out += ']';
      return;
    }
    case Value::Kind::kDict: {
      if (v.dict().empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t i = 0; i < v.dict().size(); ++i) {
        if (i) out += indent >= 0 ? "," : ", ";
        if (indent >= 0) newline(depth + 1);
        json_string(out, v.dict()[i].first);
        out += ": ";
        dump(out, v.dict()[i].second, indent, depth + 1);
      }
      if (indent >= 0) newline(depth);
      out += '}';
      return;
    }
  }
}

}  // namespace

namespace {

int container_depth(int child_depth) {
  if (child_depth + 1 > Value::kMaxDepth) {
    throw Error("chat template: a value is nested more than " + std::to_string(Value::kMaxDepth) +
                " levels deep");
  }
  return child_depth + 1;
}

// Whether v is or holds a namespace object (v is acyclic, so the walk ends).
bool holds_namespace(const Value& v) {
  std::vector<const Value*> stack{&v};
  while (!stack.empty()) {
    const Value* x = stack.back();
    stack.pop_back();
    if (x->is_namespace()) return true;
    if (x->is_list()) {
      for (const Value& e : x->list()) stack.push_back(&e);
    } else if (x->is_dict()) {
      for (const auto& kv : x->dict()) stack.push_back(&kv.second);
    }
  }
  return false;
}

}  // namespace

Value::Value(List l) : kind_(Kind::kList) {
  int deepest = 0;
  for (const Value& e : l) deepest = std::max(deepest, e.depth_);
  depth_ = container_depth(deepest);
  list_ = std::make_shared<List>(std::move(l));
}

Value::Value(Dict d) : kind_(Kind::kDict) {
  int deepest = 0;
  for (const auto& kv : d) deepest = std::max(deepest, kv.second.depth_);
  depth_ = container_depth(deepest);
  dict_ = std::make_shared<Dict>(std::move(d));
}

Value Value::namespace_object(Dict d) {
  for (const auto& [key, v] : d) {
    if (holds_namespace(v)) {
      throw Error("chat template: namespace attribute '" + key +
                  "' cannot hold a namespace (not supported)");
    }
  }
  Value v(std::move(d));
  v.is_namespace_ = true;
  return v;
}

Value Value::from_json(const nlohmann::json& j, int depth) {
  if (depth > kMaxDepth) container_depth(depth);  // throws
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return none();
    case nlohmann::json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return Value(j.get<int64_t>());
    case nlohmann::json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      List l;
      for (const auto& e : j) l.push_back(from_json(e, depth + 1));
      return Value(std::move(l));
    }
    case nlohmann::json::value_t::object: {
      Dict d;
      for (const auto& [k, e] : j.items()) d.emplace_back(k, from_json(e, depth + 1));
      return Value(std::move(d));
    }
    default:
      return none();
  }
}

nlohmann::json Value::to_json() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return nullptr;
    case Kind::kBool:
      return int_ != 0;
    case Kind::kInt:
      return int_;
    case Kind::kFloat:
      return float_;
    case Kind::kString:
      return *str_;
    case Kind::kList: {
      nlohmann::json a = nlohmann::json::array();
      for (const Value& v : *list_) a.push_back(v.to_json());
      return a;
    }
    case Kind::kDict: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& [k, v] : *dict_) o[k] = v.to_json();
      return o;
    }
  }
  return nullptr;
}

int64_t Value::as_int() const {
  if (kind_ != Kind::kFloat) return int_;
  if (std::isnan(float_)) return 0;
  if (float_ >= 9223372036854775807.0) return INT64_MAX;
  if (float_ <= -9223372036854775808.0) return INT64_MIN;
  return static_cast<int64_t>(float_);
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
    case Kind::kInt:
      return int_ != 0;
    case Kind::kFloat:
      return float_ != 0;
    case Kind::kString:
      return !str_->empty();
    case Kind::kList:
      return !list_->empty();
    case Kind::kDict:
      return is_namespace_ || !dict_->empty();
  }
  return false;
}

Value Value::get(const std::string& key) const {
  if (kind_ != Kind::kDict) return Value();
  for (const auto& [k, v] : *dict_) {
    if (k == key) return v;
  }
  return Value();
}

void Value::set(const std::string& key, Value v) {
  if (is_namespace_ && holds_namespace(v)) {
    throw Error("chat template: namespace attribute '" + key +
                "' cannot hold a namespace (not supported)");
  }
  depth_ = std::max(depth_, container_depth(v.depth_));
  for (auto& [k, old] : *dict_) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  dict_->emplace_back(key, std::move(v));
}

std::string Value::to_string() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kString:
      return *str_;
    default:
      return repr();
  }
}

std::string Value::repr() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return int_ ? "True" : "False";
    case Kind::kInt:
      return std::to_string(int_);
    case Kind::kFloat:
      return python_float(float_);
    case Kind::kString:
      return python_repr_string(*str_);
    case Kind::kList: {
      std::string s = "[";
      for (size_t i = 0; i < list_->size(); ++i) s += (i ? ", " : "") + (*list_)[i].repr();
      return s + "]";
    }
    case Kind::kDict: {
      if (is_namespace_) return "<Namespace>";
      std::string s = "{";
      for (size_t i = 0; i < dict_->size(); ++i) {
        s += (i ? ", " : "") + python_repr_string((*dict_)[i].first) + ": " +
             (*dict_)[i].second.repr();
      }
      return s + "}";
    }
  }
  return "";
}

bool Value::equals(const Value& o) const {
  if (is_number() && o.is_number()) {
    if (kind_ == Kind::kInt && o.kind_ == Kind::kInt) return int_ == o.int_;
    return as_float() == o.as_float();
  }
  if ((kind_ == Kind::kBool && o.is_number()) || (is_number() && o.kind_ == Kind::kBool)) {
    return as_float() == o.as_float();
  }
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kBool:
      return int_ == o.int_;
    case Kind::kString:
      return *str_ == *o.str_;
    case Kind::kList: {
      if (list_->size() != o.list_->size()) return false;
      for (size_t i = 0; i < list_->size(); ++i) {
        if (!(*list_)[i].equals((*o.list_)[i])) return false;
      }
      return true;
    }
    case Kind::kDict: {
      if (dict_->size() != o.dict_->size()) return false;
      for (const auto& [k, v] : *dict_) {
        if (!v.equals(o.get(k))) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

const char* Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "undefined";
    case Kind::kNone:
      return "none";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "string";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
  }
  return "?";
}

std::string to_python_json(const Value& v, int indent) {
  std::string out;
  dump(out, v, indent, 0);
  return out;
}

}  // namespace bringup::jinja
