// io::atomic_write and io::read_file: contents, replacement, no temporary files left behind,
// and clean failures that name the path.
#include "soma/io/file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "io/io_test_util.h"
#include "soma/soma.h"

namespace {

using iotest::error_of;
namespace io = soma::io;

TEST(AtomicWrite, WritesReplacesAndLeavesNoTemporaryFile) {
  iotest::TempDir dir;
  const std::string path = dir.file("out.bin");
  io::atomic_write(path, "first");
  EXPECT_EQ(io::read_file(path), "first");
  io::atomic_write(path, std::string("sec\0nd", 6));
  EXPECT_EQ(io::read_file(path), std::string("sec\0nd", 6));
  io::atomic_write(path, "");
  EXPECT_EQ(io::read_file(path), "");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out.bin"});
}

// What a run killed mid-write leaves: "<name>.tmp.<pid>.<n>" of a dead process is removed;
// the temporaries of a live process (this one) and every other name stay.
TEST(AtomicWrite, RemoveStaleTemporaries) {
  iotest::TempDir dir;
  const std::string live = std::to_string(::getpid());
  // Above Linux's largest pid_max (2^22), so no process has this pid.
  const std::string dead = "4194400";
  for (const std::string& name : std::vector<std::string>{
           "checkpoint.safetensors.tmp." + dead + ".3", "history.csv.tmp." + dead + ".0",
           "model.safetensors.tmp." + live + ".1", "notes.tmp.abc.1", "tmp.1.2", "keep.txt",
           "model.safetensors"})
    io::atomic_write(dir.file(name), "x");
  EXPECT_EQ(io::remove_stale_temporaries(dir.path()), 2);
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"keep.txt", "model.safetensors",
                                                  "model.safetensors.tmp." + live + ".1",
                                                  "notes.tmp.abc.1", "tmp.1.2"}));
  EXPECT_EQ(io::remove_stale_temporaries(dir.file("missing")), 0);  // no directory: nothing
}

TEST(AtomicWrite, LargeFile) {
  iotest::TempDir dir;
  std::string big(10 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 2654435761u >> 24);
  io::atomic_write(dir.file("big"), big);
  EXPECT_EQ(io::read_file(dir.file("big")), big);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"big"});
}

TEST(AtomicWrite, RelativePath) {
  // A bare file name (no directory part) goes to the current directory.
  iotest::TempDir dir;
  const std::filesystem::path old = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  EXPECT_NO_THROW(io::atomic_write("rel.txt", "x"));
  std::filesystem::current_path(old);
  EXPECT_EQ(io::read_file(dir.file("rel.txt")), "x");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"rel.txt"});
}

TEST(AtomicWrite, FailsCleanlyOnAMissingDirectory) {
  const std::string path = "/proc/nonexistent/x";
  const std::string e = error_of([&] { io::atomic_write(path, "data"); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("No such file or directory"), std::string::npos) << e;
}

TEST(AtomicWrite, FailsCleanlyWhenTheParentIsAFile) {
  iotest::TempDir dir;
  io::atomic_write(dir.file("file"), "I am a file");
  const std::string path = dir.file("file/x");
  const std::string e = error_of([&] { io::atomic_write(path, "data"); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("Not a directory"), std::string::npos) << e;
  EXPECT_EQ(dir.list(), std::vector<std::string>{"file"});
  EXPECT_EQ(io::read_file(dir.file("file")), "I am a file");
}

TEST(AtomicWrite, FailsCleanlyWhenThePathIsADirectoryAndRemovesTheTemporary) {
  iotest::TempDir dir;
  std::filesystem::create_directory(dir.file("sub"));
  const std::string path = dir.file("sub");
  const std::string e = error_of([&] { io::atomic_write(path, "data"); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("Is a directory"), std::string::npos) << e;
  EXPECT_EQ(dir.list(), std::vector<std::string>{"sub"}) << "the temporary file was removed";
}

TEST(AtomicWrite, ReadFileErrorsNameThePath) {
  iotest::TempDir dir;
  const std::string missing = dir.file("nope");
  std::string e = error_of([&] { io::read_file(missing); });
  EXPECT_NE(e.find("read_file: cannot open \"" + missing + "\": No such file or directory"),
            std::string::npos)
      << e;
  e = error_of([&] { io::read_file(dir.path()); });
  EXPECT_NE(e.find("read_file: \"" + dir.path() + "\" is a directory"), std::string::npos) << e;
}

// A sparse file of 1 TiB: read_file cannot hold it. Before, std::string::reserve threw
// std::bad_alloc out of read_file and load_safetensors; now it is a soma::Error naming the path.
TEST(ReadFile, LargerThanMemoryIsASomaError) {
  iotest::TempDir dir;
  const std::string path = dir.file("huge.bin");
  const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  const bool sparse = ::ftruncate(fd, off_t{1} << 40) == 0;
  ::close(fd);
  if (!sparse) GTEST_SKIP() << "this file system cannot hold a sparse 1 TiB file";
  std::string e = error_of([&] { io::read_file(path); });
  EXPECT_NE(e.find("read_file: \"" + path + "\" has 1099511627776 bytes, more than can be read"),
            std::string::npos)
      << e;
  e = error_of([&] { io::load_safetensors(path); });
  EXPECT_NE(e.find("read_file: \"" + path + "\""), std::string::npos) << e;
}

// /proc/self/mem opens but fails to read at offset 0 (EIO).
TEST(ReadFile, ReadErrorNamesThePathAndTheReason) {
  const std::string e = error_of([] { io::read_file("/proc/self/mem"); });
  EXPECT_NE(e.find("read_file: cannot read \"/proc/self/mem\": Input/output error"),
            std::string::npos)
      << e;
}

// Before, every failure to list `dir` returned 0 as if it were an empty directory.
TEST(AtomicWrite, RemoveStaleTemporariesOnANonDirectoryIsAnError) {
  iotest::TempDir dir;
  io::atomic_write(dir.file("file"), "x");
  for (const std::string& path :
       {dir.file("file"), dir.file("file/sub"), std::string("/proc/self/mem")}) {
    const std::string e = error_of([&] { io::remove_stale_temporaries(path); });
    EXPECT_NE(e.find("remove_stale_temporaries: cannot list \"" + path + "\": Not a directory"),
              std::string::npos)
        << e;
  }
  std::filesystem::create_directory_symlink("loop", dir.file("loop"));
  const std::string e = error_of([&] { io::remove_stale_temporaries(dir.file("loop")); });
  EXPECT_NE(e.find("cannot list \"" + dir.file("loop") + "\": Too many levels of symbolic links"),
            std::string::npos)
      << e;
  EXPECT_EQ(io::read_file(dir.file("file")), "x");
}

}  // namespace
