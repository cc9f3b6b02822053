// soma::Error and SOMA_CHECK: the one way soma reports bad input.
//
// Every check names the operation and every shape or value involved, e.g.
//   SOMA_CHECK(a.size(1) == b.size(0), "matmul: shapes ", a.shape(), " and ", b.shape(),
//              " cannot be multiplied");
// throws soma::Error("matmul: shapes [2, 3] and [4, 5] cannot be multiplied").
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace soma {

/// The exception soma throws for every user error (bad shapes, dtypes, values, files).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {

template <typename T>
void append(std::ostringstream& os, const T& v) {
  os << v;
}

/// Shapes and other int64 vectors print as [2, 3].
void append(std::ostringstream& os, const std::vector<int64_t>& v);

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (append(os, parts), ...);
  throw Error(os.str());
}

}  // namespace detail
}  // namespace soma

/// Throws soma::Error with the concatenation of `parts` when `cond` is false.
#define SOMA_CHECK(cond, ...)                       \
  do {                                              \
    if (!(cond)) ::soma::detail::fail(__VA_ARGS__); \
  } while (0)
