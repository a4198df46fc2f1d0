// libFuzzer: parse a chat template and render it with a small conversation. Errors, loops and
// output are bounded by jinja::Limits.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bringup/error.h"
#include "chat/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bringup::jinja::Value;
  static const Value context = [] {
    Value v = Value(bringup::jinja::Dict{});
    v.set("messages", Value::from_json(nlohmann::json::parse(
                          R"([{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "Hi <b>\n"},
                              {"role": "assistant", "content": "Hello!", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}])")));
    v.set("add_generation_prompt", Value(true));
    v.set("eos_token", Value("<|im_end|>"));
    return v;
  }();
  bringup::jinja::Limits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_loop_iterations = 100000;
  try {
    const bringup::jinja::Template t(std::string_view(reinterpret_cast<const char*>(data), size),
                                     limits);
    t.render(context);
  } catch (const bringup::Error&) {
  }
  return 0;
}
