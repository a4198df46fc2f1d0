// Byte-pair encoding as Hugging Face tokenizers' BPE model runs it: merges applied in rank order
// (lowest first, leftmost first among equal ranks) through a priority queue.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bringup {

class Bpe {
 public:
  struct Merge {
    int32_t rank;
    int32_t merged;  // id of the merged token
  };

  // vocab: token string -> id; merges in rank order as (left, right) token strings. Throws Error
  // (prefixed by `source`) for merges naming unknown tokens.
  Bpe(std::unordered_map<std::string, int32_t> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
      const std::string& source);

  // Appends the ids of one pre-token (already in the byte-level alphabet).
  void encode(std::string_view word, std::vector<int32_t>& out) const;

  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id)
  bool ignore_merges_;
  // Pre-tokens repeat a lot in text; their ids are cached (bounded, cleared when full).
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace bringup
