// Cutting template text into segments and expressions into tokens.
#include <algorithm>
#include <cctype>
#include <string>

#include "bringup/error.h"
#include "chat/jinja_syntax.h"

namespace bringup::jinja::detail {

[[noreturn]] void fail(int line, const std::string& what) {
  throw Error("chat template line " + std::to_string(line) + ": " + what);
}

namespace {
int count_lines(std::string_view s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

// Finds `close` in s from pos, skipping quoted strings.
size_t find_close(std::string_view s, size_t pos, std::string_view close) {
  char quote = 0;
  for (size_t i = pos; i < s.size(); ++i) {
    const char c = s[i];
    if (quote) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (s.compare(i, close.size(), close) == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

std::string normalize_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::vector<Segment> lex(std::string_view src) {
  std::vector<Segment> segs;
  size_t pos = 0;
  int line = 1;
  while (pos < src.size()) {
    size_t open = std::string_view::npos;
    for (size_t i = src.find('{', pos); i != std::string_view::npos; i = src.find('{', i + 1)) {
      if (i + 1 < src.size() && (src[i + 1] == '{' || src[i + 1] == '%' || src[i + 1] == '#')) {
        open = i;
        break;
      }
    }
    const size_t text_end = open == std::string_view::npos ? src.size() : open;
    if (text_end > pos)
      segs.push_back({Segment::kText, normalize_newlines(src.substr(pos, text_end - pos)), line});
    line += count_lines(src.substr(pos, text_end - pos));
    if (open == std::string_view::npos) break;
    const char k = src[open + 1];
    const std::string_view close = k == '{' ? "}}" : k == '%' ? "%}" : "#}";
    Segment s{k == '{' ? Segment::kExpr : k == '%' ? Segment::kStmt : Segment::kComment, "", line};
    size_t body = open + 2;
    if (body < src.size() && src[body] == '-') {
      s.strip_before = true;
      ++body;
    } else if (body < src.size() && src[body] == '+') {
      s.keep_lstrip = true;
      ++body;
    }
    const size_t end = k == '#' ? src.find(close, body) : find_close(src, body, close);
    if (end == std::string_view::npos) fail(line, "unclosed '{" + std::string(1, k) + "'");
    size_t body_end = end;
    if (body_end > body && src[body_end - 1] == '-') {
      s.strip_after = true;
      --body_end;
    } else if (body_end > body && src[body_end - 1] == '+') {
      --body_end;
    }
    s.text = std::string(src.substr(body, body_end - body));
    line += count_lines(src.substr(open, end + 2 - open));
    segs.push_back(std::move(s));
    pos = end + 2;
  }
  return segs;
}

// trim_blocks, lstrip_blocks and '-' whitespace control, applied to the text between tags. Both
// ends of a text are decided on the original text, as jinja2 decides them on the source.
void apply_whitespace_control(std::vector<Segment>& segs) {
  auto is_block = [](const Segment& s) {
    return s.kind == Segment::kStmt || s.kind == Segment::kComment;
  };
  for (size_t k = 0; k < segs.size(); ++k) {
    if (segs[k].kind != Segment::kText) continue;
    std::string& t = segs[k].text;
    const Segment* prev = k > 0 ? &segs[k - 1] : nullptr;
    const Segment* next = k + 1 < segs.size() ? &segs[k + 1] : nullptr;
    size_t end = t.size();
    if (next && next->strip_before) {
      while (end > 0 && std::isspace(static_cast<unsigned char>(t[end - 1]))) --end;
    } else if (next && is_block(*next) && !next->keep_lstrip) {
      // lstrip_blocks: spaces and tabs between a line start and a block tag go.
      size_t j = end;
      while (j > 0 && (t[j - 1] == ' ' || t[j - 1] == '\t')) --j;
      if ((j > 0 && t[j - 1] == '\n') || (j == 0 && k == 0)) end = j;
    }
    size_t begin = 0;
    if (prev && prev->strip_after) {
      while (begin < end && std::isspace(static_cast<unsigned char>(t[begin]))) ++begin;
    } else if (prev && is_block(*prev) && begin < end && t[begin] == '\n') {
      begin = 1;  // trim_blocks
    }
    t = t.substr(begin, end - begin);
  }
}

std::vector<Tok> tokenize(const std::string& s, int line) {
  std::vector<Tok> out;
  static const char* kOps[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*",
                               "/",  "%",  "~",  "<",  ">",  "(",  ")", "[", "]",
                               "{",  "}",  ",",  ":",  ".",  "|",  "="};
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (std::isspace(c)) {
      ++i;
    } else if (std::isalpha(c) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Tok::kName, s.substr(i, j - i)});
      i = j;
    } else if (std::isdigit(c)) {
      size_t j = i;
      bool is_float = false;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
        is_float = true;
        ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        is_float = true;
        ++j;
        if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      std::string num;
      for (size_t k = i; k < j; ++k) {
        if (s[k] != '_') num += s[k];
      }
      Tok t{is_float ? Tok::kFloat : Tok::kInt, num};
      try {
        if (is_float) {
          t.f = std::stod(num);
        } else {
          t.i = std::stoll(num);
        }
      } catch (const std::exception&) {
        fail(line, "number '" + num + "' is out of range");
      }
      out.push_back(t);
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string v;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != static_cast<char>(c); ++j) {
        if (s[j] != '\\' || j + 1 >= s.size()) {
          v += s[j];
          continue;
        }
        const char e = s[++j];
        switch (e) {
          case 'n':
            v += '\n';
            break;
          case 't':
            v += '\t';
            break;
          case 'r':
            v += '\r';
            break;
          case '0':
            v += '\0';
            break;
          case '\\':
            v += '\\';
            break;
          case '\'':
            v += '\'';
            break;
          case '"':
            v += '"';
            break;
          case '\n':
            break;
          default:
            v += '\\';
            v += e;
        }
      }
      if (j >= s.size()) fail(line, "unterminated string literal");
      out.push_back({Tok::kString, normalize_newlines(v)});
      i = j + 1;
    } else {
      bool matched = false;
      for (const char* op : kOps) {
        const size_t n = std::char_traits<char>::length(op);
        if (s.compare(i, n, op) == 0) {
          out.push_back({Tok::kOp, op});
          i += n;
          matched = true;
          break;
        }
      }
      if (!matched) fail(line, std::string("unexpected character '") + s[i] + "'");
    }
  }
  out.push_back({Tok::kEnd, ""});
  return out;
}

}  // namespace bringup::jinja::detail
