// The bringup subcommands; each registers itself on the app and runs when chosen.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace bringup::cli {

// Adds the subcommand to app and returns what runs it (its exit code).
std::function<int()> add_generate(CLI::App& app);
std::function<int()> add_eval(CLI::App& app);
std::function<int()> add_chat(CLI::App& app);
std::function<int()> add_tokenize(CLI::App& app);
std::function<int()> add_detokenize(CLI::App& app);
std::function<int()> add_bench(CLI::App& app);
std::function<int()> add_plan(CLI::App& app);
std::function<int()> add_synth(CLI::App& app);
std::function<int()> add_convert(CLI::App& app);
std::function<int()> add_reference(CLI::App& app);
std::function<int()> add_compare(CLI::App& app);
std::function<int()> add_serve(CLI::App& app);
std::function<int()> add_bench_serve(CLI::App& app);

}  // namespace bringup::cli
