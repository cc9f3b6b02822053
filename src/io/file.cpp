// atomic_write and read_file on POSIX file descriptors.
#include "soma/io/file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <new>

#include "soma/core/error.h"

namespace soma::io {
namespace {

std::string errno_str(int err) {
  return std::strerror(err);
}

// Closes a descriptor on scope exit unless released.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void atomic_write(const std::string& path, std::string_view bytes) {
  SOMA_CHECK(!path.empty(), "atomic_write: empty path");
  static std::atomic<uint64_t> counter{0};
  const std::string tmp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  Fd file;
  file.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (file.fd < 0) {
    const int err = errno;
    detail::fail("atomic_write: cannot create \"", tmp, "\" to write \"", path,
                 "\": ", errno_str(err));
  }
  // From here on every failure removes the temporary file.
  auto fail = [&](const char* what, int err) {
    ::close(file.fd);
    file.fd = -1;
    ::unlink(tmp.c_str());
    detail::fail("atomic_write: cannot ", what, " \"", path, "\": ", errno_str(err));
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(file.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(file.fd) != 0) fail("sync", errno);
  const int fd = file.fd;
  file.fd = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    detail::fail("atomic_write: cannot close \"", path, "\": ", errno_str(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    detail::fail("atomic_write: cannot rename \"", tmp, "\" to \"", path, "\": ", errno_str(err));
  }
  // Make the rename itself durable (best effort: some file systems refuse fsync on a directory).
  Fd dir;
  dir.fd = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir.fd >= 0) ::fsync(dir.fd);
}

std::string read_file(const std::string& path) {
  Fd file;
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd < 0) {
    const int err = errno;
    detail::fail("read_file: cannot open \"", path, "\": ", errno_str(err));
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) {
    const int err = errno;
    detail::fail("read_file: cannot stat \"", path, "\": ", errno_str(err));
  }
  SOMA_CHECK(!S_ISDIR(st.st_mode), "read_file: \"", path, "\" is a directory");
  std::string out;
  // A file larger than memory (a sparse one, say) is an error, not std::bad_alloc; checked
  // before allocating (an allocation that size aborts under AddressSanitizer), and again by
  // catching the allocation's failure.
  struct sysinfo info {};
  if (S_ISREG(st.st_mode) && ::sysinfo(&info) == 0) {
    const auto memory = (static_cast<unsigned __int128>(info.totalram) + info.totalswap) *
                        std::max<unsigned>(info.mem_unit, 1);
    SOMA_CHECK(static_cast<unsigned __int128>(st.st_size) <= memory, "read_file: \"", path,
               "\" has ", st.st_size, " bytes, more than can be read into memory (",
               static_cast<uint64_t>(memory), " bytes of RAM and swap)");
  }
  try {
    if (S_ISREG(st.st_mode) && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  } catch (const std::exception&) {  // std::bad_alloc, std::length_error
    detail::fail("read_file: \"", path, "\" has ", st.st_size,
                 " bytes, more than can be read into memory");
  }
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(file.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      detail::fail("read_file: cannot read \"", path, "\": ", errno_str(err));
    }
    if (n == 0) break;
    try {
      out.append(buf, static_cast<size_t>(n));
    } catch (const std::exception&) {  // a device or pipe that never ends
      detail::fail("read_file: \"", path, "\": out of memory after ", out.size(), " bytes");
    }
  }
  return out;
}

int remove_stale_temporaries(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int removed = 0;
  fs::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return 0;  // nothing was ever written there
  auto check = [&](const char* what) {
    if (ec)
      detail::fail("remove_stale_temporaries: cannot ", what, " \"", dir, "\": ", ec.message());
  };
  check("list");
  for (fs::directory_iterator end; it != end; it.increment(ec), check("list")) {
    const std::string name = it->path().filename().string();
    // <name>.tmp.<pid>.<n>: ".tmp.", then a pid and a counter, both decimal.
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || at == 0) continue;
    const char* p = name.data() + at + 5;
    const char* stop = name.data() + name.size();
    auto digit = [stop](const char* q) { return q < stop && *q >= '0' && *q <= '9'; };
    int64_t pid = 0, n = 0;
    if (!digit(p)) continue;
    const auto r1 = std::from_chars(p, stop, pid);  // out of range: not ours, kept
    if (r1.ec != std::errc() || r1.ptr == stop || *r1.ptr != '.' || !digit(r1.ptr + 1)) continue;
    const auto r2 = std::from_chars(r1.ptr + 1, stop, n);
    if (r2.ec != std::errc() || r2.ptr != stop) continue;
    const bool alive =
        pid > 0 && pid <= INT32_MAX && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
    std::error_code ignored;
    if (alive || !it->is_regular_file(ignored)) continue;
    if (fs::remove(it->path(), ignored)) ++removed;
  }
  return removed;
}

}  // namespace soma::io
