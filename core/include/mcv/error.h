#pragma once
/// \file
/// The one exception type of the library. Messages read `<subject>: <problem>`, where the
/// subject is the file, tensor or argument at fault, so the CLI can print them as they are.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mcv {

/// Error raised for any failure the caller can act on: bad input, unsupported configuration,
/// device failure. Never used for control flow.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  /// `subject: problem`.
  Error(const std::string& subject, const std::string& problem)
      : std::runtime_error(subject.empty() ? problem : subject + ": " + problem) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}
}  // namespace detail

}  // namespace mcv

/// Throws mcv::Error with the streamed message when `cond` is false.
#define MCV_CHECK(cond, ...)                                      \
  do {                                                            \
    if (!(cond)) throw ::mcv::Error(::mcv::detail::concat(__VA_ARGS__)); \
  } while (0)
