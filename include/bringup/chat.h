// Chat templates: a conversation rendered into the prompt text the model was trained on, with the
// checkpoint's own Jinja chat_template, as transformers' apply_chat_template does.
#pragma once

#include <span>
#include <string>

#include "bringup/tokenizer.h"

namespace bringup {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

// Throws Error when the tokenizer has no chat_template or the template uses a construct outside
// the supported Jinja subset (the message names it and its line).
std::string apply_chat_template(const Tokenizer& tokenizer, std::span<const ChatMessage> messages,
                                bool add_generation_prompt);

}  // namespace bringup
