// Whole-file reads and crash-safe writes, used by every soma writer (weights, checkpoints,
// metrics). A reader of `path` sees either the old file or the complete new one, never a
// half-written mix, even when the process dies mid-write.
//   soma::io::atomic_write("model.safetensors", bytes);
//   std::string bytes = soma::io::read_file("model.safetensors");
#pragma once

#include <string>
#include <string_view>

namespace soma::io {

/// Writes `bytes` to `path` atomically: a temporary file in the same directory
/// ("<path>.tmp.<pid>.<n>") is fully written, flushed and fsync'ed, then renamed over `path`
/// (and the directory fsync'ed, best effort). On any failure the temporary file is removed and
/// soma::Error names the path and strerror(errno); `path` is then untouched.
void atomic_write(const std::string& path, std::string_view bytes);

/// Removes the temporary files that atomic_write left in `dir` when its process was killed
/// mid-write ("<name>.tmp.<pid>.<n>" whose pid no longer runs); returns how many. Files of a
/// live process, and every other file, are left alone. `soma train` calls it on its output
/// directory before it writes anything. A missing `dir` has nothing to remove (0); a `dir` that
/// is not a directory or cannot be listed is a soma::Error naming it.
int remove_stale_temporaries(const std::string& dir);

/// Reads a whole file. Errors name the path: missing, a directory, unreadable, larger than
/// memory.
std::string read_file(const std::string& path);

}  // namespace soma::io
