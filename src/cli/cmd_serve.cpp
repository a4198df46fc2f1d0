// bringup serve: the OpenAI-compatible HTTP server (server/server.h) over a checkpoint. It listens
// at once (503 while loading), loads the model, prints one line when ready, and serves until
// SIGINT or SIGTERM.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/generation.h"
#include "server/server.h"

namespace bringup::cli {

namespace {

struct ServeArgs {
  ModelArgs model;
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 32;
  int max_waiting = 256;
  int64_t prompt_budget = 256;
  std::string api_key;
  std::string model_id;
};

std::string model_name(const std::string& dir) {
  std::filesystem::path p(dir);
  if (!p.has_filename()) p = p.parent_path();
  return p.filename().string();
}

int run_serve(const ServeArgs& a) {
  check_model_dir(a.model.model);
  if (a.parallel < 1) throw Error("--parallel must be at least 1");
  if (a.max_waiting < 1) throw Error("--max-waiting must be at least 1");
  if (a.prompt_budget < 1) throw Error("--prompt-budget must be at least 1");
  // Signals wait for the main thread alone: every thread started from here inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::ServerOptions o;
  o.host = a.host;
  o.port = a.port;
  o.api_key = a.api_key;
  o.model_id = a.model_id.empty() ? model_name(a.model.model) : a.model_id;
  o.parallel = a.parallel;
  o.max_waiting = a.max_waiting;
  o.prompt_tokens_per_step = a.prompt_budget;
  server::Server srv(o);
  const int port = srv.bind();
  srv.start();
  std::fprintf(stderr, "bringup serve: loading %s (http://%s:%d answers 503 until ready)\n",
               a.model.model.c_str(), a.host.c_str(), port);

  LoadedModel m = load_model(a.model, a.parallel);
  std::optional<Tokenizer> tokenizer;
  tokenizer = Tokenizer::load_if_present(a.model.model);
  const Tokenizer* tok = tokenizer ? &*tokenizer : nullptr;
  srv.attach(*m.model, tok, default_generation_settings(m.checkpoint.generation_config(), tok));
  const KvPoolStats pool = m.model->kv_pool();
  std::printf("bringup serve: ready on http://%s:%d (model '%s', %s, %s, kv pool %lld tokens)\n",
              a.host.c_str(), port, o.model_id.c_str(), device_name(*m.device).c_str(),
              std::string(precision_name(m.model->precision())).c_str(),
              static_cast<long long>(pool.budget_tokens));
  std::fflush(stdout);

  int signal = 0;
  sigwait(&signals, &signal);
  std::fprintf(stderr, "bringup serve: stopping (signal %d)\n", signal);
  srv.stop();
  return 0;
}

}  // namespace

std::function<int()> add_serve(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* sub =
      app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching");
  add_model_args(sub, args->model, false);
  sub->add_option("--host", args->host, "address to listen on (loopback by default)")
      ->capture_default_str();
  sub->add_option("--port", args->port, "port (0: any free one, printed)")->capture_default_str();
  sub->add_option("--parallel", args->parallel, "requests generating at once")
      ->capture_default_str();
  sub->add_option("--max-waiting", args->max_waiting, "queued requests before answering 429")
      ->capture_default_str();
  sub->add_option("--prompt-budget", args->prompt_budget,
                  "prompt tokens one step takes beside the running decodes")
      ->capture_default_str();
  sub->add_option("--api-key", args->api_key, "require 'Authorization: Bearer KEY'");
  sub->add_option("--model-id", args->model_id, "the model's id in the API (default: its folder)");
  return [args] { return run_serve(*args); };
}

}  // namespace bringup::cli
