// Parsing tokens into expression trees and segments into the statement tree.
#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "chat/jinja_syntax.h"

namespace bringup::jinja::detail {

namespace {

// The height of an expression tree, found without recursion (the tree may be hostile).
int height(const Expr& root) {
  int best = 0;
  std::vector<std::pair<const Expr*, int>> stack{{&root, 1}};
  while (!stack.empty()) {
    const auto [e, h] = stack.back();
    stack.pop_back();
    best = std::max(best, h);
    for (const ExprPtr& s : e->sub) {
      if (s) stack.emplace_back(s.get(), h + 1);
    }
    for (const Arg& a : e->args) {
      if (a.value) stack.emplace_back(a.value.get(), h + 1);
    }
  }
  return best;
}

ExprPtr make(Expr::Kind k, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = k;
  e->line = line;
  return e;
}

// Recursive descent, bounded twice so that no template can exhaust the stack, here or when the
// tree is evaluated or destroyed: the descent's depth (nested brackets, repeated prefix operators
// such as '- - -' or 'not not') and the finished tree's height (left-deep chains such as
// '1+1+1+…', built by loops) stay within max_depth; one expression holds at most kMaxTokens.
class ExprParser {
 public:
  static constexpr size_t kMaxTokens = 4096;

  ExprParser(std::vector<Tok> toks, int line, int max_depth)
      : t_(std::move(toks)), line_(line), max_depth_(max_depth) {
    if (t_.size() > kMaxTokens) {
      fail(line_, "expression of " + std::to_string(t_.size()) + " tokens is too long (at most " +
                      std::to_string(kMaxTokens) + ")");
    }
  }

  ExprPtr expression() {
    descend();
    ExprPtr e = cond();
    --depth_;
    if (depth_ == 0 && height(*e) > max_depth_) fail(line_, "expression nested too deeply");
    return e;
  }
  bool at_end() const { return t_[p_].kind == Tok::kEnd; }
  bool peek_name(const char* n) const { return t_[p_].kind == Tok::kName && t_[p_].text == n; }
  bool peek_op(const char* o) const { return t_[p_].kind == Tok::kOp && t_[p_].text == o; }
  void expect_op(const char* o) {
    if (!peek_op(o)) fail(line_, std::string("expected '") + o + "', found '" + t_[p_].text + "'");
    ++p_;
  }
  void expect_name(const char* n) {
    if (!peek_name(n))
      fail(line_, std::string("expected '") + n + "', found '" + t_[p_].text + "'");
    ++p_;
  }
  std::string name() {
    if (t_[p_].kind != Tok::kName) fail(line_, "expected a name, found '" + t_[p_].text + "'");
    return t_[p_++].text;
  }
  void expect_end() {
    if (!at_end()) fail(line_, "unexpected '" + t_[p_].text + "'");
  }

 private:
  void descend() {
    if (++depth_ > max_depth_) fail(line_, "expression nested too deeply");
  }
  ExprPtr cond() {
    ExprPtr a = or_expr();
    if (peek_name("if")) {
      ++p_;
      auto c = make(Expr::kCond, line_);
      c->sub.push_back(std::move(a));
      c->sub.push_back(or_expr());
      if (peek_name("else")) {
        ++p_;
        descend();
        c->sub.push_back(cond());
        --depth_;
      }
      return c;
    }
    return a;
  }
  ExprPtr or_expr() {
    ExprPtr a = and_expr();
    while (peek_name("or")) {
      ++p_;
      auto o = make(Expr::kOr, line_);
      o->sub.push_back(std::move(a));
      o->sub.push_back(and_expr());
      a = std::move(o);
    }
    return a;
  }
  ExprPtr and_expr() {
    ExprPtr a = not_expr();
    while (peek_name("and")) {
      ++p_;
      auto o = make(Expr::kAnd, line_);
      o->sub.push_back(std::move(a));
      o->sub.push_back(not_expr());
      a = std::move(o);
    }
    return a;
  }
  ExprPtr not_expr() {
    if (peek_name("not")) {
      ++p_;
      auto n = make(Expr::kNot, line_);
      descend();
      n->sub.push_back(not_expr());
      --depth_;
      return n;
    }
    return compare();
  }
  ExprPtr binary(std::string op, ExprPtr a, ExprPtr b) {
    auto e = make(Expr::kBinary, line_);
    e->name = std::move(op);
    e->sub.push_back(std::move(a));
    e->sub.push_back(std::move(b));
    return e;
  }
  ExprPtr compare() {
    ExprPtr a = math1();
    for (;;) {
      std::string op;
      if (peek_op("==") || peek_op("!=") || peek_op("<") || peek_op(">") || peek_op("<=") ||
          peek_op(">=")) {
        op = t_[p_++].text;
      } else if (peek_name("in")) {
        ++p_;
        op = "in";
      } else if (peek_name("not") && t_[p_ + 1].kind == Tok::kName && t_[p_ + 1].text == "in") {
        p_ += 2;
        op = "not in";
      } else {
        return a;
      }
      a = binary(op, std::move(a), math1());
    }
  }
  ExprPtr math1() {
    ExprPtr a = concat();
    while (peek_op("+") || peek_op("-")) {
      std::string op = t_[p_++].text;
      a = binary(op, std::move(a), concat());
    }
    return a;
  }
  ExprPtr concat() {
    ExprPtr a = math2();
    while (peek_op("~")) {
      ++p_;
      a = binary("~", std::move(a), math2());
    }
    return a;
  }
  ExprPtr math2() {
    ExprPtr a = power();
    while (peek_op("*") || peek_op("/") || peek_op("//") || peek_op("%")) {
      std::string op = t_[p_++].text;
      a = binary(op, std::move(a), power());
    }
    return a;
  }
  ExprPtr power() {
    ExprPtr a = unary(true);
    while (peek_op("**")) {
      ++p_;
      a = binary("**", std::move(a), unary(true));
    }
    return a;
  }
  ExprPtr unary(bool with_filter) {
    ExprPtr e;
    if (peek_op("-") || peek_op("+")) {
      const bool neg = t_[p_++].text == "-";
      descend();
      ExprPtr inner = unary(false);
      --depth_;
      if (neg) {
        e = make(Expr::kNeg, line_);
        e->sub.push_back(std::move(inner));
      } else {
        e = std::move(inner);
      }
    } else {
      e = primary();
    }
    e = postfix(std::move(e));
    if (with_filter) e = filters(std::move(e));
    return e;
  }
  ExprPtr primary() {
    const Tok& t = t_[p_];
    if (t.kind == Tok::kString) {
      std::string s;
      while (t_[p_].kind == Tok::kString) s += t_[p_++].text;  // adjacent literals concatenate
      auto e = make(Expr::kLiteral, line_);
      e->literal = Value(s);
      return e;
    }
    if (t.kind == Tok::kInt || t.kind == Tok::kFloat) {
      auto e = make(Expr::kLiteral, line_);
      e->literal = t.kind == Tok::kInt ? Value(t.i) : Value(t.f);
      ++p_;
      return e;
    }
    if (t.kind == Tok::kName) {
      ++p_;
      auto e = make(Expr::kLiteral, line_);
      if (t.text == "true" || t.text == "True") {
        e->literal = Value(true);
      } else if (t.text == "false" || t.text == "False") {
        e->literal = Value(false);
      } else if (t.text == "none" || t.text == "None") {
        e->literal = Value::none();
      } else {
        e->kind = Expr::kName;
        e->name = t.text;
      }
      return e;
    }
    if (peek_op("(")) {
      ++p_;
      ExprPtr inner = expression();
      if (peek_op(",")) {  // a tuple: evaluated as a list
        auto l = make(Expr::kList, line_);
        l->sub.push_back(std::move(inner));
        while (peek_op(",")) {
          ++p_;
          if (peek_op(")")) break;
          l->sub.push_back(expression());
        }
        inner = std::move(l);
      }
      expect_op(")");
      return inner;
    }
    if (peek_op("[")) {
      ++p_;
      auto l = make(Expr::kList, line_);
      while (!peek_op("]")) {
        l->sub.push_back(expression());
        if (!peek_op(",")) break;
        ++p_;
      }
      expect_op("]");
      return l;
    }
    if (peek_op("{")) {
      ++p_;
      auto d = make(Expr::kDict, line_);
      while (!peek_op("}")) {
        d->sub.push_back(expression());
        expect_op(":");
        d->sub.push_back(expression());
        if (!peek_op(",")) break;
        ++p_;
      }
      expect_op("}");
      return d;
    }
    fail(line_, "unexpected '" + t.text + "' in expression");
  }
  std::vector<Arg> call_args() {
    std::vector<Arg> args;
    expect_op("(");
    while (!peek_op(")")) {
      Arg a;
      if (t_[p_].kind == Tok::kName && t_[p_ + 1].kind == Tok::kOp && t_[p_ + 1].text == "=") {
        a.name = t_[p_].text;
        p_ += 2;
      }
      a.value = expression();
      args.push_back(std::move(a));
      if (!peek_op(",")) break;
      ++p_;
    }
    expect_op(")");
    return args;
  }
  ExprPtr postfix(ExprPtr e) {
    for (;;) {
      if (peek_op(".")) {
        ++p_;
        auto a = make(Expr::kAttr, line_);
        a->name = t_[p_].kind == Tok::kInt ? t_[p_].text : name();
        if (t_[p_].kind == Tok::kInt) ++p_;
        a->sub.push_back(std::move(e));
        e = std::move(a);
      } else if (peek_op("[")) {
        ++p_;
        ExprPtr parts[3];
        bool slice = false;
        int part = 0;
        while (!peek_op("]")) {
          if (peek_op(":")) {
            ++p_;
            slice = true;
            if (++part > 2) fail(line_, "malformed slice");
            continue;
          }
          parts[part] = expression();
        }
        expect_op("]");
        auto it = make(slice ? Expr::kSlice : Expr::kItem, line_);
        it->sub.push_back(std::move(e));
        for (auto& p : parts) it->sub.push_back(std::move(p));
        if (!slice && !it->sub[1]) fail(line_, "empty subscript");
        e = std::move(it);
      } else if (peek_op("(")) {
        auto c = make(Expr::kCall, line_);
        c->sub.push_back(std::move(e));
        c->args = call_args();
        e = std::move(c);
      } else {
        return e;
      }
    }
  }
  ExprPtr filters(ExprPtr e) {
    for (;;) {
      if (peek_op("|")) {
        ++p_;
        auto f = make(Expr::kFilter, line_);
        f->name = name();
        f->sub.push_back(std::move(e));
        if (peek_op("(")) f->args = call_args();
        e = std::move(f);
      } else if (peek_name("is")) {
        ++p_;
        auto t = make(Expr::kTest, line_);
        if (peek_name("not")) {
          ++p_;
          t->negate = true;
        }
        t->name = name();
        t->sub.push_back(std::move(e));
        if (peek_op("(")) {
          t->args = call_args();
        } else if (!at_end() && (t_[p_].kind == Tok::kString || t_[p_].kind == Tok::kInt ||
                                 t_[p_].kind == Tok::kFloat ||
                                 (t_[p_].kind == Tok::kName && !peek_name("and") &&
                                  !peek_name("or") && !peek_name("else") && !peek_name("if")))) {
          Arg a;
          a.value = primary();  // "is equalto 3", "is sameas none"
          t->args.push_back(std::move(a));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  std::vector<Tok> t_;
  size_t p_ = 0;
  int line_;
  int max_depth_;
  int depth_ = 0;
};

using Node = Template::Node;
using NodePtr = std::unique_ptr<Node>;

class StmtParser {
 public:
  StmtParser(std::vector<Segment> segs, int max_nesting)
      : segs_(std::move(segs)), max_nesting_(max_nesting) {}

  NodePtr parse() {
    auto body = block({});
    if (pos_ < segs_.size()) fail(segs_[pos_].line, "unexpected '" + keyword(segs_[pos_]) + "'");
    return body;
  }

 private:
  static std::string keyword(const Segment& s) {
    size_t i = 0;
    while (i < s.text.size() && std::isspace(static_cast<unsigned char>(s.text[i]))) ++i;
    size_t j = i;
    while (j < s.text.size() &&
           (std::isalnum(static_cast<unsigned char>(s.text[j])) || s.text[j] == '_'))
      ++j;
    return s.text.substr(i, j - i);
  }

  ExprParser expr_parser(const Segment& s, size_t skip_words) {
    std::vector<Tok> toks = tokenize(s.text, s.line);
    toks.erase(toks.begin(), toks.begin() + static_cast<long>(skip_words));
    return ExprParser(std::move(toks), s.line, max_nesting_ * 4);
  }

  // Parses nodes until a statement whose keyword is in `stop` (left unconsumed).
  NodePtr block(const std::vector<std::string>& stop) {
    if (++depth_ > max_nesting_)
      fail(pos_ < segs_.size() ? segs_[pos_].line : 0, "blocks nested too deeply");
    auto body = std::make_unique<Node>();
    body->kind = Node::kBody;
    while (pos_ < segs_.size()) {
      const Segment& s = segs_[pos_];
      if (s.kind == Segment::kText) {
        auto n = std::make_unique<Node>();
        n->kind = Node::kText;
        n->text = s.text;
        body->children.push_back(std::move(n));
        ++pos_;
      } else if (s.kind == Segment::kComment) {
        ++pos_;
      } else if (s.kind == Segment::kExpr) {
        auto n = std::make_unique<Node>();
        n->kind = Node::kOutput;
        n->line = s.line;
        ExprParser p = expr_parser(s, 0);
        n->exprs.push_back(p.expression());
        p.expect_end();
        body->children.push_back(std::move(n));
        ++pos_;
      } else {
        const std::string kw = keyword(s);
        if (std::find(stop.begin(), stop.end(), kw) != stop.end()) break;
        if (NodePtr n = statement(s, kw)) body->children.push_back(std::move(n));
      }
    }
    --depth_;
    return body;
  }

  NodePtr statement(const Segment& s, const std::string& kw) {
    ++pos_;
    if (kw == "if") {
      auto n = std::make_unique<Node>();
      n->kind = Node::kIf;
      n->line = s.line;
      ExprParser p = expr_parser(s, 1);
      n->exprs.push_back(p.expression());
      p.expect_end();
      n->children.push_back(block({"elif", "else", "endif"}));
      for (;;) {
        if (pos_ >= segs_.size()) fail(s.line, "'if' without 'endif'");
        const Segment& t = segs_[pos_];
        const std::string k = keyword(t);
        ++pos_;
        if (k == "elif") {
          ExprParser q = expr_parser(t, 1);
          n->exprs.push_back(q.expression());
          q.expect_end();
          n->children.push_back(block({"elif", "else", "endif"}));
        } else if (k == "else") {
          n->has_else = true;
          n->children.push_back(block({"endif"}));
        } else {
          return n;  // endif
        }
      }
    }
    if (kw == "for") {
      auto n = std::make_unique<Node>();
      n->kind = Node::kFor;
      n->line = s.line;
      ExprParser p = expr_parser(s, 1);
      n->targets.push_back(p.name());
      while (p.peek_op(",")) {
        p.expect_op(",");
        n->targets.push_back(p.name());
      }
      p.expect_name("in");
      n->exprs.push_back(p.expression());
      if (p.peek_name("recursive")) fail(s.line, "unsupported construct 'recursive' loops");
      p.expect_end();
      n->children.push_back(block({"else", "endfor"}));
      if (pos_ >= segs_.size()) fail(s.line, "'for' without 'endfor'");
      if (keyword(segs_[pos_]) == "else") {
        ++pos_;
        n->has_else = true;
        n->children.push_back(block({"endfor"}));
        if (pos_ >= segs_.size()) fail(s.line, "'for' without 'endfor'");
      }
      ++pos_;
      return n;
    }
    if (kw == "set") {
      auto n = std::make_unique<Node>();
      n->kind = Node::kSet;
      n->line = s.line;
      ExprParser p = expr_parser(s, 1);
      n->targets.push_back(p.name());
      if (p.peek_op(".")) {
        p.expect_op(".");
        n->targets.push_back(p.name());
      }
      if (!p.peek_op("=")) fail(s.line, "unsupported construct 'set' block (expected '=')");
      p.expect_op("=");
      n->exprs.push_back(p.expression());
      p.expect_end();
      return n;
    }
    if (kw == "break" || kw == "continue") {
      auto n = std::make_unique<Node>();
      n->kind = kw == "break" ? Node::kBreak : Node::kContinue;
      n->line = s.line;
      return n;
    }
    if (kw == "generation" || kw == "endgeneration") return nullptr;  // marks assistant text only
    if (kw == "endif" || kw == "endfor" || kw == "else" || kw == "elif") {
      fail(s.line, "'" + kw + "' without a matching block");
    }
    fail(s.line, "unsupported construct '" + kw + "'");
  }

  std::vector<Segment> segs_;
  size_t pos_ = 0;
  int max_nesting_;
  int depth_ = 0;
};

}  // namespace

std::unique_ptr<Template::Node> parse_template(std::vector<Segment> segs, int max_nesting) {
  return StmtParser(std::move(segs), max_nesting).parse();
}

}  // namespace bringup::jinja::detail
