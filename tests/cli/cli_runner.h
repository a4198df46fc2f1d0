// Runs the bringup binary and captures what it printed and how it exited.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace bringup::test {

struct CliResult {
  bool exited = false;  // false: killed by a signal (a crash)
  int code = -1;
  std::string out, err;
  std::vector<std::string> err_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(err);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// args are passed to the binary as separate, quoted arguments; stdin is empty unless given.
inline CliResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(std::rand());
  const auto out = dir / ("cli-out-" + tag), err = dir / ("cli-err-" + tag),
             in = dir / ("cli-in-" + tag);
  {
    std::ofstream f(in);
    f << stdin_text;
  }
  std::string cmd = shell_quote(BRINGUP_CLI);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " <" + shell_quote(in.string()) + " >" + shell_quote(out.string()) + " 2>" +
         shell_quote(err.string());
  const int status = std::system(cmd.c_str());
  CliResult r;
  // The shell reports a child killed by signal N as exit status 128 + N.
  r.exited = WIFEXITED(status) && WEXITSTATUS(status) < 128;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  std::filesystem::remove(in);
  return r;
}

}  // namespace bringup::test
