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

// Lists are immutable once built; namespace objects are the one container that changes (their
// attributes are assigned) and may hold no namespace, so no value can contain itself. Together
// with kMaxDepth on every container built, that keeps each value acyclic and shallow enough for
// the recursive printing, comparison and destruction below (a template looping
// `set ns.x = [ns.x]` would otherwise nest a million levels deep).
class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict };
  static constexpr int kMaxDepth = 256;

  Value() = default;  // undefined
  static Value none() { return Value(Kind::kNone); }
  Value(bool b) : kind_(Kind::kBool), int_(b) {}       // NOLINT: implicit, as in Python
  Value(int64_t i) : kind_(Kind::kInt), int_(i) {}     // NOLINT
  Value(int i) : kind_(Kind::kInt), int_(i) {}         // NOLINT
  Value(double d) : kind_(Kind::kFloat), float_(d) {}  // NOLINT
  Value(std::string s)
      : kind_(Kind::kString), str_(std::make_shared<std::string>(std::move(s))) {}  // NOLINT
  Value(const char* s) : Value(std::string(s)) {}                                   // NOLINT
  // Containers throw Error when nested deeper than kMaxDepth.
  Value(List l);  // NOLINT: implicit, as in Python
  Value(Dict d);  // NOLINT
  // A namespace() object: a dict whose attributes can be assigned. Throws Error if an attribute
  // holds a namespace.
  static Value namespace_object(Dict d);

  static Value from_json(const nlohmann::json& j, int depth = 0);
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
  // Adds or replaces a key of a dict being built, or assigns a namespace attribute.
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
  int depth_ = 0;  // of containers nested in this one when it was built
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<std::string> str_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
};

// json.dumps(v, ensure_ascii=False, indent=indent) as transformers' tojson filter calls it.
std::string to_python_json(const Value& v, int indent = -1);

}  // namespace bringup::jinja
