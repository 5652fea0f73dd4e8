#include "mcv/progress.h"

#include <unistd.h>

#include <cinttypes>

namespace mcv {

namespace {
std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  const auto s = static_cast<std::int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%" PRId64 ":%02d:%02d", s / 3600, int(s / 60 % 60), int(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%d:%02d", int(s / 60), int(s % 60));
  return buf;
}
}  // namespace

Progress::Progress(std::string label, std::int64_t total, std::FILE* out)
    : label_(std::move(label)), total_(total), out_(out) {
  interactive_ = out_ && isatty(fileno(out_));
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

std::string Progress::status_line() const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  char buf[256];
  if (total_ > 0) {
    const double pct = 100.0 * static_cast<double>(done_) / static_cast<double>(total_);
    const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : -1;
    std::snprintf(buf, sizeof buf, "%s  %" PRId64 "/%" PRId64 "  %5.1f%%  %.1f it/s  ETA %s",
                  label_.c_str(), done_, total_, pct, rate, format_duration(eta).c_str());
  } else {
    std::snprintf(buf, sizeof buf, "%s  %" PRId64 "  %.1f it/s  elapsed %s", label_.c_str(), done_,
                  rate, format_duration(elapsed).c_str());
  }
  return buf;
}

void Progress::advance(std::int64_t n) {
  done_ += n;
  const auto now = std::chrono::steady_clock::now();
  // A terminal redraws at 10 Hz; logs get a line every 10 s so they stay readable.
  const auto period = interactive_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(10000);
  if (now - last_draw_ >= period) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::draw(bool final_line) {
  if (!enabled_ || !out_) return;
  std::string line = status_line();
  if (interactive_ && total_ > 0) {
    const int width = 24;
    const int filled = static_cast<int>(width * std::min<double>(1.0, double(done_) / double(total_)));
    line = line.substr(0, label_.size()) + " [" + std::string(filled, '#') +
           std::string(width - filled, '.') + "]" + line.substr(label_.size());
  }
  if (interactive_)
    std::fprintf(out_, "\r%s\033[K%s", line.c_str(), final_line ? "\n" : "");
  else
    std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

}  // namespace mcv
