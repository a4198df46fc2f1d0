// `bringup serve`: an OpenAI-compatible HTTP server over the batched engine. HTTP threads
// (cpp-httplib) parse and check requests and wait on their answers; one engine thread owns the
// model and a Scheduler (runtime/scheduler.h) and runs forward steps while any request is in
// flight, so every request in flight shares each step. The server listens before the model is
// loaded and answers 503 until attach() hands it the model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "bringup/model.h"
#include "bringup/tokenizer.h"
#include "runtime/generation.h"

namespace bringup::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (see Server::port)
  std::string api_key;             // empty: no authentication
  std::string model_id = "model";  // the id /v1/models lists and requests name
  int parallel = 32;               // requests generating at once; more wait in the queue
  int max_waiting = 256;           // queued requests beyond which the answer is 429
  size_t max_body_bytes = size_t{8} << 20;
  int64_t prompt_tokens_per_step = 256;  // prompt tokens one step takes beside the decodes
  double ping_seconds = 10;  // SSE comment lines while a stream waits (proxies time out)
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port; throws Error when it cannot. Returns the port bound.
  int bind();
  int port() const;
  // Serves on a thread of its own (after bind()).
  void start();
  // Hands the server its model: the engine starts and /health turns 200. The model and
  // tokenizer (may be null) must outlive the server.
  void attach(Model& model, const Tokenizer* tokenizer, const GenerationSettings& defaults);
  // Stops serving and the engine; requests in flight end.
  void stop();
  // Blocks until stop() (from another thread or a signal handler's flag) ends serving.
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bringup::server
