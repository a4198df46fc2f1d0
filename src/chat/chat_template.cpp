#include "chat/chat_template.h"

#include "bringup/error.h"
#include "chat/jinja.h"

namespace bringup {

std::string render_chat_template(const std::string& chat_template, const nlohmann::json& messages,
                                 bool add_generation_prompt, const nlohmann::json& extra) {
  jinja::Value context = jinja::Value(jinja::Dict{});
  if (extra.is_object()) {
    for (const auto& [k, v] : extra.items()) context.set(k, jinja::Value::from_json(v));
  }
  context.set("messages", jinja::Value::from_json(messages));
  context.set("add_generation_prompt", jinja::Value(add_generation_prompt));
  return jinja::Template(chat_template).render(context);
}

std::string apply_chat_template(const Tokenizer& tokenizer, std::span<const ChatMessage> messages,
                                bool add_generation_prompt) {
  if (tokenizer.chat_template().empty()) {
    throw Error("the tokenizer has no chat_template (tokenizer_config.json)");
  }
  nlohmann::json list = nlohmann::json::array();
  for (const ChatMessage& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  nlohmann::json extra = nlohmann::json::object();
  // transformers passes the special tokens that are set.
  if (!tokenizer.eos_token().empty()) extra["eos_token"] = tokenizer.eos_token();
  if (!tokenizer.bos_token().empty()) extra["bos_token"] = tokenizer.bos_token();
  return render_chat_template(tokenizer.chat_template(), list, add_generation_prompt, extra);
}

}  // namespace bringup
