// Values of the Jinja subset that chat templates use, with Python's semantics where the output
// depends on them (truthiness, printing, equality).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace bringup::jinja {

class Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, like Python

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict };

  Value() = default;  // undefined
  static Value none() { return Value(Kind::kNone); }
  Value(bool b) : kind_(Kind::kBool), int_(b) {}       // NOLINT: implicit, as in Python
  Value(int64_t i) : kind_(Kind::kInt), int_(i) {}     // NOLINT
  Value(int i) : kind_(Kind::kInt), int_(i) {}         // NOLINT
  Value(double d) : kind_(Kind::kFloat), float_(d) {}  // NOLINT
  Value(std::string s)
      : kind_(Kind::kString), str_(std::make_shared<std::string>(std::move(s))) {}    // NOLINT
  Value(const char* s) : Value(std::string(s)) {}                                     // NOLINT
  Value(List l) : kind_(Kind::kList), list_(std::make_shared<List>(std::move(l))) {}  // NOLINT
  Value(Dict d) : kind_(Kind::kDict), dict_(std::make_shared<Dict>(std::move(d))) {}  // NOLINT
  // A namespace() object: a dict whose attributes can be assigned.
  static Value namespace_object(Dict d) {
    Value v(std::move(d));
    v.is_namespace_ = true;
    return v;
  }

  static Value from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return is_namespace_; }

  bool truthy() const;
  // Floats are truncated toward zero and saturate at the int64 range (NaN gives 0).
  int64_t as_int() const;
  double as_float() const { return kind_ == Kind::kFloat ? float_ : static_cast<double>(int_); }
  const std::string& str() const { return *str_; }
  const List& list() const { return *list_; }
  List& list() { return *list_; }
  const Dict& dict() const { return *dict_; }
  Dict& dict() { return *dict_; }

  // dict[key] or undefined
  Value get(const std::string& key) const;
  void set(const std::string& key, Value v);
  // Python's str(): what {{ v }} prints.
  std::string to_string() const;
  // Python's repr(), used inside printed lists and dicts.
  std::string repr() const;
  bool equals(const Value& o) const;
  const char* type_name() const;

 private:
  explicit Value(Kind k) : kind_(k) {}
  Kind kind_ = Kind::kUndefined;
  bool is_namespace_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<std::string> str_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
};

// json.dumps(v, ensure_ascii=False, indent=indent) as transformers' tojson filter calls it.
std::string to_python_json(const Value& v, int indent = -1);

}  // namespace bringup::jinja
