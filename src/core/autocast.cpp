// soma::autocast (include/soma/core/autocast.h): a thread-local flag the products read.
#include "soma/core/autocast.h"

#include "soma/core/error.h"

namespace soma {

namespace {
thread_local bool g_autocast = false;
}  // namespace

autocast::autocast(DType dtype, bool enabled) : prev_enabled_(g_autocast) {
  SOMA_CHECK(dtype == kBFloat16, "autocast: the CPU supports bfloat16 only, got ", dtype);
  g_autocast = enabled;
}

autocast::~autocast() {
  g_autocast = prev_enabled_;
}

bool is_autocast_enabled() {
  return g_autocast;
}

bool set_autocast_enabled(bool enabled) {
  const bool prev = g_autocast;
  g_autocast = enabled;
  return prev;
}

namespace detail {

AutocastScope::AutocastScope(bool on) : prev_(g_autocast) {
  g_autocast = on;
}
AutocastScope::~AutocastScope() {
  g_autocast = prev_;
}

}  // namespace detail

}  // namespace soma
