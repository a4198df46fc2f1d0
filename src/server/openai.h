// The OpenAI wire format: request bodies of /v1/chat/completions and /v1/completions checked and
// turned into generation requests, and the JSON of responses and stream chunks. Pure functions of
// their inputs, so the fuzzer and the tests reach them without a socket.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bringup/tokenizer.h"
#include "runtime/scheduler.h"

namespace bringup::server {

using Json = nlohmann::json;

// An error the client caused (or the server's state, e.g. 503): answered as
// {"error": {"message", "type", "param", "code"}} with `status`.
struct ApiError {
  int status = 400;
  std::string message;
  std::string param;  // the request field at fault, when there is one
  std::string type() const;
  Json body() const;
};

enum class Endpoint { kChat, kCompletion };

// What the model serves, for checking requests against it.
struct ServedModel {
  std::string id;
  const Tokenizer* tokenizer = nullptr;
  GenerationSettings defaults;  // generation_config.json's
  int64_t max_seq_len = 0;
  int64_t vocab_size = 0;
};

struct ParsedRequest {
  Endpoint endpoint = Endpoint::kChat;
  GenerationRequest generation;
  bool stream = false;
  bool include_usage = false;
  bool echo = false;        // completions: the prompt's text before the reply
  bool logprobs = false;    // per-token log-probabilities in the answer
  bool random_seed = true;  // no seed was given
};

// A request body as a JSON object; ApiError (400) otherwise.
Json parse_body(const std::string& body);

// Checks a request body (already parsed JSON, or text that may not be JSON) for `endpoint`.
// Throws ApiError naming the field. Unknown fields are ignored; fields we do not implement that
// would change the result are refused by name.
ParsedRequest parse_request(Endpoint endpoint, const std::string& body, const ServedModel& model);

// One choice's tokens and text as the scheduler delivered them.
struct ChoiceResult {
  std::vector<GenerationEvent> events;
  std::string text;
  FinishReason finish = FinishReason::kNone;
};

// The non-streamed answer.
Json completion_response(const ParsedRequest& r, const ServedModel& m, const std::string& id,
                         int64_t created, const std::vector<ChoiceResult>& choices);
// Stream chunks: the first of a choice (the role, chat only), one per token with text or
// log-probabilities, the last of a choice (finish_reason), and the usage chunk.
Json chunk_role(const ParsedRequest& r, const ServedModel& m, const std::string& id,
                int64_t created, int choice);
Json chunk_token(const ParsedRequest& r, const ServedModel& m, const std::string& id,
                 int64_t created, const GenerationEvent& e);
Json chunk_finish(const ParsedRequest& r, const ServedModel& m, const std::string& id,
                  int64_t created, int choice, FinishReason finish);
Json chunk_usage(const ParsedRequest& r, const ServedModel& m, const std::string& id,
                 int64_t created, int64_t prompt_tokens, int64_t completion_tokens);

const char* finish_name(FinishReason f);  // "stop", "length"

// JSON text as the server sends it. Token bytes and echoed input may hold invalid UTF-8; it is
// replaced (U+FFFD), never thrown.
std::string to_text(const Json& j);

}  // namespace bringup::server
