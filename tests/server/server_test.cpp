// The OpenAI-compatible server, in-process on a loopback port with the shipped model: answers at
// temperature 0 equal the library's greedy generation whatever else is in flight, streams carry
// the same text as whole answers, bad requests get the right 4xx and the server keeps serving,
// a client that goes away mid-stream has its generation cancelled and its KV blocks freed.
#include "server/server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "bringup/bringup.h"
#include "runtime/generate.h"

namespace bringup {
namespace {

using nlohmann::json;

const std::string kModel = BRINGUP_SOURCE_DIR "/models/bringup/tiny-shakespeare-qwen2";

// One model and tokenizer for every test; each test starts a server of its own.
struct Shared {
  Checkpoint ck = Checkpoint::open(kModel);
  std::shared_ptr<Device> dev = make_cpu_device(2);
  Tokenizer tok = Tokenizer::load(kModel);
  std::unique_ptr<Model> model;
  Shared() : model(model_with(512, 16384)) {}
  // Another model over the same weights, with its own context and KV budget.
  std::unique_ptr<Model> model_with(int64_t max_seq_len, int64_t kv_budget) const {
    ModelOptions o;
    o.max_seq_len = max_seq_len;
    o.kv_budget_tokens = kv_budget;
    return build_model(ck, *dev, o);
  }
};
Shared& shared() {
  static Shared s;
  return s;
}

struct Running {
  std::unique_ptr<server::Server> srv;
  std::unique_ptr<httplib::Client> client;
  Model* model = nullptr;  // the shared one unless given
  explicit Running(server::ServerOptions o = {}, bool attach = true, Model* m = nullptr)
      : model(m ? m : shared().model.get()) {
    o.port = 0;
    o.model_id = "tiny";
    o.ping_seconds = 0.2;
    srv = std::make_unique<server::Server>(o);
    const int port = srv->bind();
    srv->start();
    client = std::make_unique<httplib::Client>("127.0.0.1", port);
    client->set_read_timeout(60, 0);
    if (attach) this->attach();
  }
  void attach() {
    Shared& s = shared();
    srv->attach(*model, &s.tok, default_generation_settings(s.ck.generation_config(), &s.tok));
  }
  ~Running() { srv->stop(); }
  httplib::Result post(const std::string& path, const json& body) {
    return client->Post(path.c_str(), body.dump(), "application/json");
  }
  // No request running and the KV pool back to empty, within `limit`.
  void expect_idle_within(std::chrono::milliseconds limit) {
    double running = 1, usage = 1;
    for (auto waited = std::chrono::milliseconds(0); waited < limit && (running != 0 || usage != 0);
         waited += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      running = metrics_value("bringup:num_requests_running").get<double>();
      usage = metrics_value("bringup:kv_cache_usage_perc").get<double>();
    }
    EXPECT_EQ(running, 0);
    EXPECT_EQ(usage, 0);
  }
  json metrics_value(const std::string& name) {
    const auto r = client->Get("/metrics");
    const size_t at = r->body.find("\n" + name + " ");
    if (at == std::string::npos) return nullptr;
    return std::stod(r->body.substr(at + name.size() + 2));
  }
};

// The greedy reply the library gives for a chat, alone.
std::string alone_chat(const std::string& user, int64_t max_tokens) {
  Shared& s = shared();
  const std::vector<ChatMessage> msgs = {{"user", user}};
  const std::vector<int32_t> prompt = s.tok.encode(apply_chat_template(s.tok, msgs, true));
  GenerationRequest r;
  r.prompt = prompt;
  r.settings = default_generation_settings(s.ck.generation_config(), &s.tok);
  r.settings.sampling.do_sample = false;
  r.settings.max_new_tokens = max_tokens;
  return generate_batch(*s.model, &s.tok, std::span(&r, 1))[0].text;
}

json chat(const std::string& user, int64_t max_tokens) {
  return {{"model", "tiny"},
          {"messages", {{{"role", "user"}, {"content", user}}}},
          {"max_tokens", max_tokens},
          {"temperature", 0}};
}

// A raw TCP connection to the server on loopback (for what an HTTP client library will not send);
// -1 when it fails.
int connect_loopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// The data lines of an SSE body, parsed ("[DONE]" kept as a string).
std::vector<json> events_of(const std::string& body) {
  std::vector<json> out;
  size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    const size_t end = body.find("\n\n", at);
    const std::string data = body.substr(at + 6, end - at - 6);
    out.push_back(data == "[DONE]" ? json("[DONE]") : json::parse(data));
    at = end;
  }
  return out;
}

TEST(Server, HealthIs503UntilTheModelIsAttached) {
  Running s({}, false);
  auto r = s.client->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(json::parse(r->body)["error"]["message"], "the model is loading");
  r = s.post("/v1/chat/completions", chat("hi", 4));
  EXPECT_EQ(r->status, 503);
  s.attach();
  r = s.client->Get("/health");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body), json({{"status", "ok"}}));
}

TEST(Server, ChatAtTemperatureZeroEqualsTheLibrary) {
  Running s;
  const auto r = s.post("/v1/chat/completions", chat("Where is my lord?", 24));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_TRUE(j["created"].is_number_integer());
  EXPECT_EQ(j["model"], "tiny");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], alone_chat("Where is my lord?", 24));
  EXPECT_EQ(j["usage"]["completion_tokens"].get<int>() + j["usage"]["prompt_tokens"].get<int>(),
            j["usage"]["total_tokens"].get<int>());
}

TEST(Server, StreamCarriesTheSameTextWithRoleFinishUsageAndDone) {
  Running s;
  json body = chat("Speak, speak!", 20);
  const std::string whole =
      json::parse(s.post("/v1/chat/completions", body)->body)["choices"][0]["message"]["content"];
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  const auto r = s.post("/v1/chat/completions", body);
  ASSERT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  const std::vector<json> ev = events_of(r->body);
  ASSERT_GE(ev.size(), 4u);
  EXPECT_EQ(ev.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(ev.back(), "[DONE]");
  const json& usage = ev[ev.size() - 2];
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 20);
  const json& last = ev[ev.size() - 3];
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  std::string text;
  for (size_t i = 1; i + 2 < ev.size(); ++i) {
    EXPECT_EQ(ev[i]["object"], "chat.completion.chunk");
    if (ev[i]["choices"][0]["delta"].contains("content")) {
      text += ev[i]["choices"][0]["delta"]["content"].get<std::string>();
    }
  }
  EXPECT_EQ(text, whole);
}

TEST(Server, StopNChoicesAndLogprobs) {
  Running s;
  const std::string full = alone_chat("Good morrow", 30);
  ASSERT_GT(full.size(), 6u);
  const std::string stop = full.substr(4, 3);
  json body = chat("Good morrow", 30);
  body["stop"] = stop;
  body["n"] = 2;
  body["logprobs"] = true;
  body["top_logprobs"] = 2;
  const auto r = s.post("/v1/chat/completions", body);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  ASSERT_EQ(j["choices"].size(), 2u);
  for (const json& c : j["choices"]) {
    EXPECT_EQ(c["finish_reason"], "stop");
    EXPECT_EQ(c["message"]["content"], full.substr(0, full.find(stop)));
    const json& content = c["logprobs"]["content"];
    ASSERT_FALSE(content.empty());
    for (const json& t : content) {
      EXPECT_LE(t["logprob"].get<double>(), 0.0);
      ASSERT_EQ(t["top_logprobs"].size(), 2u);
      EXPECT_EQ(t["top_logprobs"][0]["token"], t["token"]);  // greedy: the likeliest
    }
  }
}

TEST(Server, CompletionFromTokenIdsWithEcho) {
  Running s;
  Shared& sh = shared();
  const std::vector<int32_t> ids = sh.tok.encode("ROMEO:");
  const auto r = s.post(
      "/v1/completions",
      {{"prompt", ids}, {"max_tokens", 12}, {"temperature", 0}, {"echo", true}, {"logprobs", 1}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  GenerationRequest g;
  g.prompt = ids;
  g.settings = default_generation_settings(sh.ck.generation_config(), &sh.tok);
  g.settings.sampling.do_sample = false;
  g.settings.max_new_tokens = 12;
  const std::string reply = generate_batch(*sh.model, &sh.tok, std::span(&g, 1))[0].text;
  EXPECT_EQ(j["choices"][0]["text"], "ROMEO:" + reply);
  EXPECT_EQ(j["choices"][0]["logprobs"]["tokens"].size(), 12u);
  EXPECT_EQ(j["usage"]["prompt_tokens"], ids.size());
}

// Eight clients at once, each with its own prompt: every answer is the one it gets alone.
TEST(Server, ConcurrentRequestsGetTheirAloneAnswers) {
  server::ServerOptions o;
  o.prompt_tokens_per_step = 16;  // long prompts share steps with decodes
  Running s(o);
  const std::vector<std::string> users = {"To be",       "My lord", "What news?", "Alas!",
                                          "Come hither", "Peace",   "O Romeo",    "Farewell"};
  std::vector<std::string> want;  // before the server runs: the model is its engine's then
  for (size_t i = 0; i < users.size(); ++i)
    want.push_back(alone_chat(users[i], 10 + static_cast<int>(i)));
  std::vector<std::future<std::string>> answers;
  for (size_t i = 0; i < users.size(); ++i) {
    answers.push_back(std::async(std::launch::async, [&, i] {
      httplib::Client c("127.0.0.1", s.srv->port());
      c.set_read_timeout(60, 0);
      json body = chat(users[i], 10 + static_cast<int>(i));
      body["stream"] = i % 2 == 1;
      const auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
      if (!r || r->status != 200) return std::string("failed");
      if (i % 2 == 0)
        return json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>();
      std::string text;
      for (const json& e : events_of(r->body)) {
        if (e.is_object() && !e["choices"].empty() &&
            e["choices"][0]["delta"].contains("content")) {
          text += e["choices"][0]["delta"]["content"].get<std::string>();
        }
      }
      return text;
    }));
  }
  for (size_t i = 0; i < users.size(); ++i) {
    EXPECT_EQ(answers[i].get(), want[i]) << users[i];
  }
  EXPECT_EQ(s.metrics_value("bringup:request_success_total"), 8.0);
}

// A pool too small for every request's worst case at once: all are admitted, the latest are
// preempted as the others grow and computed again later, and every answer is still the one the
// library gives alone.
TEST(Server, SmallPoolPreemptsWithoutChangingAnswers) {
  const std::unique_ptr<Model> small = shared().model_with(256, 256);
  const std::vector<std::string> users = {"To be", "My lord", "What news?", "Alas!", "Peace"};
  std::vector<std::string> want;
  for (const std::string& u : users) want.push_back(alone_chat(u, 150));
  Running s({}, true, small.get());
  std::vector<std::future<std::string>> answers;
  for (size_t i = 0; i < users.size(); ++i) {
    answers.push_back(std::async(std::launch::async, [&, i] {
      httplib::Client c("127.0.0.1", s.srv->port());
      c.set_read_timeout(600, 0);  // preemption recomputes: slow on a loaded machine
      const auto r = c.Post("/v1/chat/completions", chat(users[i], 150).dump(), "application/json");
      if (!r || r->status != 200) return std::string("failed");
      return json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>();
    }));
  }
  for (size_t i = 0; i < users.size(); ++i) EXPECT_EQ(answers[i].get(), want[i]) << users[i];
  s.expect_idle_within(std::chrono::seconds(5));
  EXPECT_GT(s.metrics_value("bringup:num_preemptions_total").get<double>(), 0);
  EXPECT_EQ(s.metrics_value("bringup:request_success_total"), 5.0);
}

// The second request behind a 1000-token prefix computes only what follows the prefix: the prefix
// comes from the cache. That is what makes its time to first token short; the times are printed
// (bench-serve measures the ratio too), the assertion is on the work done, which noise cannot move.
TEST(Server, ThousandTokenPrefixIsComputedOnce) {
  Shared& sh = shared();
  const std::unique_ptr<Model> longer = sh.model_with(1280, 4096);
  Running s({}, true, longer.get());
  std::vector<int32_t> prefix;
  for (int i = 0; prefix.size() < 1000; ++i) {
    const std::vector<int32_t> ids = sh.tok.encode(" the king doth weep " + std::to_string(i));
    prefix.insert(prefix.end(), ids.begin(), ids.end());
  }
  prefix.resize(1000);
  double computed[2], seconds[2];
  for (int k = 0; k < 2; ++k) {
    std::vector<int32_t> prompt = prefix;
    prompt.push_back(100 + k);  // each its own last token
    const double before = s.metrics_value("bringup:prompt_tokens_total").get<double>();
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = s.post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 1}});
    seconds[k] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_EQ(r->status, 200) << r->body;
    s.expect_idle_within(std::chrono::seconds(5));  // the engine's counters follow its step
    computed[k] = s.metrics_value("bringup:prompt_tokens_total").get<double>() - before;
  }
  std::printf(
      "1000-token shared prefix: first %.1f ms (%.0f tokens computed), second %.1f ms "
      "(%.0f computed): %.1fx\n",
      seconds[0] * 1e3, computed[0], seconds[1] * 1e3, computed[1], seconds[0] / seconds[1]);
  EXPECT_EQ(computed[0], 1001);
  EXPECT_LE(computed[1] * 5, computed[0]);
  EXPECT_LE(computed[1], 32 + 1);  // at most the part of the last block, and the new token
  EXPECT_GE(s.metrics_value("bringup:prefix_cache_hits_total").get<double>(), 960);
}

TEST(Server, AbortedStreamIsCancelledAndItsBlocksFreed) {
  Running s;
  json body = chat("Tell me a long tale", 400);
  body["stream"] = true;
  int chunks = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
    return ++chunks < 4;  // hang up after a few chunks
  };
  const auto r = s.client->send(req);
  EXPECT_FALSE(r);
  EXPECT_EQ(chunks, 4);
  s.expect_idle_within(std::chrono::seconds(5));
  EXPECT_LT(s.metrics_value("bringup:generation_tokens_total").get<double>(), 400);
}

// A client waiting for a whole (non-streamed) answer that hangs up: its generation is cancelled
// and its blocks freed, though nothing was written to it yet.
TEST(Server, ClientLeavingBeforeAWholeAnswerIsCancelled) {
  Running s;
  const std::string body = chat("Tell me a long tale", 400).dump();
  const std::string request =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  const int fd = connect_loopback(s.srv->port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  double generated = 0;
  for (int i = 0; i < 200 && generated < 5; ++i) {  // it is generating
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    generated = s.metrics_value("bringup:generation_tokens_total").get<double>();
  }
  ASSERT_GE(generated, 5);
  close(fd);
  s.expect_idle_within(std::chrono::seconds(5));
  EXPECT_LT(s.metrics_value("bringup:generation_tokens_total").get<double>(), 400);
  EXPECT_EQ(s.metrics_value("bringup:request_success_total"), 0.0);
}

TEST(Server, ApiKeyGuardsGenerationButNotHealthOrModels) {
  server::ServerOptions o;
  o.api_key = "sesame";
  Running s(o);
  auto r = s.post("/v1/chat/completions", chat("hi", 2));
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["type"], "authentication_error");
  EXPECT_EQ(s.client->Get("/health")->status, 200);
  EXPECT_EQ(s.client->Get("/v1/models")->status, 200);
  s.client->set_bearer_token_auth("sesame");
  r = s.post("/v1/chat/completions", chat("hi", 2));
  EXPECT_EQ(r->status, 200) << r->body;
  s.client->set_bearer_token_auth("wrong");
  EXPECT_EQ(s.post("/v1/completions", {{"prompt", "hi"}})->status, 401);
}

// Every malformed request gets its 4xx with a message naming the problem, and the server keeps
// serving.
TEST(Server, MalformedRequestsGetTheRight4xx) {
  server::ServerOptions o;
  o.max_body_bytes = 1 << 20;
  Running s(o);
  const struct {
    std::string path, body;
    int status;
    std::string needle;
  } cases[] = {
      {"/v1/chat/completions", "{\"messages\": [", 400, "not valid JSON"},
      {"/v1/chat/completions", "[1, 2]", 400, "must be a JSON object"},
      {"/v1/chat/completions", R"({"messages": "hi"})", 400,
       "'messages' must be a non-empty array"},
      {"/v1/chat/completions", R"({"messages": []})", 400, "'messages' must be a non-empty array"},
      {"/v1/chat/completions", R"({"messages": [{"role": "wizard", "content": "hi"}]})", 400,
       "role 'wizard' is not supported"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": 5}]})", 400,
       "must be a string or an array of text parts"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", 400,
       "content parts of type 'image_url' are not supported"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -3})", 400,
       "'max_tokens' must be between 1"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 99999999})", 400,
       "exceeds the context of 512 tokens"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"})", 400,
       "'temperature' must be a number"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "n": 1000})",
       400, "'n' must be between 1 and 64"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema"}})",
       400, "'response_format' other than"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}], "tool_choice": "required"})",
       400, "tool calls are not supported"},
      {"/v1/chat/completions",
       R"({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]})", 404,
       "the model 'gpt-4' does not exist"},
      {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\xfe\"}]}",
       400, "not valid JSON"},
      {"/v1/completions", R"({"prompt": [1, 2, 999999]})", 400,
       "prompt token id 999999 is outside the model's vocabulary"},
      {"/v1/completions", R"({"prompt": ["a", "b"]})", 400, "a list of several prompts"},
      {"/v1/completions", R"({"prompt": ""})", 400, "the prompt is empty"},
      {"/v1/completions", R"({"prompt": "hi", "stop": [1]})", 400, "'stop' must be a string"},
      {"/v1/completions", R"({"prompt": "hi", "logit_bias": {"5": 3}})", 400,
       "'logit_bias' is not supported"},
      {"/v1/completions", R"({"prompt": "hi", "echo": "yes"})", 400,
       "'echo' must be true or false"},
      {"/v1/nothing", "{}", 404, "no such endpoint: POST /v1/nothing"},
      {"/v1/completions", std::string(2 << 20, ' '), 413, "larger than the server accepts"},
  };
  for (const auto& c : cases) {
    const auto r = s.client->Post(c.path.c_str(), c.body, "application/json");
    ASSERT_TRUE(r) << c.body.substr(0, 80);
    EXPECT_EQ(r->status, c.status) << c.body.substr(0, 80) << " -> " << r->body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(c.needle), std::string::npos)
        << c.body.substr(0, 80) << " -> " << r->body;
    EXPECT_EQ(j["error"]["code"], c.status);
  }
  // A prompt past the context.
  std::string long_prompt;
  for (int i = 0; i < 600; ++i) long_prompt += "word ";
  auto r = s.post("/v1/completions", {{"prompt", long_prompt}});
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("more than the context of 512"), std::string::npos) << r->body;
  // Still serving.
  r = s.post("/v1/chat/completions", chat("hi", 3));
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(s.client->Get("/v1/models/tiny")->status, 200);
  EXPECT_EQ(s.client->Get("/v1/models/other")->status, 404);
}

// A 100 MB body, declared up front or sent in chunks without a length, is answered 413 (the
// default limit is 8 MiB) and the server keeps serving.
TEST(Server, HundredMegabyteBodiesAre413) {
  Running s;
  for (bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "chunked" : "content-length");
    const size_t size = size_t{100} << 20;
    const int fd = connect_loopback(s.srv->port());
    ASSERT_GE(fd, 0);
    std::string head =
        "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                    : "Content-Length: " + std::to_string(size) + "\r\n\r\n";
    // The body goes out on a thread of its own (the server may answer before reading it all).
    auto sender = std::async(std::launch::async, [&] {
      if (send(fd, head.data(), head.size(), MSG_NOSIGNAL) < 0) return;
      const std::string piece(1 << 20, ' ');
      char size_line[32];
      std::snprintf(size_line, sizeof size_line, "%zx\r\n", piece.size());
      for (size_t sent = 0; sent < size; sent += piece.size()) {
        if (chunked && send(fd, size_line, std::strlen(size_line), MSG_NOSIGNAL) < 0) return;
        if (send(fd, piece.data(), piece.size(), MSG_NOSIGNAL) < 0) return;
        if (chunked && send(fd, "\r\n", 2, MSG_NOSIGNAL) < 0) return;
      }
      if (chunked) send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL);
    });
    std::string answer;
    char buf[4096];
    for (ssize_t n;
         answer.find("\r\n\r\n") == std::string::npos && (n = recv(fd, buf, sizeof buf, 0)) > 0;) {
      answer.append(buf, static_cast<size_t>(n));
    }
    shutdown(fd, SHUT_RDWR);
    sender.wait();
    close(fd);
    EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 413") << answer.substr(0, 200);
  }
  EXPECT_EQ(s.post("/v1/chat/completions", chat("hi", 3))->status, 200);
}

TEST(Server, QueueBeyondItsLimitAnswers429) {
  server::ServerOptions o;
  o.parallel = 1;
  o.max_waiting = 1;
  Running s(o);
  auto first = std::async(std::launch::async, [&] {
    httplib::Client c("127.0.0.1", s.srv->port());
    c.set_read_timeout(60, 0);
    return c.Post("/v1/chat/completions", chat("a long one", 300).dump(), "application/json")
        ->status;
  });
  auto second = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    httplib::Client c("127.0.0.1", s.srv->port());
    c.set_read_timeout(60, 0);
    return c.Post("/v1/chat/completions", chat("the next", 4).dump(), "application/json")->status;
  });
  for (int i = 0; i < 200 && s.metrics_value("bringup:num_requests_waiting") != 1.0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto r = s.post("/v1/chat/completions", chat("one too many", 4));
  EXPECT_EQ(r->status, 429) << r->body;
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_EQ(first.get(), 200);
  EXPECT_EQ(second.get(), 200);
}

// Stopping the server answers what is in flight (503) instead of leaving it waiting forever.
TEST(Server, StoppingAnswersRequestsInFlight) {
  Running s;
  auto pending = std::async(std::launch::async, [&] {
    httplib::Client c("127.0.0.1", s.srv->port());
    c.set_read_timeout(60, 0);
    const auto r =
        c.Post("/v1/chat/completions", chat("a long one", 450).dump(), "application/json");
    return r ? r->status : -1;
  });
  for (int i = 0; i < 200 && s.metrics_value("bringup:num_requests_running") != 1.0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  s.srv->stop();
  const int status = pending.get();
  EXPECT_TRUE(status == 503 || status == -1) << status;
}

TEST(Server, TokenizeAndDetokenize) {
  Running s;
  auto r = s.post("/tokenize", {{"prompt", "Hello there"}});
  ASSERT_EQ(r->status, 200);
  const json ids = json::parse(r->body)["tokens"];
  EXPECT_EQ(ids.get<std::vector<int32_t>>(), shared().tok.encode("Hello there"));
  r = s.post("/detokenize", {{"tokens", ids}});
  EXPECT_EQ(json::parse(r->body)["prompt"], "Hello there");
  EXPECT_EQ(s.post("/detokenize", {{"tokens", {-1}}})->status, 400);
  EXPECT_EQ(s.post("/tokenize", {{"text", "x"}})->status, 400);
}

}  // namespace
}  // namespace bringup
