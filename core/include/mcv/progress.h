#pragma once
/// \file
/// Progress of long work: a redrawn bar with rate and ETA on a terminal, plain periodic lines
/// otherwise (logs, CI), nothing when disabled.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace mcv {

class Progress {
 public:
  /// `total` <= 0 means unknown. `out` defaults to stderr; `interactive` is auto-detected.
  Progress(std::string label, std::int64_t total, std::FILE* out = stderr);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::int64_t n = 1);
  /// Prints the final line (also called by the destructor).
  void finish();
  void set_enabled(bool enabled) { enabled_ = enabled; }
  void set_interactive(bool interactive) { interactive_ = interactive; }

  /// The text of the current status, e.g. "eval  512/1000  51.2%  320.0 it/s  ETA 0:02".
  std::string status_line() const;

 private:
  void draw(bool final_line);

  std::string label_;
  std::int64_t total_, done_ = 0;
  std::FILE* out_;
  bool interactive_, enabled_ = true, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace mcv
