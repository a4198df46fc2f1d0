// Rendering the statement tree with Python's semantics: scopes, loops, filters, tests and
// methods of the supported subset.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>

#include "bringup/error.h"
#include "chat/jinja.h"
#include "chat/jinja_syntax.h"

namespace bringup::jinja {

namespace {

using detail::Arg;
using detail::Expr;
using detail::fail;
using Node = Template::Node;

struct BreakSignal {};
struct ContinueSignal {};

std::string strip_chars(const std::string& s, const std::string& chars, bool left, bool right) {
  auto is_strip = [&](char c) {
    return chars.empty() ? std::isspace(static_cast<unsigned char>(c)) != 0
                         : chars.find(c) != std::string::npos;
  };
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e && is_strip(s[b])) ++b;
  }
  if (right) {
    while (e > b && is_strip(s[e - 1])) --e;
  }
  return s.substr(b, e - b);
}

class Renderer {
 public:
  Renderer(const Value& context, const Limits& limits) : limits_(limits) {
    scopes_.push_back({});
    globals_ = context;
  }

  void render(const Node& n, std::string& out) {
    switch (n.kind) {
      case Node::kBody:
        for (const auto& c : n.children) render(*c, out);
        return;
      case Node::kText:
        emit(out, n.text, n.line);
        return;
      case Node::kOutput:
        emit(out, eval(*n.exprs[0]).to_string(), n.line);
        return;
      case Node::kIf:
        for (size_t i = 0; i < n.exprs.size(); ++i) {
          if (eval(*n.exprs[i]).truthy()) {
            render(*n.children[i], out);
            return;
          }
        }
        if (n.has_else) render(*n.children.back(), out);
        return;
      case Node::kFor:
        render_for(n, out);
        return;
      case Node::kSet: {
        Value v = eval(*n.exprs[0]);
        if (n.targets.size() == 2) {
          Value ns = lookup(n.targets[0]);
          if (!ns.is_namespace()) fail(n.line, "'" + n.targets[0] + "' is not a namespace");
          ns.set(n.targets[1], std::move(v));
        } else {
          scopes_.back()[n.targets[0]] = std::move(v);
        }
        return;
      }
      case Node::kBreak:
        throw BreakSignal{};
      case Node::kContinue:
        throw ContinueSignal{};
    }
  }

 private:
  void emit(std::string& out, const std::string& s, int line) {
    out += s;
    if (out.size() > limits_.max_output_bytes) {
      fail(line, "output exceeds " + std::to_string(limits_.max_output_bytes) + " bytes");
    }
  }

  void render_for(const Node& n, std::string& out) {
    const Value seq = eval(*n.exprs[0]);
    List items;
    if (seq.is_list()) {
      items = seq.list();
    } else if (seq.is_dict()) {
      for (const auto& [k, v] : seq.dict()) items.push_back(Value(k));
    } else if (seq.is_string()) {
      for (char c : seq.str()) items.push_back(Value(std::string(1, c)));
    } else if (!seq.is_undefined() && !seq.is_none()) {
      fail(n.line, std::string("cannot loop over a ") + seq.type_name());
    } else if (seq.is_none()) {
      fail(n.line, "cannot loop over none");
    }
    if (items.empty()) {
      if (n.has_else) render(*n.children[1], out);
      return;
    }
    scopes_.push_back({});
    const int64_t len = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < len; ++i) {
      if (++iterations_ > limits_.max_loop_iterations) {
        fail(n.line,
             "loops ran more than " + std::to_string(limits_.max_loop_iterations) + " iterations");
      }
      auto& scope = scopes_.back();
      scope.clear();
      if (n.targets.size() == 1) {
        scope[n.targets[0]] = items[i];
      } else {
        if (!items[i].is_list() || items[i].list().size() != n.targets.size()) {
          fail(n.line,
               "cannot unpack a loop item into " + std::to_string(n.targets.size()) + " names");
        }
        for (size_t t = 0; t < n.targets.size(); ++t) scope[n.targets[t]] = items[i].list()[t];
      }
      Dict loop = {{"index", Value(i + 1)},
                   {"index0", Value(i)},
                   {"revindex", Value(len - i)},
                   {"revindex0", Value(len - i - 1)},
                   {"first", Value(i == 0)},
                   {"last", Value(i == len - 1)},
                   {"length", Value(len)},
                   {"previtem", i > 0 ? items[i - 1] : Value()},
                   {"nextitem", i + 1 < len ? items[i + 1] : Value()}};
      scope["loop"] = Value(std::move(loop));
      try {
        render(*n.children[0], out);
      } catch (const ContinueSignal&) {
      } catch (const BreakSignal&) {
        break;
      }
    }
    scopes_.pop_back();
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      if (auto f = it->find(name); f != it->end()) return f->second;
    }
    return globals_.get(name);
  }

  static int64_t index(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::kLiteral:
        return e.literal;
      case Expr::kName:
        return lookup(e.name);
      case Expr::kAttr: {
        const Value obj = eval(*e.sub[0]);
        if (obj.is_undefined()) fail(e.line, "'" + e.name + "' of an undefined value");
        if (obj.is_dict()) return obj.get(e.name);
        return Value();
      }
      case Expr::kItem: {
        const Value obj = eval(*e.sub[0]);
        const Value key = eval(*e.sub[1]);
        if (obj.is_undefined()) fail(e.line, "subscript of an undefined value");
        if (obj.is_dict() && key.is_string()) return obj.get(key.str());
        if ((obj.is_list() || obj.is_string()) && key.kind() == Value::Kind::kInt) {
          const int64_t n = obj.is_list() ? static_cast<int64_t>(obj.list().size())
                                          : static_cast<int64_t>(obj.str().size());
          const int64_t i = index(key.as_int(), n);
          if (i < 0 || i >= n) return Value();
          return obj.is_list() ? obj.list()[i] : Value(std::string(1, obj.str()[i]));
        }
        return Value();
      }
      case Expr::kSlice:
        return slice(e);
      case Expr::kCall:
        return call(e);
      case Expr::kFilter:
        return filter(e);
      case Expr::kTest: {
        const bool r = test(e);
        return Value(e.negate ? !r : r);
      }
      case Expr::kNeg: {
        const Value v = eval(*e.sub[0]);
        if (v.kind() == Value::Kind::kInt) {
          if (v.as_int() == INT64_MIN) fail(e.line, "integer overflow");
          return Value(-v.as_int());
        }
        if (v.is_number()) return Value(-v.as_float());
        fail(e.line, std::string("cannot negate a ") + v.type_name());
      }
      case Expr::kNot:
        return Value(!eval(*e.sub[0]).truthy());
      case Expr::kAnd: {
        Value a = eval(*e.sub[0]);
        return a.truthy() ? eval(*e.sub[1]) : a;
      }
      case Expr::kOr: {
        Value a = eval(*e.sub[0]);
        return a.truthy() ? a : eval(*e.sub[1]);
      }
      case Expr::kCond: {
        if (eval(*e.sub[1]).truthy()) return eval(*e.sub[0]);
        return e.sub.size() > 2 ? eval(*e.sub[2]) : Value();
      }
      case Expr::kList: {
        List l;
        for (const auto& s : e.sub) l.push_back(eval(*s));
        return Value(std::move(l));
      }
      case Expr::kDict: {
        Value d = Value(Dict{});
        for (size_t i = 0; i + 1 < e.sub.size(); i += 2) {
          const Value k = eval(*e.sub[i]);
          if (!k.is_string()) fail(e.line, "dict keys must be strings");
          d.set(k.str(), eval(*e.sub[i + 1]));
        }
        return d;
      }
      case Expr::kBinary:
        return binary(e);
    }
    return Value();
  }

  Value slice(const Expr& e) {
    const Value obj = eval(*e.sub[0]);
    const int64_t n = obj.is_list()     ? static_cast<int64_t>(obj.list().size())
                      : obj.is_string() ? static_cast<int64_t>(obj.str().size())
                                        : -1;
    if (n < 0) fail(e.line, std::string("cannot slice a ") + obj.type_name());
    auto part = [&](int k, int64_t dflt) -> int64_t {
      if (!e.sub[k]) return dflt;
      const Value v = eval(*e.sub[k]);
      if (v.is_none()) return dflt;
      if (v.kind() != Value::Kind::kInt) fail(e.line, "slice bounds must be integers");
      return v.as_int();
    };
    const int64_t step = part(3, 1);
    if (step == 0) fail(e.line, "slice step cannot be zero");
    auto clamp = [&](int64_t i, bool is_start) {
      if (i < 0) i += n;
      if (step > 0) return std::clamp<int64_t>(i, 0, n);
      (void)is_start;
      return std::clamp<int64_t>(i, -1, n - 1);
    };
    const int64_t start = e.sub[1] ? clamp(part(1, 0), true) : (step > 0 ? 0 : n - 1);
    const int64_t stop = e.sub[2] ? clamp(part(2, 0), false) : (step > 0 ? n : -1);
    List l;
    std::string s;
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
      if (obj.is_list()) {
        l.push_back(obj.list()[i]);
      } else {
        s += obj.str()[i];
      }
      if (__builtin_add_overflow(i, step, &i)) break;
    }
    return obj.is_list() ? Value(std::move(l)) : Value(s);
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    const Value a = eval(*e.sub[0]);
    const Value b = eval(*e.sub[1]);
    if (op == "~") return Value(a.to_string() + b.to_string());
    if (op == "==") return Value(a.equals(b));
    if (op == "!=") return Value(!a.equals(b));
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.is_string() && a.is_string()) {
        found = b.str().find(a.str()) != std::string::npos;
      } else if (b.is_list()) {
        for (const Value& v : b.list()) found = found || v.equals(a);
      } else if (b.is_dict() && a.is_string()) {
        for (const auto& [k, v] : b.dict()) found = found || k == a.str();
      } else if (!b.is_undefined()) {
        fail(e.line, std::string("'in' needs a string, list or dict, not a ") + b.type_name());
      }
      return Value(op == "in" ? found : !found);
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int c;
      if (a.is_number() && b.is_number()) {
        c = a.as_float() < b.as_float() ? -1 : a.as_float() > b.as_float() ? 1 : 0;
      } else if (a.is_string() && b.is_string()) {
        c = a.str().compare(b.str());
      } else {
        fail(e.line, std::string("cannot compare a ") + a.type_name() + " with a " + b.type_name());
      }
      return Value(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value(a.str() + b.str());
      if (a.is_list() && b.is_list()) {
        List l = a.list();
        l.insert(l.end(), b.list().begin(), b.list().end());
        return Value(std::move(l));
      }
    }
    if ((a.is_number() || a.kind() == Value::Kind::kBool) &&
        (b.is_number() || b.kind() == Value::Kind::kBool)) {
      const bool ints = a.kind() != Value::Kind::kFloat && b.kind() != Value::Kind::kFloat;
      const int64_t x = a.as_int(), y = b.as_int();
      const double fx = a.as_float(), fy = b.as_float();
      // Python's ints do not overflow; int64 ones do, and that is an error here, never UB.
      auto checked = [&](bool (*fn)(int64_t, int64_t, int64_t*)) {
        int64_t r;
        if (fn(x, y, &r)) fail(e.line, "integer overflow in '" + op + "'");
        return Value(r);
      };
      if (op == "+") {
        return ints ? checked([](int64_t p, int64_t q, int64_t* r) {
          return __builtin_add_overflow(p, q, r);
        })
                    : Value(fx + fy);
      }
      if (op == "-") {
        return ints ? checked([](int64_t p, int64_t q, int64_t* r) {
          return __builtin_sub_overflow(p, q, r);
        })
                    : Value(fx - fy);
      }
      if (op == "*") {
        return ints ? checked([](int64_t p, int64_t q, int64_t* r) {
          return __builtin_mul_overflow(p, q, r);
        })
                    : Value(fx * fy);
      }
      if (op == "/") {
        if (fy == 0) fail(e.line, "division by zero");
        return Value(fx / fy);
      }
      if (op == "//" || op == "%") {
        if (fy == 0) fail(e.line, "division by zero");
        if (ints) {
          if (x == INT64_MIN && y == -1) fail(e.line, "integer overflow in '" + op + "'");
          int64_t q = x / y;
          if ((x % y != 0) && ((x < 0) != (y < 0))) --q;  // Python floors
          return op == "//" ? Value(q) : Value(x - q * y);
        }
        const double q = std::floor(fx / fy);
        return op == "//" ? Value(q) : Value(fx - q * fy);
      }
      if (op == "**") {
        if (!ints || y < 0) return Value(std::pow(fx, fy));
        int64_t result = 1, base = x;
        for (int64_t n = y; n > 0; n >>= 1) {  // square and multiply, overflow-checked
          if ((n & 1) && __builtin_mul_overflow(result, base, &result))
            fail(e.line, "integer overflow in '**'");
          if (n > 1 && __builtin_mul_overflow(base, base, &base))
            fail(e.line, "integer overflow in '**'");
        }
        return Value(result);
      }
    }
    if (op == "*" && a.is_string() && b.kind() == Value::Kind::kInt) {
      int64_t total = 0;
      if (__builtin_mul_overflow(b.as_int(), static_cast<int64_t>(a.str().size()), &total) ||
          total > static_cast<int64_t>(limits_.max_output_bytes)) {
        fail(e.line, "string repetition too large");
      }
      std::string s;
      for (int64_t i = 0; i < b.as_int(); ++i) s += a.str();
      return Value(s);
    }
    fail(e.line,
         "unsupported operand types for '" + op + "': " + a.type_name() + " and " + b.type_name());
  }

  std::vector<Value> positional(const std::vector<Arg>& args) {
    std::vector<Value> out;
    for (const Arg& a : args) {
      if (a.name.empty()) out.push_back(eval(*a.value));
    }
    return out;
  }
  Value keyword(const std::vector<Arg>& args, const char* name, Value dflt = Value()) {
    for (const Arg& a : args) {
      if (a.name == name) return eval(*a.value);
    }
    return dflt;
  }

  Value call(const Expr& e) {
    const Expr& callee = *e.sub[0];
    if (callee.kind == Expr::kAttr) return method(e, eval(*callee.sub[0]), callee.name);
    if (callee.kind != Expr::kName) fail(e.line, "unsupported call");
    const std::string& fn = callee.name;
    const std::vector<Value> args = positional(e.args);
    if (fn == "raise_exception") {
      fail(e.line, "raise_exception: " + (args.empty() ? std::string() : args[0].to_string()));
    }
    if (fn == "range") {
      int64_t start = 0, stop = 0, step = 1;
      if (args.size() == 1) {
        stop = args[0].as_int();
      } else if (args.size() >= 2) {
        start = args[0].as_int();
        stop = args[1].as_int();
        if (args.size() > 2) step = args[2].as_int();
      }
      if (step == 0) fail(e.line, "range() step cannot be zero");
      List l;
      for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
        if (l.size() >= limits_.max_loop_iterations) fail(e.line, "range() too long");
        l.push_back(Value(i));
        if (__builtin_add_overflow(i, step, &i)) break;
      }
      return Value(std::move(l));
    }
    if (fn == "namespace") {
      Dict d;
      for (const Arg& a : e.args) {
        if (!a.name.empty()) d.emplace_back(a.name, eval(*a.value));
      }
      return Value::namespace_object(std::move(d));
    }
    if (fn == "strftime_now") {
      const std::time_t now =
          std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      const std::string fmt = args.empty() ? "%Y-%m-%d" : args[0].to_string();
      std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
      return Value(std::string(buf));
    }
    fail(e.line, "unsupported construct: function '" + fn + "'");
  }

  Value method(const Expr& e, const Value& obj, const std::string& name) {
    const std::vector<Value> args = positional(e.args);
    auto arg_str = [&](size_t i) -> std::string {
      if (i >= args.size() || !args[i].is_string())
        fail(e.line, "'" + name + "' needs a string argument");
      return args[i].str();
    };
    if (obj.is_string()) {
      const std::string& s = obj.str();
      if (name == "strip" || name == "lstrip" || name == "rstrip") {
        const std::string chars = args.empty() || args[0].is_none() ? "" : arg_str(0);
        return Value(strip_chars(s, chars, name != "rstrip", name != "lstrip"));
      }
      if (name == "upper" || name == "lower") {
        std::string r = s;
        for (char& c : r)
          c = static_cast<char>(name == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                                : std::tolower(static_cast<unsigned char>(c)));
        return Value(r);
      }
      if (name == "startswith") return Value(s.rfind(arg_str(0), 0) == 0);
      if (name == "endswith") {
        const std::string suf = arg_str(0);
        return Value(s.size() >= suf.size() &&
                     s.compare(s.size() - suf.size(), suf.size(), suf) == 0);
      }
      if (name == "split") {
        List parts;
        if (args.empty() || args[0].is_none()) {
          std::string cur;
          bool in_word = false;
          for (char c : s) {
            if (std::isspace(static_cast<unsigned char>(c))) {
              if (in_word) parts.push_back(Value(cur));
              cur.clear();
              in_word = false;
            } else {
              cur += c;
              in_word = true;
            }
          }
          if (in_word) parts.push_back(Value(cur));
        } else {
          const std::string sep = arg_str(0);
          if (sep.empty()) fail(e.line, "split() separator is empty");
          size_t from = 0;
          int64_t max_split = args.size() > 1 ? args[1].as_int() : -1;
          for (size_t at;
               (max_split < 0 || max_split-- > 0) && (at = s.find(sep, from)) != std::string::npos;
               from = at + sep.size()) {
            parts.push_back(Value(s.substr(from, at - from)));
          }
          parts.push_back(Value(s.substr(from)));
        }
        return Value(std::move(parts));
      }
      if (name == "replace") {
        const std::string from = arg_str(0), to = arg_str(1);
        if (from.empty()) fail(e.line, "replace() of an empty string");
        std::string r;
        size_t pos = 0;
        for (size_t at; (at = s.find(from, pos)) != std::string::npos; pos = at + from.size()) {
          r += s.substr(pos, at - pos) + to;
          if (r.size() > limits_.max_output_bytes) fail(e.line, "replace() result too large");
        }
        return Value(r + s.substr(pos));
      }
      if (name == "title" || name == "capitalize") return apply_case(s, name == "title");
    }
    if (obj.is_dict()) {
      if (name == "items" || name == "keys" || name == "values") {
        List l;
        for (const auto& [k, v] : obj.dict()) {
          l.push_back(name == "items" ? Value(List{Value(k), v}) : name == "keys" ? Value(k) : v);
        }
        return Value(std::move(l));
      }
      if (name == "get") {
        const Value v = obj.get(arg_str(0));
        return v.is_undefined() ? (args.size() > 1 ? args[1] : Value::none()) : v;
      }
    }
    fail(e.line,
         std::string("unsupported construct: method '") + name + "' of a " + obj.type_name());
  }

  static Value apply_case(const std::string& s, bool title) {
    std::string r;
    bool start = true;
    for (char c : s) {
      const unsigned char u = static_cast<unsigned char>(c);
      r += static_cast<char>(start ? std::toupper(u) : std::tolower(u));
      start = title ? !std::isalpha(u) : false;
    }
    return Value(r);
  }

  Value filter(const Expr& e) {
    const Value v = eval(*e.sub[0]);
    const std::vector<Value> args = positional(e.args);
    const std::string& f = e.name;
    if (f == "tojson") {
      const Value indent = keyword(e.args, "indent", args.empty() ? Value::none() : args[0]);
      if (indent.is_none() || indent.is_undefined()) return Value(to_python_json(v, -1));
      if (indent.as_int() < 0 || indent.as_int() > 64) fail(e.line, "tojson indent must be 0..64");
      return Value(to_python_json(v, static_cast<int>(indent.as_int())));
    }
    if (f == "trim") return Value(strip_chars(v.to_string(), "", true, true));
    if (f == "length" || f == "count") {
      if (v.is_string()) return Value(static_cast<int64_t>(v.str().size()));
      if (v.is_list()) return Value(static_cast<int64_t>(v.list().size()));
      if (v.is_dict()) return Value(static_cast<int64_t>(v.dict().size()));
      fail(e.line, std::string("length of a ") + v.type_name());
    }
    if (f == "upper" || f == "lower") {
      std::string r = v.to_string();
      for (char& c : r)
        c = static_cast<char>(f == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                           : std::tolower(static_cast<unsigned char>(c)));
      return Value(r);
    }
    if (f == "capitalize" || f == "title") return apply_case(v.to_string(), f == "title");
    if (f == "string") return Value(v.to_string());
    if (f == "int")
      return v.is_string() ? Value(static_cast<int64_t>(std::atoll(v.str().c_str())))
                           : Value(v.as_int());
    if (f == "float")
      return v.is_string() ? Value(std::atof(v.str().c_str())) : Value(v.as_float());
    if (f == "safe" || f == "e" || f == "escape")
      return f == "safe" ? v : Value(html_escape(v.to_string()));
    if (f == "default" || f == "d") {
      const bool use = v.is_undefined() || (args.size() > 1 && args[1].truthy() && !v.truthy());
      return use ? (args.empty() ? Value("") : args[0]) : v;
    }
    if (f == "first" || f == "last") {
      if (v.is_list())
        return v.list().empty() ? Value() : (f == "first" ? v.list().front() : v.list().back());
      if (v.is_string())
        return v.str().empty()
                   ? Value()
                   : Value(std::string(1, f == "first" ? v.str().front() : v.str().back()));
      fail(e.line, std::string("'") + f + "' of a " + v.type_name());
    }
    if (f == "join") {
      const std::string sep = args.empty() ? "" : args[0].to_string();
      if (!v.is_list()) fail(e.line, std::string("join of a ") + v.type_name());
      std::string r;
      for (size_t i = 0; i < v.list().size(); ++i) r += (i ? sep : "") + v.list()[i].to_string();
      return Value(r);
    }
    if (f == "list") {
      if (v.is_list()) return v;
      List l;
      if (v.is_string()) {
        for (char c : v.str()) l.push_back(Value(std::string(1, c)));
      } else if (v.is_dict()) {
        for (const auto& [k, x] : v.dict()) l.push_back(Value(k));
      }
      return Value(std::move(l));
    }
    if (f == "reverse") {
      if (v.is_list()) {
        List l(v.list().rbegin(), v.list().rend());
        return Value(std::move(l));
      }
      std::string s = v.to_string();
      std::reverse(s.begin(), s.end());
      return Value(s);
    }
    if (f == "items") {
      List l;
      if (v.is_dict()) {
        for (const auto& [k, x] : v.dict()) l.push_back(Value(List{Value(k), x}));
      }
      return Value(std::move(l));
    }
    if (f == "selectattr" || f == "rejectattr") {
      if (!v.is_list() || args.empty()) fail(e.line, "'" + f + "' needs a list and an attribute");
      List l;
      for (const Value& item : v.list()) {
        const Value attr = item.get(args[0].to_string());
        bool ok;
        if (args.size() == 1) {
          ok = attr.truthy();
        } else {
          ok = run_test(e.line, args[1].to_string(), attr,
                        std::vector<Value>(args.begin() + 2, args.end()));
        }
        if (ok == (f == "selectattr")) l.push_back(item);
      }
      return Value(std::move(l));
    }
    if (f == "map") {
      const Value attr = keyword(e.args, "attribute");
      if (!v.is_list() || attr.is_undefined())
        fail(e.line, "'map' is supported with attribute= only");
      List l;
      for (const Value& item : v.list()) l.push_back(item.get(attr.to_string()));
      return Value(std::move(l));
    }
    fail(e.line, "unsupported construct: filter '" + f + "'");
  }

  static std::string html_escape(const std::string& s) {
    std::string r;
    for (char c : s) {
      switch (c) {
        case '&':
          r += "&amp;";
          break;
        case '<':
          r += "&lt;";
          break;
        case '>':
          r += "&gt;";
          break;
        case '"':
          r += "&#34;";
          break;
        case '\'':
          r += "&#39;";
          break;
        default:
          r += c;
      }
    }
    return r;
  }

  bool test(const Expr& e) {
    // "x is defined" must not fail on an undefined attribute chain's last step.
    const Value v = eval(*e.sub[0]);
    return run_test(e.line, e.name, v, positional(e.args));
  }

  static bool run_test(int line, const std::string& t, const Value& v,
                       const std::vector<Value>& args) {
    if (t == "defined") return !v.is_undefined();
    if (t == "undefined") return v.is_undefined();
    if (t == "none") return v.is_none();
    if (t == "string") return v.is_string();
    if (t == "number") return v.is_number();
    if (t == "integer") return v.kind() == Value::Kind::kInt;
    if (t == "float") return v.kind() == Value::Kind::kFloat;
    if (t == "boolean") return v.kind() == Value::Kind::kBool;
    if (t == "true") return v.kind() == Value::Kind::kBool && v.truthy();
    if (t == "false") return v.kind() == Value::Kind::kBool && !v.truthy();
    if (t == "mapping") return v.is_dict();
    if (t == "sequence" || t == "iterable") return v.is_list() || v.is_string() || v.is_dict();
    if (t == "even" || t == "odd")
      return v.kind() == Value::Kind::kInt && (v.as_int() % 2 == 0) == (t == "even");
    if (t == "equalto" || t == "eq" || t == "==" || t == "sameas") {
      return !args.empty() && v.equals(args[0]);
    }
    if (t == "in") {
      if (args.empty()) return false;
      if (args[0].is_list()) {
        return std::any_of(args[0].list().begin(), args[0].list().end(),
                           [&](const Value& x) { return x.equals(v); });
      }
      return args[0].is_string() && v.is_string() &&
             args[0].str().find(v.str()) != std::string::npos;
    }
    fail(line, "unsupported construct: test '" + t + "'");
  }

  const Limits& limits_;
  Value globals_;
  std::vector<std::map<std::string, Value>> scopes_;
  size_t iterations_ = 0;
};

}  // namespace

Template::Template(std::string_view source, Limits limits) : limits_(limits) {
  // jinja2 drops one trailing newline of the template (keep_trailing_newline=False).
  if (!source.empty() && source.back() == '\n') source.remove_suffix(1);
  std::vector<detail::Segment> segs = detail::lex(source);
  detail::apply_whitespace_control(segs);
  root_ = detail::parse_template(std::move(segs), limits_.max_nesting);
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const Value& context) const {
  Renderer r(context, limits_);
  std::string out;
  try {
    r.render(*root_, out);
  } catch (const BreakSignal&) {
    throw Error("chat template: 'break' outside a loop");
  } catch (const ContinueSignal&) {
    throw Error("chat template: 'continue' outside a loop");
  }
  return out;
}

}  // namespace bringup::jinja
