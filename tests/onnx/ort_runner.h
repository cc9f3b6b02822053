// ONNX Runtime from the tests (onnxruntime-node, installed by scripts/bootstrap.sh --test into
// build/ort, or $SOMA_ORT_DIR; tests/onnx/ort_run.js runs a model), and the ONNX checker
// (Debian python3-onnx, tests/onnx/check_model.py). Shared by export_test.cpp and
// import_ops_test.cpp.
#pragma once

#include <gtest/gtest.h>
#include <soma/soma.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace soma_test {

inline std::filesystem::path ort_dir() {
  if (const char* env = std::getenv("SOMA_ORT_DIR")) return env;
  return std::filesystem::canonical("/proc/self/exe").parent_path() / "ort";  // build dir's
}

// Empty when ONNX Runtime can run, else why not.
inline std::string ort_missing() {
  if (std::system("command -v node > /dev/null 2>&1") != 0) return "node is not installed";
  if (!std::filesystem::exists(ort_dir() / "node_modules" / "onnxruntime-node"))
    return "ONNX Runtime is not installed in " + ort_dir().string() +
           " (scripts/bootstrap.sh --test)";
  return "";
}

#define REQUIRE_ORT()                                                      \
  do {                                                                     \
    const std::string why = soma_test::ort_missing();                      \
    if (!why.empty()) GTEST_SKIP() << "ONNX Runtime unavailable: " << why; \
  } while (0)

// Runs `cmd` in a shell; its stdout and stderr together.
inline std::string run_command(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    *status = -1;
    return "popen failed";
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

// The model's first output in ONNX Runtime for input x (float32); `dir` holds the scratch files.
// Undefined, with a test failure added, when ONNX Runtime fails.
inline soma::Tensor run_ort(const std::filesystem::path& dir, const std::string& model,
                            const soma::Tensor& x) {
  const std::string in = (dir / "in.f32").string(), out = (dir / "out.f32").string();
  const std::vector<float> v = x.contiguous().to_vector<float>();
  std::ofstream(in, std::ios::binary)
      .write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  std::string dims;
  for (int64_t d : x.shape()) {
    if (!dims.empty()) dims += ',';
    dims += std::to_string(d);
  }
  int status = 0;
  const std::string printed = run_command(
      "NODE_PATH=" + (ort_dir() / "node_modules").string() + " node " + SOMA_TEST_DATA_DIR +
          "/onnx/ort_run.js run " + model + " " + in + " " + dims + " " + out,
      &status);
  if (status != 0) {
    ADD_FAILURE() << "ONNX Runtime failed on " << model << ": " << printed;
    return {};
  }
  soma::Shape shape;
  std::stringstream ss(printed);
  for (std::string d; std::getline(ss, d, ',');) shape.push_back(std::stoll(d));
  const std::string bytes = soma::io::read_file(out);
  std::vector<float> values(bytes.size() / 4);
  std::memcpy(values.data(), bytes.data(), values.size() * 4);
  return soma::tensor(values, shape);
}

// The ONNX checker (full_check: strict shape inference too); empty when the model passes.
inline std::string onnx_checker(const std::string& model) {
  int status = 0;
  const std::string out = run_command(
      "/usr/bin/python3 " + std::string(SOMA_TEST_DATA_DIR) + "/onnx/check_model.py " + model,
      &status);
  return status == 0 ? "" : "checker failed: " + out;
}

}  // namespace soma_test
