#include "server/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "bringup/error.h"
#include "runtime/scheduler.h"
#include "server/chat_page.h"
#include "server/connection.h"
#include "server/metrics.h"
#include "server/openai.h"

namespace bringup::server {

namespace {

using Clock = std::chrono::steady_clock;
// How often a handler waiting for a whole answer looks whether its client is still there.
constexpr std::chrono::milliseconds kWatchInterval{100};
constexpr const char* kTooLarge = "the request body is larger than the server accepts";

void send_json(httplib::Response& res, int status, const Json& j) {
  res.status = status;
  res.set_content(to_text(j), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  if (e.status == 429) res.set_header("Retry-After", "1");
  send_json(res, e.status, e.body());
}

// Where the engine thread leaves one request's events for the HTTP thread that answers it.
struct Channel {
  explicit Channel(int n) : choices(static_cast<size_t>(n)) {}
  std::mutex mu;
  std::condition_variable cv;
  std::deque<GenerationEvent> events;
  std::vector<ChoiceResult> choices;
  int finished = 0;
  std::string failure;  // set when the engine refused or lost the request
  int failure_status = 400;
  std::atomic<bool> cancelled{false};

  void push(const GenerationEvent& e) {
    {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(e);
    }
    cv.notify_all();
  }
  void fail(const std::string& message, int status = 400) {
    {
      std::lock_guard<std::mutex> lock(mu);
      failure = message;
      failure_status = status;
    }
    cv.notify_all();
  }
};

struct Pending {
  GenerationRequest request;
  std::shared_ptr<Channel> channel;
};

}  // namespace

struct Server::Impl {
  ServerOptions options;
  httplib::Server http;
  int bound_port = -1;
  std::thread listener;

  // The model, once attached.
  std::atomic<bool> ready{false};
  ServedModel served;
  Model* model = nullptr;
  std::unique_ptr<Scheduler> scheduler;
  std::thread engine;

  // Hand-over between HTTP threads and the engine thread.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Pending> inbox;
  std::vector<std::shared_ptr<Channel>> cancels;
  bool stopping = false;
  std::atomic<int64_t> engine_waiting{0};  // requests the scheduler holds but has not admitted

  Metrics metrics;
  std::atomic<uint64_t> next_id{1};
  std::mt19937_64 seeds{std::random_device{}()};
  std::mutex seeds_mu;

  explicit Impl(ServerOptions o) : options(std::move(o)) {}

  void routes();
  void run_engine();
  void handle_generation(Endpoint endpoint, const httplib::Request& req, const std::string& body,
                         httplib::Response& res);
  // A POST route reading its body under the size limit. httplib 0.11 checks a declared
  // Content-Length against its limit but reads a chunked body whole, so the limit is applied here
  // as the body arrives, and a body past it is not read on.
  template <class Fn>
  void post(const std::string& path, Fn fn) {
    http.Post(path, [this, fn](const httplib::Request& req, httplib::Response& res,
                               const httplib::ContentReader& read) {
      std::string body;
      bool too_large = false;
      const bool whole = read([&](const char* data, size_t n) {
        too_large = body.size() + n > options.max_body_bytes;
        if (!too_large) body.append(data, n);
        return !too_large;
      });
      if (whole) return fn(req, body, res);
      // httplib refuses a declared length past its limit with 413 before reading.
      too_large = too_large || res.status == 413;
      res.set_header("Connection", "close");  // what is left of the body stays unread
      send_error(res, too_large ? ApiError{413, kTooLarge, ""}
                                : ApiError{400, "the request body could not be read", ""});
    });
  }
  void cancel(const std::shared_ptr<Channel>& ch) {
    if (ch->cancelled.exchange(true)) return;
    {
      std::lock_guard<std::mutex> lock(mu);
      cancels.push_back(ch);
    }
    cv.notify_all();
  }
  bool authorized(const httplib::Request& req) const {
    if (options.api_key.empty()) return true;
    return req.get_header_value("Authorization") == "Bearer " + options.api_key;
  }
};

void Server::Impl::run_engine() {
  std::unordered_map<Channel*, std::pair<uint64_t, std::shared_ptr<Channel>>> live;
  for (;;) {
    std::deque<Pending> incoming;
    std::vector<std::shared_ptr<Channel>> dropped;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock,
              [&] { return stopping || !inbox.empty() || !cancels.empty() || !scheduler->idle(); });
      if (stopping) break;
      incoming.swap(inbox);
      dropped.swap(cancels);
    }
    for (Pending& p : incoming) {
      std::shared_ptr<Channel> ch = p.channel;
      try {
        const uint64_t id = scheduler->submit(std::move(p.request),
                                              [ch](const GenerationEvent& e) { ch->push(e); });
        live[ch.get()] = {id, ch};
      } catch (const Error& e) {
        ch->fail(e.what());
      }
    }
    for (const auto& ch : dropped) {
      const auto it = live.find(ch.get());
      if (it == live.end()) continue;
      scheduler->cancel(it->second.first);
      live.erase(it);
    }
    try {
      scheduler->step();
    } catch (const std::exception& e) {
      // A step refused (it should not be): every request in flight learns why.
      for (auto& [ptr, entry] : live) {
        scheduler->cancel(entry.first);
        entry.second->fail(std::string("the engine failed: ") + e.what());
      }
      live.clear();
    }
    const SchedulerStats s = scheduler->stats();
    engine_waiting = s.waiting;
    std::erase_if(live, [](const auto& entry) {
      Channel& ch = *entry.second.second;
      std::lock_guard<std::mutex> lock(ch.mu);
      // Done once every choice finished (its events may still wait to be read).
      int done = ch.finished;
      for (const GenerationEvent& e : ch.events) done += e.finished;
      return done == static_cast<int>(ch.choices.size());
    });
    const KvPoolStats pool = model->kv_pool();
    metrics.engine(s, pool);
  }
  // Stopping: whoever still waits for an answer gets one, so no HTTP thread waits forever.
  std::lock_guard<std::mutex> lock(mu);
  for (auto& [ptr, entry] : live) entry.second->fail("the server is shutting down", 503);
  for (Pending& p : inbox) p.channel->fail("the server is shutting down", 503);
  inbox.clear();
}

void Server::Impl::handle_generation(Endpoint endpoint, const httplib::Request& req,
                                     const std::string& body, httplib::Response& res) {
  const auto t0 = Clock::now();
  if (!ready) return send_error(res, {503, "the model is loading", ""});
  ParsedRequest r;
  try {
    r = parse_request(endpoint, body, served);
    if (r.random_seed) {
      std::lock_guard<std::mutex> lock(seeds_mu);
      r.generation.settings.sampling.seed = seeds();
    }
    scheduler->check(r.generation);
  } catch (const ApiError& e) {
    return send_error(res, e);
  } catch (const Error& e) {
    return send_error(res, {400, e.what(), endpoint == Endpoint::kChat ? "messages" : "prompt"});
  }
  auto ch = std::make_shared<Channel>(r.generation.n);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) return send_error(res, {503, "the server is shutting down", ""});
    if (static_cast<int64_t>(inbox.size()) + engine_waiting.load() >= options.max_waiting) {
      return send_error(res, {429,
                              "the server is at capacity: " + std::to_string(options.max_waiting) +
                                  " requests are waiting; retry later",
                              ""});
    }
    inbox.push_back({r.generation, ch});
  }
  cv.notify_all();
  const std::string id =
      (endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id.fetch_add(1));
  const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  const auto ping = std::chrono::duration<double>(options.ping_seconds);
  const int64_t prompt_tokens = static_cast<int64_t>(r.generation.prompt.size());

  // Takes the events that arrived; true when every choice has finished. Records metrics once.
  struct Progress {
    std::optional<Clock::time_point> first;
    int64_t tokens = 0;
    bool recorded = false;
  };
  auto progress = std::make_shared<Progress>();
  // `out` (streams) also receives the new events.
  auto take = [this, ch, progress, t0, prompt_tokens](std::vector<GenerationEvent>* out) {
    std::lock_guard<std::mutex> lock(ch->mu);
    while (!ch->events.empty()) {
      GenerationEvent e = std::move(ch->events.front());
      ch->events.pop_front();
      if (!progress->first) progress->first = Clock::now();
      ++progress->tokens;
      ChoiceResult& c = ch->choices[static_cast<size_t>(e.choice)];
      c.text += e.piece;
      if (e.finished) {
        c.finish = e.finish;
        ++ch->finished;
      }
      if (out) out->push_back(e);
      c.events.push_back(std::move(e));
    }
    const bool done = ch->finished == static_cast<int>(ch->choices.size());
    if (done && !progress->recorded) {
      progress->recorded = true;
      metrics.request_done(prompt_tokens, progress->tokens,
                           std::chrono::duration<double>(*progress->first - t0).count(),
                           std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return done;
  };

  if (!r.stream) {
    // Nothing is written until the answer is whole, so the connection is watched meanwhile: a
    // client that leaves has its generation cancelled within a step.
    const ConnectionWatch watch(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
    std::unique_lock<std::mutex> lock(ch->mu);
    for (;;) {
      const bool woke = ch->cv.wait_for(
          lock, kWatchInterval, [&] { return !ch->events.empty() || !ch->failure.empty(); });
      if (watch.closed()) {
        lock.unlock();
        cancel(ch);
        return;  // nobody reads the answer
      }
      if (!woke) continue;
      if (!ch->failure.empty()) {
        const ApiError e{ch->failure_status, ch->failure, ""};
        lock.unlock();
        return send_error(res, e);
      }
      lock.unlock();
      const bool done = take(nullptr);
      lock.lock();
      if (done) break;
    }
    lock.unlock();
    return send_json(res, 200, completion_response(r, served, id, created, ch->choices));
  }

  auto sse = [](httplib::DataSink& sink, const Json& j) {
    const std::string line = "data: " + to_text(j) + "\n\n";
    return sink.write(line.data(), line.size());
  };
  auto started = std::make_shared<bool>(false);
  auto finished = std::make_shared<bool>(false);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, r, id, created, ch, ping, take, sse, started, finished, progress, prompt_tokens](
          size_t, httplib::DataSink& sink) {
        const auto gone = [this, &ch] {  // the client went away: stop generating for it
          cancel(ch);
          return false;
        };
        if (!*started) {
          *started = true;
          // Chat streams open with the role; completions only to echo the prompt.
          for (int c = 0; c < r.generation.n && (r.endpoint == Endpoint::kChat || r.echo); ++c) {
            if (!sse(sink, chunk_role(r, served, id, created, c))) return gone();
          }
        }
        {
          std::unique_lock<std::mutex> lock(ch->mu);
          const bool woke = ch->cv.wait_for(
              lock, ping, [&] { return !ch->events.empty() || !ch->failure.empty(); });
          if (!ch->failure.empty()) {
            const ApiError e{ch->failure_status, ch->failure, ""};
            lock.unlock();
            sse(sink, e.body());
            sink.done();
            *finished = true;
            return true;
          }
          if (!woke) {
            lock.unlock();
            static const std::string kPing = ": ping\n\n";
            if (!sink.write(kPing.data(), kPing.size())) return gone();
            return true;
          }
        }
        std::vector<GenerationEvent> events;
        const bool done = take(&events);
        for (const GenerationEvent& e : events) {
          if (!e.piece.empty() || r.logprobs) {
            if (!sse(sink, chunk_token(r, served, id, created, e))) return gone();
          }
          if (e.finished && !sse(sink, chunk_finish(r, served, id, created, e.choice, e.finish))) {
            return gone();
          }
        }
        if (done) {
          if (r.include_usage &&
              !sse(sink, chunk_usage(r, served, id, created, prompt_tokens, progress->tokens))) {
            return gone();
          }
          static const std::string kDone = "data: [DONE]\n\n";
          sink.write(kDone.data(), kDone.size());
          sink.done();
          *finished = true;
        }
        return true;
      },
      [this, ch, finished](bool success) {
        if (!success || !*finished) cancel(ch);  // the client went away mid-stream
      });
}

void Server::Impl::routes() {
  http.set_payload_max_length(options.max_body_bytes);
  http.set_keep_alive_max_count(1000);
  http.set_read_timeout(30, 0);
  const size_t threads = static_cast<size_t>(std::max(8, 2 * options.parallel + 8));
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const bool open = req.path == "/health" || req.path == "/metrics" || req.path == "/" ||
                      req.path.rfind("/v1/models", 0) == 0;
    if (open || authorized(req)) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, {401, "missing or wrong API key (send 'Authorization: Bearer KEY')", ""});
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 413) {
          send_error(res, {413, kTooLarge, ""});
        } else if (res.status == 404) {
          send_error(res, {404, "no such endpoint: " + req.method + " " + req.path, ""});
        } else {
          send_error(res, {res.status, "the request could not be served", ""});
        }
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, {500, "internal error: " + what, ""});
      });

  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(chat_page()), "text/html; charset=utf-8");
  });
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (!ready) return send_error(res, {503, "the model is loading", ""});
    send_json(res, 200, {{"status", "ok"}});
  });
  auto model_card = [this] {
    return Json{{"id", options.model_id},
                {"object", "model"},
                {"created", 0},
                {"owned_by", "bringup"},
                {"max_model_len", served.max_seq_len}};
  };
  http.Get("/v1/models", [model_card](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"object", "list"}, {"data", Json::array({model_card()})}});
  });
  http.Get(R"(/v1/models/(.+))", [this, model_card](const httplib::Request& req,
                                                    httplib::Response& res) {
    if (req.matches[1] != options.model_id) {
      return send_error(
          res, {404, "the model '" + std::string(req.matches[1]) + "' does not exist", "model"});
    }
    send_json(res, 200, model_card());
  });
  post("/v1/chat/completions",
       [this](const httplib::Request& req, const std::string& body, httplib::Response& res) {
         handle_generation(Endpoint::kChat, req, body, res);
       });
  post("/v1/completions",
       [this](const httplib::Request& req, const std::string& body, httplib::Response& res) {
         handle_generation(Endpoint::kCompletion, req, body, res);
       });
  // vLLM's /tokenize and /detokenize, over the served tokenizer.
  auto with_tokenizer = [this](const std::string& body, httplib::Response& res, auto&& answer) {
    try {
      if (!ready) throw ApiError{503, "the model is loading", ""};
      const Json j = parse_body(body);
      if (!served.tokenizer) throw ApiError{400, "this model has no tokenizer", ""};
      send_json(res, 200, answer(j, *served.tokenizer));
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const Error& e) {
      send_error(res, {400, e.what(), ""});
    }
  };
  post("/tokenize", [this, with_tokenizer](const httplib::Request&, const std::string& body,
                                           httplib::Response& res) {
    with_tokenizer(body, res, [this](const Json& j, const Tokenizer& tok) {
      if (!j.contains("prompt") || !j["prompt"].is_string()) {
        throw ApiError{400, "'prompt' must be a string", "prompt"};
      }
      // As vLLM's /tokenize: add_special_tokens (default true) adds a BOS id where the
      // tokenizer asks for one.
      bool add_special = true;
      if (j.contains("add_special_tokens")) {
        if (!j["add_special_tokens"].is_boolean()) {
          throw ApiError{400, "'add_special_tokens' must be true or false", "add_special_tokens"};
        }
        add_special = j["add_special_tokens"].get<bool>();
      }
      const std::vector<int32_t> ids = tok.encode(j["prompt"].get<std::string>(), add_special);
      return Json{{"tokens", ids}, {"count", ids.size()}, {"max_model_len", served.max_seq_len}};
    });
  });
  post("/detokenize", [this, with_tokenizer](const httplib::Request&, const std::string& body,
                                             httplib::Response& res) {
    with_tokenizer(body, res, [this](const Json& j, const Tokenizer& tok) {
      if (!j.contains("tokens") || !j["tokens"].is_array()) {
        throw ApiError{400, "'tokens' must be an array of token ids", "tokens"};
      }
      std::vector<int32_t> ids;
      for (const Json& v : j["tokens"]) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
            v.get<int64_t>() >= served.vocab_size) {
          throw ApiError{400,
                         "'tokens' must hold ids in 0.." + std::to_string(served.vocab_size - 1),
                         "tokens"};
        }
        ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
      }
      return Json{{"prompt", tok.decode(ids)}};
    });
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(), "text/plain; version=0.0.4");
  });
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->routes();
}

Server::~Server() {
  stop();
}

int Server::bind() {
  Impl& s = *impl_;
  if (s.options.port < 0 || s.options.port > 65535) {
    throw Error("--port must be in 0..65535, not " + std::to_string(s.options.port));
  }
  if (s.options.port == 0) {
    s.bound_port = s.http.bind_to_any_port(s.options.host);
  } else {
    s.bound_port = s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
  }
  if (s.bound_port < 0) {
    throw Error("cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) +
                " (address in use, or not an address of this machine)");
  }
  return s.bound_port;
}

int Server::port() const {
  return impl_->bound_port;
}

void Server::start() {
  impl_->listener = std::thread([this] { impl_->http.listen_after_bind(); });
}

void Server::attach(Model& model, const Tokenizer* tokenizer, const GenerationSettings& defaults) {
  Impl& s = *impl_;
  s.model = &model;
  s.served.id = s.options.model_id;
  s.served.tokenizer = tokenizer;
  s.served.defaults = defaults;
  s.served.max_seq_len = model.max_seq_len();
  s.served.vocab_size = model.config().vocab_size;
  SchedulerOptions so;
  so.prompt_tokens_per_step = s.options.prompt_tokens_per_step;
  so.max_running = s.options.parallel;
  s.scheduler = std::make_unique<Scheduler>(model, tokenizer, so);
  s.metrics.engine(s.scheduler->stats(), model.kv_pool());
  s.engine = std::thread([this] { impl_->run_engine(); });
  s.ready = true;
}

void Server::stop() {
  Impl& s = *impl_;
  s.http.stop();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.stopping = true;
  }
  s.cv.notify_all();
  if (s.engine.joinable()) s.engine.join();
  if (s.listener.joinable()) s.listener.join();
}

void Server::wait() {
  if (impl_->listener.joinable()) impl_->listener.join();
}

}  // namespace bringup::server
