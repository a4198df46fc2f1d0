#include "server/openai.h"

#include <cmath>
#include <limits>

#include "bringup/chat.h"
#include "bringup/error.h"

namespace bringup::server {

namespace {

constexpr int kMaxTopLogprobs = 20;
constexpr size_t kMaxStops = 16;

[[noreturn]] void bad(const std::string& param, const std::string& message, int status = 400) {
  throw ApiError{status, message, param};
}

const Json* field(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

double number(const Json& v, const char* key, double lo, double hi) {
  if (!v.is_number()) bad(key, std::string("'") + key + "' must be a number");
  const double d = v.get<double>();
  if (!(d >= lo && d <= hi)) {
    bad(key, std::string("'") + key + "' must be between " + Json(lo).dump() + " and " +
                 Json(hi).dump() + ", not " + v.dump());
  }
  return d;
}

int64_t integer(const Json& v, const char* key, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) bad(key, std::string("'") + key + "' must be an integer");
  const bool above = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi);
  if (above || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
    bad(key, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
                 std::to_string(hi) + ", not " + v.dump());
  }
  return v.get<int64_t>();
}

bool boolean(const Json& v, const char* key) {
  if (!v.is_boolean()) bad(key, std::string("'") + key + "' must be true or false");
  return v.get<bool>();
}

// add_special: a completion's prompt gets the tokens the tokenizer adds around a text (a BOS id
// where it asks for one); a rendered chat has its own.
std::vector<int32_t> encode(const Tokenizer& tok, const std::string& text, const char* param,
                            bool add_special) {
  try {
    return tok.encode(text, add_special);
  } catch (const Error& e) {
    bad(param, e.what());
  }
}

// A message's content: a string, or text parts.
std::string message_content(const Json& content, size_t index) {
  const std::string where = "messages[" + std::to_string(index) + "].content";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad(where, "'" + where + "' must be a string or an array of text parts");
  std::string text;
  for (const Json& part : content) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      bad(where, "each part of '" + where + "' must be an object with a 'type'");
    }
    const std::string type = part["type"].get<std::string>();
    if (type != "text") bad(where, "content parts of type '" + type + "' are not supported");
    if (!part.contains("text") || !part["text"].is_string()) {
      bad(where, "a text part of '" + where + "' needs a string 'text'");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<int32_t> chat_prompt(const Json& j, const ServedModel& m) {
  const Json* messages = field(j, "messages");
  if (!messages) bad("messages", "'messages' is required");
  if (!messages->is_array() || messages->empty()) {
    bad("messages", "'messages' must be a non-empty array");
  }
  std::vector<ChatMessage> chat;
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& msg = (*messages)[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!msg.is_object()) bad(at, "'" + at + "' must be an object");
    const Json* role = field(msg, "role");
    if (!role || !role->is_string()) bad(at + ".role", "'" + at + ".role' must be a string");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";
    if (r != "system" && r != "user" && r != "assistant") {
      bad(at + ".role", "role '" + role->get<std::string>() +
                            "' is not supported (use system, developer, user or assistant)");
    }
    const Json* content = field(msg, "content");
    if (!content && r != "assistant") bad(at + ".content", "'" + at + ".content' is required");
    chat.push_back({r, content ? message_content(*content, i) : std::string()});
  }
  if (!m.tokenizer)
    bad("messages", "this model has no tokenizer; send token ids to /v1/completions");
  std::string text;
  try {
    text = apply_chat_template(*m.tokenizer, chat, true);
  } catch (const Error& e) {
    bad("messages", std::string(e.what()) + "; use /v1/completions with a raw prompt");
  }
  return encode(*m.tokenizer, text, "messages", false);
}

std::vector<int32_t> completion_prompt(const Json& j, const ServedModel& m) {
  const Json* prompt = field(j, "prompt");
  if (!prompt) bad("prompt", "'prompt' is required");
  const Json* p = prompt;
  if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) {
    p = &(*p)[0];  // a list of one prompt
  }
  if (p->is_string()) {
    if (!m.tokenizer) bad("prompt", "this model has no tokenizer; send token ids");
    return encode(*m.tokenizer, p->get<std::string>(), "prompt", true);
  }
  if (!p->is_array()) bad("prompt", "'prompt' must be a string or an array of token ids");
  std::vector<int32_t> ids;
  for (const Json& v : *p) {
    if (v.is_string() || v.is_array()) {
      bad("prompt", "a list of several prompts is not supported; send one request per prompt");
    }
    if (!v.is_number_integer()) bad("prompt", "'prompt' token ids must be integers");
    const int64_t id = v.get<int64_t>();
    if (id < 0 || id >= m.vocab_size) {
      bad("prompt", "prompt token id " + v.dump() + " is outside the model's vocabulary (0.." +
                        std::to_string(m.vocab_size - 1) + ")");
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

std::vector<std::string> stops(const Json& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array() && v.size() <= kMaxStops) {
    for (const Json& s : v) {
      if (!s.is_string()) bad("stop", "'stop' must be a string or an array of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    bad("stop",
        "'stop' must be a string or an array of at most " + std::to_string(kMaxStops) + " strings");
  }
  for (const std::string& s : out) {
    if (s.empty()) bad("stop", "'stop' strings must not be empty");
  }
  return out;
}

// Fields that change the answer in ways we do not implement: refused by name, never ignored.
void refuse_unsupported(const Json& j) {
  if (const Json* rf = field(j, "response_format")) {
    const Json* type = rf->is_object() ? field(*rf, "type") : nullptr;
    if (!type || !type->is_string() || type->get<std::string>() != "text") {
      bad("response_format", "'response_format' other than {\"type\": \"text\"} is not supported");
    }
  }
  if (const Json* tools = field(j, "tools"); tools && tools->is_array() && !tools->empty()) {
    const Json* choice = field(j, "tool_choice");
    if (choice && !(choice->is_string() && (choice->get<std::string>() == "none" ||
                                            choice->get<std::string>() == "auto"))) {
      bad("tool_choice", "tool calls are not supported, so 'tool_choice' can only be none or auto");
    }
  }
  if (const Json* bias = field(j, "logit_bias"); bias && !bias->empty()) {
    bad("logit_bias", "'logit_bias' is not supported");
  }
  if (const Json* suffix = field(j, "suffix");
      suffix && !(suffix->is_string() && suffix->get<std::string>().empty())) {
    bad("suffix", "'suffix' is not supported");
  }
}

std::string token_text(const ServedModel& m, int32_t id) {
  return m.tokenizer ? m.tokenizer->token_bytes(id) : std::to_string(id);
}

Json bytes_of(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

Json chat_logprob(const ServedModel& m, const GenerationEvent& e) {
  const std::string t = token_text(m, e.token);
  Json top = Json::array();
  for (const auto& [id, lp] : e.top) {
    const std::string s = token_text(m, id);
    top.push_back({{"token", s}, {"logprob", lp}, {"bytes", bytes_of(s)}});
  }
  return {{"token", t}, {"logprob", e.logprob}, {"bytes", bytes_of(t)}, {"top_logprobs", top}};
}

// Legacy completions log-probabilities of a run of events, text offsets counted from `offset`.
Json completion_logprobs(const ServedModel& m, const std::vector<GenerationEvent>& events,
                         size_t offset) {
  Json tokens = Json::array(), lps = Json::array(), tops = Json::array(), offs = Json::array();
  for (const GenerationEvent& e : events) {
    const std::string t = token_text(m, e.token);
    tokens.push_back(t);
    lps.push_back(e.logprob);
    Json top = Json::object();
    for (const auto& [id, lp] : e.top) top[token_text(m, id)] = lp;
    tops.push_back(top);
    offs.push_back(offset);
    offset += e.piece.size();
  }
  return {
      {"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

Json envelope(const ParsedRequest& r, const ServedModel& m, const std::string& id, int64_t created,
              bool chunk) {
  const bool chat = r.endpoint == Endpoint::kChat;
  return {
      {"id", id},
      {"object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
      {"created", created},
      {"model", m.id},
      {"system_fingerprint", "bringup"}};
}

std::string prompt_text(const ParsedRequest& r, const ServedModel& m) {
  return m.tokenizer ? m.tokenizer->decode(r.generation.prompt) : std::string();
}

}  // namespace

std::string ApiError::type() const {
  switch (status) {
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

Json ApiError::body() const {
  return {{"error",
           {{"message", message},
            {"type", type()},
            {"param", param.empty() ? Json(nullptr) : Json(param)},
            {"code", status}}}};
}

std::string to_text(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

const char* finish_name(FinishReason f) {
  return f == FinishReason::kLength ? "length" : "stop";
}

Json parse_body(const std::string& body) {
  Json j;
  try {
    j = Json::parse(body);
  } catch (const Json::exception& e) {
    bad("", std::string("the request body is not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) bad("", "the request body must be a JSON object");
  return j;
}

ParsedRequest parse_request(Endpoint endpoint, const std::string& body, const ServedModel& m) {
  const Json j = parse_body(body);
  ParsedRequest r;
  r.endpoint = endpoint;
  const bool chat = endpoint == Endpoint::kChat;
  if (const Json* model = field(j, "model")) {
    if (!model->is_string()) bad("model", "'model' must be a string");
    if (model->get<std::string>() != m.id) {
      bad("model",
          "the model '" + model->get<std::string>() + "' does not exist (this server has '" + m.id +
              "')",
          404);
    }
  }
  refuse_unsupported(j);

  GenerationSettings s = m.defaults;
  if (const Json* v = field(j, "temperature")) {
    s.sampling.temperature = number(*v, "temperature", 0, 2);
    s.sampling.do_sample = s.sampling.temperature > 0;
  }
  if (const Json* v = field(j, "top_p")) {
    s.sampling.top_p = number(*v, "top_p", 0, 1);
    if (s.sampling.top_p == 0) bad("top_p", "'top_p' must be above 0");
  }
  if (const Json* v = field(j, "top_k")) {
    const int64_t k = integer(*v, "top_k", -1, std::numeric_limits<int32_t>::max());
    s.sampling.top_k = k < 0 ? 0 : k;
  }
  if (const Json* v = field(j, "min_p")) s.sampling.min_p = number(*v, "min_p", 0, 1);
  if (const Json* v = field(j, "repetition_penalty")) {
    s.sampling.repetition_penalty = number(*v, "repetition_penalty", 0, 10);
    if (s.sampling.repetition_penalty == 0)
      bad("repetition_penalty", "'repetition_penalty' must be above 0");
  }
  if (const Json* v = field(j, "frequency_penalty")) {
    s.sampling.frequency_penalty = number(*v, "frequency_penalty", -2, 2);
  }
  if (const Json* v = field(j, "presence_penalty")) {
    s.sampling.presence_penalty = number(*v, "presence_penalty", -2, 2);
  }
  if (const Json* v = field(j, "seed")) {
    s.sampling.seed = static_cast<uint64_t>(integer(*v, "seed", std::numeric_limits<int64_t>::min(),
                                                    std::numeric_limits<int64_t>::max()));
    r.random_seed = false;
  }
  if (const Json* v = field(j, "stop")) s.stop = stops(*v);
  if (const Json* v = field(j, "ignore_eos"); v && boolean(*v, "ignore_eos")) {
    s.eos_ids.clear();  // vLLM's extension, for benchmarks with fixed output lengths
  }
  if (const Json* v = field(j, "n"))
    r.generation.n = static_cast<int>(integer(*v, "n", 1, Scheduler::kMaxChoices));
  if (const Json* v = field(j, "stream")) r.stream = boolean(*v, "stream");
  if (const Json* v = field(j, "stream_options")) {
    if (!v->is_object()) bad("stream_options", "'stream_options' must be an object");
    if (const Json* u = field(*v, "include_usage")) r.include_usage = boolean(*u, "include_usage");
  }
  if (chat) {
    if (const Json* v = field(j, "logprobs")) r.logprobs = boolean(*v, "logprobs");
    if (const Json* v = field(j, "top_logprobs")) {
      if (!r.logprobs) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
      r.generation.top_logprobs = static_cast<int>(integer(*v, "top_logprobs", 0, kMaxTopLogprobs));
    } else if (r.logprobs) {
      r.generation.top_logprobs = 0;
    }
  } else {
    if (const Json* v = field(j, "logprobs")) {
      r.logprobs = true;
      r.generation.top_logprobs = static_cast<int>(integer(*v, "logprobs", 0, 5));
    }
    if (const Json* v = field(j, "echo")) r.echo = boolean(*v, "echo");
  }

  r.generation.prompt = chat ? chat_prompt(j, m) : completion_prompt(j, m);
  const int64_t prompt = static_cast<int64_t>(r.generation.prompt.size());
  const char* where = chat ? "messages" : "prompt";
  if (prompt == 0) bad(where, "the prompt is empty");
  if (prompt >= m.max_seq_len) {
    bad(where, "the prompt has " + std::to_string(prompt) + " tokens, more than the context of " +
                   std::to_string(m.max_seq_len) + " leaves room for");
  }
  // Chat answers may run to the end of the context unless limited, as vLLM's do; completions
  // default to OpenAI's 16 tokens.
  int64_t max_tokens = chat ? m.max_seq_len - prompt : 16;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (const Json* v = field(j, key)) {
      max_tokens = integer(*v, key, 1, std::numeric_limits<int32_t>::max());
      if (prompt + max_tokens - 1 > m.max_seq_len) {
        bad(key, "the prompt of " + std::to_string(prompt) + " tokens plus " + v->dump() +
                     " new tokens exceeds the context of " + std::to_string(m.max_seq_len) +
                     " tokens");
      }
    }
  }
  s.max_new_tokens = max_tokens;
  r.generation.settings = s;
  return r;
}

Json completion_response(const ParsedRequest& r, const ServedModel& m, const std::string& id,
                         int64_t created, const std::vector<ChoiceResult>& choices) {
  Json out = envelope(r, m, id, created, false);
  Json list = Json::array();
  int64_t completion_tokens = 0;
  const std::string echo = r.echo ? prompt_text(r, m) : std::string();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    completion_tokens += static_cast<int64_t>(c.events.size());
    Json choice = {{"index", i}, {"finish_reason", finish_name(c.finish)}};
    Json logprobs = nullptr;
    if (r.endpoint == Endpoint::kChat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      if (r.logprobs) {
        Json content = Json::array();
        for (const GenerationEvent& e : c.events) content.push_back(chat_logprob(m, e));
        logprobs = {{"content", content}};
      }
    } else {
      choice["text"] = echo + c.text;
      if (r.logprobs) logprobs = completion_logprobs(m, c.events, echo.size());
    }
    choice["logprobs"] = logprobs;
    list.push_back(choice);
  }
  out["choices"] = list;
  const int64_t prompt_tokens = static_cast<int64_t>(r.generation.prompt.size());
  out["usage"] = {{"prompt_tokens", prompt_tokens},
                  {"completion_tokens", completion_tokens},
                  {"total_tokens", prompt_tokens + completion_tokens}};
  return out;
}

Json chunk_role(const ParsedRequest& r, const ServedModel& m, const std::string& id,
                int64_t created, int choice) {
  Json out = envelope(r, m, id, created, true);
  if (r.endpoint == Endpoint::kChat) {
    out["choices"] = {{{"index", choice},
                       {"delta", {{"role", "assistant"}, {"content", ""}}},
                       {"logprobs", nullptr},
                       {"finish_reason", nullptr}}};
  } else {
    out["choices"] = {{{"index", choice},
                       {"text", r.echo ? prompt_text(r, m) : std::string()},
                       {"logprobs", nullptr},
                       {"finish_reason", nullptr}}};
  }
  return out;
}

Json chunk_token(const ParsedRequest& r, const ServedModel& m, const std::string& id,
                 int64_t created, const GenerationEvent& e) {
  Json out = envelope(r, m, id, created, true);
  Json choice = {{"index", e.choice}, {"finish_reason", nullptr}, {"logprobs", nullptr}};
  if (r.endpoint == Endpoint::kChat) {
    choice["delta"] = {{"content", e.piece}};
    if (r.logprobs) choice["logprobs"] = {{"content", Json::array({chat_logprob(m, e)})}};
  } else {
    choice["text"] = e.piece;
    if (r.logprobs) choice["logprobs"] = completion_logprobs(m, {e}, 0);
  }
  out["choices"] = Json::array({choice});
  return out;
}

Json chunk_finish(const ParsedRequest& r, const ServedModel& m, const std::string& id,
                  int64_t created, int choice, FinishReason finish) {
  Json out = envelope(r, m, id, created, true);
  Json c = {{"index", choice}, {"finish_reason", finish_name(finish)}, {"logprobs", nullptr}};
  if (r.endpoint == Endpoint::kChat) {
    c["delta"] = Json::object();
  } else {
    c["text"] = "";
  }
  out["choices"] = Json::array({c});
  return out;
}

Json chunk_usage(const ParsedRequest& r, const ServedModel& m, const std::string& id,
                 int64_t created, int64_t prompt_tokens, int64_t completion_tokens) {
  Json out = envelope(r, m, id, created, true);
  out["choices"] = Json::array();
  out["usage"] = {{"prompt_tokens", prompt_tokens},
                  {"completion_tokens", completion_tokens},
                  {"total_tokens", prompt_tokens + completion_tokens}};
  return out;
}

}  // namespace bringup::server
