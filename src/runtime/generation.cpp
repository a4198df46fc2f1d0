#include "runtime/generation.h"

#include <algorithm>

namespace bringup {

GenerationSettings default_generation_settings(const GenerationConfig& g, const Tokenizer* tok) {
  GenerationSettings s;
  s.sampling = SamplingParams::from(g);
  s.max_new_tokens = g.max_new_tokens.value_or(256);
  s.eos_ids = g.eos_token_ids;
  if (s.eos_ids.empty() && tok && !tok->eos_token().empty()) {
    if (auto id = tok->token_id(tok->eos_token())) s.eos_ids.push_back(*id);
  }
  return s;
}

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kEndToken:
    case FinishReason::kStopString:
      return "stop";
  }
  return "none";
}

SequenceGenerator::SequenceGenerator(const GenerationSettings& s, const Tokenizer* tokenizer,
                                     std::span<const int32_t> history)
    : settings_(s), sampler_(s.sampling), seen_(history.begin(), history.end()), stops_(s.stop) {
  if (tokenizer) decoder_.emplace(*tokenizer);
  if (s.max_new_tokens < 1) finish_ = FinishReason::kLength;
}

int32_t SequenceGenerator::pick(std::span<const float> logits) {
  const int32_t id = sampler_.pick(logits, seen_, ids_);
  seen_.push_back(id);
  ids_.push_back(id);
  piece_.clear();
  const auto& eos = settings_.eos_ids;
  if (std::find(eos.begin(), eos.end(), id) != eos.end()) {
    finish_ = FinishReason::kEndToken;  // its text (<|im_end|>) is not shown
  } else if (decoder_) {
    piece_ = stops_.push(decoder_->push(id));
    if (stops_.stopped()) finish_ = FinishReason::kStopString;
  }
  if (!finished() && static_cast<int64_t>(ids_.size()) >= settings_.max_new_tokens) {
    finish_ = FinishReason::kLength;
  }
  if (finished() && decoder_ && finish_ != FinishReason::kStopString) {
    piece_ += stops_.push(decoder_->flush()) + stops_.flush();
  }
  text_ += piece_;
  return id;
}

}  // namespace bringup
