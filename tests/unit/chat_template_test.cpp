// Chat templates rendered byte for byte as python3-jinja2 renders them with transformers'
// settings (tests/reference-py/render_chat_template.py), and clear errors for constructs outside
// the supported subset.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../cli/cli_runner.h"
#include "bringup/chat.h"
#include "bringup/error.h"
#include "chat/chat_template.h"
#include "chat/jinja.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kTemplates = fs::path(BRINGUP_TEST_DATA) / "chat_templates";

json conversations() {
  const json system = {{"role", "system"}, {"content", "You are a pirate."}};
  const json user1 = {{"role", "user"}, {"content", "Hello!"}};
  const json bot1 = {{"role", "assistant"}, {"content", "  Arr, hello.  "}};
  const json user2 = {{"role", "user"},
                      {"content", "What is 2+2?\nAnswer with \"digits\" only. 你好 😀"}};
  const json tool_call = {
      {"role", "assistant"},
      {"content", ""},
      {"tool_calls",
       {{{"type", "function"},
         {"function", {{"name", "add"}, {"arguments", {{"a", 2}, {"b", 2.5}}}}}}}}};
  const json tool = {{"role", "tool"}, {"content", "4.5"}};
  return {
      {system, user1},
      {user1},
      {system, user1, bot1, user2},
      {user1, bot1, user2, bot1},
      {system, user1, tool_call, tool, tool, user2},
  };
}

json tools() {
  const json params = {{"type", "object"}, {"properties", {{"a", {{"type", "number"}}}}}};
  const json fn = {{"name", "add"}, {"description", "Adds numbers"}, {"parameters", params}};
  json list = json::array();
  list.push_back({{"type", "function"}, {"function", fn}});
  return list;
}

TEST(ChatTemplate, MatchesPythonJinja2ByteForByte) {
  json cases = json::array();
  for (const char* name : {"qwen2.jinja", "qwen2_5_tools.jinja", "features.jinja"}) {
    const std::string tpl = test::slurp(kTemplates / name);
    for (const json& messages : conversations()) {
      for (bool gen : {false, true}) {
        json extra = {{"eos_token", "<|im_end|>"}};
        if (std::string(name) == "qwen2_5_tools.jinja" && gen) extra["tools"] = tools();
        if (std::string(name) == "features.jinja" && gen) extra["user_name"] = "Ada";
        cases.push_back({{"template", tpl},
                         {"messages", messages},
                         {"add_generation_prompt", gen},
                         {"extra", extra},
                         {"name", name}});
      }
    }
  }
  const fs::path dir = fs::temp_directory_path();
  const fs::path in = dir / ("chat-cases-" + std::to_string(::getpid()) + ".json");
  const fs::path out = dir / ("chat-out-" + std::to_string(::getpid()) + ".json");
  std::ofstream(in) << cases.dump();
  const std::string cmd = "/usr/bin/python3 " +
                          test::shell_quote(std::string(BRINGUP_SOURCE_DIR) +
                                            "/tests/reference-py/render_chat_template.py") +
                          " < " + test::shell_quote(in.string()) + " > " +
                          test::shell_quote(out.string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "python3-jinja2 reference failed: " << cmd;
  const json want = json::parse(test::slurp(out));
  ASSERT_EQ(want.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i]["name"].get<std::string>() + " case " + std::to_string(i));
    ASSERT_TRUE(want[i].is_string()) << want[i].dump();
    const std::string got =
        render_chat_template(cases[i]["template"], cases[i]["messages"],
                             cases[i]["add_generation_prompt"], cases[i]["extra"]);
    EXPECT_EQ(got, want[i].get<std::string>());
  }
  fs::remove(in);
  fs::remove(out);
}

TEST(ChatTemplate, QwenTokenizerTemplate) {
  const Tokenizer tok = Tokenizer::load(fs::path(BRINGUP_TEST_DATA) / "tokenizer");
  const std::vector<ChatMessage> chat = {{"user", "Hi"}};
  EXPECT_EQ(apply_chat_template(tok, chat, true),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

void expect_rejected(const std::string& tpl, const std::string& needle) {
  try {
    jinja::Template t(tpl);
    t.render(jinja::Value(jinja::Dict{{"messages", jinja::Value(jinja::List{})}}));
    ADD_FAILURE() << "accepted: " << tpl;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ChatTemplate, UnsupportedConstructsAreNamed) {
  expect_rejected("{% macro m() %}x{% endmacro %}", "unsupported construct 'macro'");
  expect_rejected("{% include 'other' %}", "unsupported construct 'include'");
  expect_rejected("{{ x | frobnicate }}", "filter 'frobnicate'");
  expect_rejected("{{ x is prime }}", "test 'prime'");
  expect_rejected("line one\n{% if true %}", "line 2: 'if' without 'endif'");
  expect_rejected("{{ raise_exception('Only user and assistant roles') }}",
                  "Only user and assistant roles");
  expect_rejected("{{ 'unterminated }}", "unclosed '{{'");
  expect_rejected("{{ 'a' + 1 }}", "unsupported operand types");
  expect_rejected("{{ 9223372036854775807 + 1 }}", "integer overflow");
  expect_rejected("{{ 3 ** 70 }}", "integer overflow");
  expect_rejected("{% for %}", "expected a name");
}

TEST(ChatTemplate, HostileTemplatesStayBounded) {
  // Nested loops that would run 10^12 iterations stop at the iteration limit.
  expect_rejected(
      "{% for a in range(1000000) %}{% for b in range(1000000) %}x{% endfor %}{% endfor %}",
      "iterations");
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "{% if true %}";
  expect_rejected(deep, "nested too deeply");
  expect_rejected("{{ 'x' * 100000000 }}", "too large");
}

// Expressions and values deep enough to exhaust the stack while parsing, evaluating, printing or
// freeing them are refused; the first was found by fuzz_chat_template as a stack overflow.
TEST(ChatTemplate, DeepExpressionsAndValuesAreRefused) {
  const auto repeat = [](const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
  };
  expect_rejected("{{ m" + repeat("-", 3000) + "1 }}", "nested too deeply");
  expect_rejected("{{ " + repeat("not ", 3000) + "x }}", "nested too deeply");
  expect_rejected("{{ " + repeat("(", 1000) + "1" + repeat(")", 1000) + " }}", "nested too deeply");
  expect_rejected("{{ " + repeat("1 + ", 1500) + "1 }}", "nested too deeply");
  expect_rejected("{{ 'a'" + repeat(" | trim", 1000) + " }}", "nested too deeply");
  expect_rejected("{{ 1 if x else " + repeat("1 if x else ", 1000) + "2 }}", "nested too deeply");
  expect_rejected("{{ " + repeat("1 + ", 100000) + "1 }}", "too long");
  // Values: nesting grown by a loop, and a namespace holding itself (Python prints the cycle;
  // we do not support namespaces inside namespaces).
  expect_rejected(
      "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
      "{% endfor %}{{ ns.x|tojson }}",
      "nested more than 256 levels");
  expect_rejected("{% set ns = namespace(a=1) %}{% set ns.b = [ns] %}{{ ns.b|tojson }}",
                  "cannot hold a namespace");
  // Chains of an ordinary length still render.
  const jinja::Template ok("{{ " + repeat("1 + ", 100) + "1 }}");
  EXPECT_EQ(ok.render(jinja::Value(jinja::Dict{})), "101");
}

}  // namespace
}  // namespace bringup
