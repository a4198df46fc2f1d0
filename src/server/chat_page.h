// The chat page served at GET / (src/server/assets/chat.html, embedded at build time).
#pragma once

#include <string_view>

namespace bringup::server {

std::string_view chat_page();

}  // namespace bringup::server
