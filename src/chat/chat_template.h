// apply_chat_template with everything transformers passes to the template.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "bringup/chat.h"

namespace bringup {

// messages: a JSON array of message objects (role, content, tool_calls, ...); extra: further
// variables (tools, documents, ...). Special tokens (bos_token, eos_token) come from the tokenizer.
std::string render_chat_template(const std::string& chat_template, const nlohmann::json& messages,
                                 bool add_generation_prompt, const nlohmann::json& extra);

}  // namespace bringup
