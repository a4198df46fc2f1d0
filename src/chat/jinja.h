// The subset of Jinja that Hugging Face chat templates use, rendered as transformers'
// apply_chat_template renders them (jinja2 with trim_blocks, lstrip_blocks and the loopcontrols
// extension; tojson as json.dumps; raise_exception). Supported: {{ }}, {# #}, whitespace control
// with '-', if / elif / else, for (with unpacking, an else branch, loop.index / index0 / revindex /
// first / last / length / previtem / nextitem), break / continue, set (including namespace
// attributes), the generation tag, expressions with Python semantics (literals, lists, dicts,
// attribute and item access, slices, + - * / // % **, ~, comparisons, in, and / or / not,
// a if b else c), common filters, tests, and string / dict methods. Anything else (macros,
// includes, call blocks, ...) is an Error that names the construct and its line.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "chat/jinja_value.h"

namespace bringup::jinja {

// Bounds that keep a hostile template from running away with time or memory.
struct Limits {
  size_t max_output_bytes = size_t{16} << 20;
  size_t max_loop_iterations = 1'000'000;  // all loops of one render together
  int max_nesting = 64;                    // nested blocks and expression depth
};

class Template {
 public:
  // Parses the template; throws Error for syntax errors and unsupported constructs.
  explicit Template(std::string_view source, Limits limits = {});
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // context: a dict of the template's variables (messages, add_generation_prompt, ...).
  std::string render(const Value& context) const;

  struct Node;

 private:
  std::unique_ptr<Node> root_;
  Limits limits_;
};

}  // namespace bringup::jinja
