// Generation policy, per sequence: what a request asks for (sampling, token budget, end ids, stop
// strings, defaults from generation_config.json), and the state that carries it out step by
// step (its sampler and random stream, the repetition history, streaming detokenization that
// never splits a UTF-8 character, stop strings). The CLI, the batch driver and the server use it
// alike.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bringup/checkpoint.h"
#include "bringup/tokenizer.h"
#include "runtime/sampling.h"
#include "runtime/stop_strings.h"

namespace bringup {

struct GenerationSettings {
  SamplingParams sampling;
  int64_t max_new_tokens = 256;
  std::vector<int64_t> eos_ids;
  std::vector<std::string> stop;
};

// generation_config.json's settings; end ids from it, else the tokenizer's eos token.
GenerationSettings default_generation_settings(const GenerationConfig& g, const Tokenizer* tok);

enum class FinishReason { kNone, kLength, kEndToken, kStopString };
const char* finish_reason_name(FinishReason r);  // "length", "stop" (end token or stop string)

class SequenceGenerator {
 public:
  // history: the ids the sequence holds before the reply (prompt included), for the repetition
  // penalty. Without a tokenizer no text is produced (ids only).
  SequenceGenerator(const GenerationSettings& s, const Tokenizer* tokenizer,
                    std::span<const int32_t> history);

  // Picks the next token from the logits of the sequence's last position and records it.
  int32_t pick(std::span<const float> logits);
  // The text the last picked token releases (empty while a character or a possible stop string
  // is incomplete, or for an end token); at the end, whatever was held back.
  const std::string& piece() const { return piece_; }
  bool finished() const { return finish_ != FinishReason::kNone; }
  FinishReason finish_reason() const { return finish_; }
  const std::vector<int32_t>& ids() const { return ids_; }  // generated so far
  const std::string& text() const { return text_; }         // shown so far
  const GenerationSettings& settings() const { return settings_; }

 private:
  GenerationSettings settings_;
  Sampler sampler_;
  std::vector<int32_t> seen_;
  std::optional<StreamDecoder> decoder_;
  StopStrings stops_;
  std::vector<int32_t> ids_;
  std::string piece_, text_;
  FinishReason finish_ = FinishReason::kNone;
};

}  // namespace bringup
