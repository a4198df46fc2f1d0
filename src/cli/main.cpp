// bringup: bring up Qwen2-family checkpoints on a device and prove them against Hugging Face.
#include <cstdio>
#include <exception>
#include <map>
#include <new>
#include <string>
#include <utility>

#include "bringup/error.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"bringup: run Hugging Face Qwen2 checkpoints on the CPU device and score them"};
  app.require_subcommand(1);
  std::map<CLI::App*, std::function<int()>> runners;
  auto add = [&](std::function<int()> (*fn)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    auto run = fn(app);
    runners[app.get_subcommands({})[before]] = std::move(run);
  };
  add(bringup::cli::add_generate);
  add(bringup::cli::add_chat);
  add(bringup::cli::add_eval);
  add(bringup::cli::add_tokenize);
  add(bringup::cli::add_detokenize);
  add(bringup::cli::add_bench);
  add(bringup::cli::add_plan);
  add(bringup::cli::add_synth);
  add(bringup::cli::add_convert);
  add(bringup::cli::add_reference);
  add(bringup::cli::add_compare);
  add(bringup::cli::add_serve);
  add(bringup::cli::add_bench_serve);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, run] : runners) {
      if (sub->parsed()) return run();
    }
  } catch (const bringup::Error& e) {
    // The library names its own settings; the command line says which flag sets them.
    static const std::pair<const char*, const char*> kHints[] = {
        {"exceeds max_seq_len", " (raise --max-seq-len)"},
        {"kv cache is full", " (raise --kv-budget)"},
        {"than the whole kv budget", " (raise --kv-budget)"},
        {"lower max_seq_len", " (--max-seq-len, --precision)"}};
    std::string message = e.what();
    for (const auto& [text, hint] : kHints) {
      if (message.find(text) != std::string::npos) {
        message += hint;
        break;
      }
    }
    std::fprintf(stderr, "error: %s\n", message.c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 1;
}
