// The syntax of the chat-template Jinja subset: template text cut into segments (with jinja2's
// whitespace control applied), expression tokens and trees, and statement nodes. Internal to
// src/chat; jinja.h is the interface.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja.h"

namespace bringup::jinja {

namespace detail {

[[noreturn]] void fail(int line, const std::string& what);

struct Segment {
  enum Kind { kText, kExpr, kStmt, kComment } kind;
  std::string text;
  int line;
  bool strip_before = false, strip_after = false;  // '-' on the left / right
  bool keep_lstrip = false;                        // '+' on the left: no lstrip_blocks
};

// Template text -> text, {{ }}, {% %} and {# #} segments.
std::vector<Segment> lex(std::string_view src);
// trim_blocks, lstrip_blocks and '-' whitespace control, applied to the text between tags.
void apply_whitespace_control(std::vector<Segment>& segs);

struct Tok {
  enum Kind { kName, kString, kInt, kFloat, kOp, kEnd } kind;
  std::string text;
  int64_t i = 0;
  double f = 0;
};

std::vector<Tok> tokenize(const std::string& s, int line);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Arg {
  std::string name;  // empty: positional
  ExprPtr value;
};

struct Expr {
  enum Kind {
    kLiteral,
    kName,
    kAttr,
    kItem,
    kSlice,
    kCall,
    kFilter,
    kTest,
    kNeg,
    kNot,
    kBinary,
    kAnd,
    kOr,
    kCond,
    kList,
    kDict
  } kind;
  int line = 0;
  Value literal;
  std::string name;          // variable / attribute / filter / test / operator
  std::vector<ExprPtr> sub;  // operands
  std::vector<Arg> args;     // call / filter / test arguments
  bool negate = false;       // "is not"
};

}  // namespace detail

struct Template::Node {
  using ExprPtr = detail::ExprPtr;
  enum Kind { kBody, kText, kOutput, kIf, kFor, kSet, kBreak, kContinue } kind;
  int line = 0;
  std::string text;
  // kOutput: [e]; kIf: the conditions; kFor: [iterable]; kSet: [value]
  std::vector<ExprPtr> exprs;
  // kBody: the statements; kIf: a body per condition (+ else); kFor: [body, else?]
  std::vector<std::unique_ptr<Node>> children;
  // kFor: the loop variables; kSet: [name] or [namespace, attribute]
  std::vector<std::string> targets;
  bool has_else = false;
};

namespace detail {

// The statement tree of a template's segments; blocks nested deeper than max_nesting are an Error.
std::unique_ptr<Template::Node> parse_template(std::vector<Segment> segs, int max_nesting);

}  // namespace detail

}  // namespace bringup::jinja
