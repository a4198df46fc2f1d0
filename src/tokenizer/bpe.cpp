#include "tokenizer/bpe.h"

#include <queue>

#include "bringup/error.h"
#include "tokenizer/utf8.h"

namespace bringup {

namespace {
constexpr size_t kCacheEntries = 1 << 16;
constexpr size_t kCachedWordBytes = 64;

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
}  // namespace

Bpe::Bpe(std::unordered_map<std::string, int32_t> vocab,
         const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
         const std::string& source)
    : vocab_(std::move(vocab)), ignore_merges_(ignore_merges) {
  merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    const auto ia = vocab_.find(a), ib = vocab_.find(b), im = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end() || im == vocab_.end()) {
      throw Error(source + ": merge " + std::to_string(r) + " ('" + a + "', '" + b +
                  "') uses a token that is not in the vocabulary");
    }
    merges_.emplace(pair_key(ia->second, ib->second), Merge{static_cast<int32_t>(r), im->second});
  }
}

void Bpe::encode(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    if (auto it = vocab_.find(std::string(word)); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (word.size() > kCachedWordBytes) {
    merge_word(word, out);
    return;
  }
  const std::string key(word);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheEntries) cache_.clear();
  cache_.emplace(key, std::move(ids));
}

// Hugging Face's Word::merge_all: a min-queue of (rank, position) over adjacent pairs; entries
// made stale by an earlier merge are skipped when popped.
void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool removed;
  };
  std::vector<Symbol> sym;
  for (size_t i = 0; i < word.size();) {
    const size_t start = i;
    utf8::next(word, i);
    const auto it = vocab_.find(std::string(word.substr(start, i - start)));
    if (it == vocab_.end()) continue;  // no unknown token in byte-level BPE: cannot happen
    const int32_t n = static_cast<int32_t>(sym.size());
    sym.push_back({it->second, n - 1, -1, false});
    if (n > 0) sym[n - 1].next = n;
  }
  struct Entry {
    int32_t rank, pos, merged;
    bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue;
  auto push_pair = [&](int32_t pos) {
    const int32_t next = sym[pos].next;
    if (next < 0) return;
    const auto it = merges_.find(pair_key(sym[pos].id, sym[next].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.merged});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) push_pair(i);
  while (!queue.empty()) {
    const Entry top = queue.top();
    queue.pop();
    Symbol& s = sym[top.pos];
    if (s.removed || s.next < 0) continue;
    const auto it = merges_.find(pair_key(s.id, sym[s.next].id));
    if (it == merges_.end() || it->second.merged != top.merged) continue;  // stale
    Symbol& right = sym[s.next];
    s.id = top.merged;
    right.removed = true;
    s.next = right.next;
    if (s.next >= 0) sym[s.next].prev = top.pos;
    if (s.prev >= 0) push_pair(s.prev);
    push_pair(top.pos);
  }
  for (const Symbol& s : sym) {
    if (!s.removed) out.push_back(s.id);
  }
}

}  // namespace bringup
