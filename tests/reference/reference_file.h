// Reading the golden reference files written by tests/reference/make_reference.py
// (ops_reference.txt for tests/ops/golden_test.cpp, nn_reference.txt for
// tests/nn/nn_golden_test.cpp, promotion_reference.txt for tests/ops/promotion_test.cpp), and
// comparing soma tensors with them.
//
// A file is a list of cases; each case is a header line, tensor lines and "end":
//   case <name> <op> <dtype>
//   <role> <k-or-key> <dtype> <ndim> <dims...> <values...>
//   end
// Roles: in, out, gout, grad (k is an index) and param, pgrad (k is a state-dict key such as
// "0.weight"); key lines ("key <key> <dtype> <ndim> <dims...>") carry a shape and no values.
// promotion_reference.txt adds "scalar <k> <int64|float64|bool> 0 <value>" (input k is a
// number, not a tensor), "error <message>" (torch raised; the case has no out) and
// "backward_error <message>" (torch's backward raised), and outside the cases "promote <a>
// <b> <result>" (torch.promote_types, by torch's names).
// Each test says which roles its file may use (ParseRules). Header-only: tests/**/*_test.cpp
// are the only sources compiled into soma_tests.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace golden {

struct RefTensor {
  std::string key;  // the token after the role: an index ("0") or a state-dict key ("0.weight")
  int index = -1;   // the key as a number when it is one
  soma::DType dtype = soma::kFloat32;
  soma::Shape shape;
  std::vector<double> values;  // exact for float32/float64; int64 and bool as whole numbers
  bool is_scalar = false;      // a "scalar" line: a number of kind dtype, not a tensor
};

struct Case {
  std::string name;
  std::string op;
  soma::DType dtype = soma::kFloat32;
  std::vector<RefTensor> inputs;  // "in", in index order
  std::vector<RefTensor> outs;    // "out", in index order
  RefTensor gout;                 // "gout" (gradient of outs[0]) when has_gout
  bool has_gout = false;
  std::vector<RefTensor> gouts;        // every "gout k" line (k: the output it belongs to)
  std::vector<RefTensor> grads;        // "grad": gradients of inputs
  std::vector<RefTensor> params;       // "param": module parameters by key
  std::vector<RefTensor> param_grads;  // "pgrad": gradients of module parameters by key
  std::vector<RefTensor> keys;         // "key": state-dict entries (shape and dtype only)
  std::string error;                   // "error": torch raised this instead of returning
  std::string backward_error;          // "backward_error": torch's backward raised this
  int line = 0;                        // line of the "case" header, for messages

  std::string label() const { return name + " (op " + op + ", " + dtype_str() + ")"; }
  std::string dtype_str() const { return std::string(soma::dtype_name(dtype)); }
};

struct RefFile {
  std::string path;
  std::string error;  // non-empty when the file could not be read or parsed
  std::vector<Case> cases;
  // "promote <a> <b> <result>" lines (outside cases; promotion_reference.txt): torch's dtype
  // names, the result possibly one soma lacks (int16)
  std::vector<std::vector<std::string>> promotions;
};

// A case's "param <step>/<key>" lines (parameter and buffer snapshots of a training run),
// by step, then by state-dict key. A key without "<step>/" is put under step -1, which the
// callers reject.
inline std::map<int, std::map<std::string, const RefTensor*>> param_snapshots(const Case& c) {
  std::map<int, std::map<std::string, const RefTensor*>> snapshots;
  for (const RefTensor& p : c.params) {
    const size_t slash = p.key.find('/');
    if (slash == std::string::npos || slash == 0 ||
        p.key.find_first_not_of("0123456789") != slash) {
      snapshots[-1][p.key] = &p;
      continue;
    }
    snapshots[std::stoi(p.key.substr(0, slash))][p.key.substr(slash + 1)] = &p;
  }
  return snapshots;
}

// What a file may contain.
struct ParseRules {
  std::set<std::string> roles;  // allowed tensor roles besides "case" and "end"
  bool require_gout = true;     // every case with an output has a gout of out 0's size
  bool multi_gout = false;      // "gout k" lines for outputs other than 0 are allowed
};

// `default_name` under tests/reference/, unless the environment variable `env_var` names
// another file (e.g. a scratch copy with a perturbed value, to see the test fail).
inline std::string reference_path(const char* env_var, const std::string& default_name) {
  if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') return env;
  return std::string(SOMA_TEST_DATA_DIR) + "/reference/" + default_name;
}

// Calls `parse(kind, rest)` for each line of `path` that is neither empty nor a comment, with the
// line's first word and a stream over the rest; `parse` returns false for a line it cannot read.
// Returns "" or the error: the file cannot be opened, or "path:line: cannot parse '...'".
template <typename Parse>
std::string for_each_line(const std::string& path, Parse parse) {
  std::ifstream in(path);
  if (!in) return "cannot open " + path;
  std::string line;
  int no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    std::string kind;
    if (!(s >> kind) || !parse(kind, s))
      return path + ":" + std::to_string(no) + ": cannot parse '" + line + "'";
  }
  return "";
}

inline bool parse_dtype(const std::string& s, soma::DType* dtype) {
  if (s == "float32")
    *dtype = soma::kFloat32;
  else if (s == "float64")
    *dtype = soma::kFloat64;
  else if (s == "int64")
    *dtype = soma::kInt64;
  else if (s == "bool")
    *dtype = soma::kBool;
  else if (s == "uint8")
    *dtype = soma::kUInt8;
  else if (s == "int8")
    *dtype = soma::kInt8;
  else if (s == "int32")
    *dtype = soma::kInt32;
  else if (s == "bfloat16")
    *dtype = soma::kBFloat16;
  else if (s == "float16")
    *dtype = soma::kFloat16;
  else
    return false;
  return true;
}

// Reads "<k> <dtype> <ndim> <dims...> <values...>" (the part after the role word); with
// `with_values` false there must be no values.
inline bool parse_tensor(std::istringstream& in, bool with_values, RefTensor* t,
                         std::string* error) {
  std::string dtype;
  int64_t ndim = -1;
  if (!(in >> t->key >> dtype >> ndim) || ndim < 0 || !parse_dtype(dtype, &t->dtype)) {
    *error = "bad tensor header";
    return false;
  }
  if (!t->key.empty() && std::all_of(t->key.begin(), t->key.end(), ::isdigit))
    t->index = std::atoi(t->key.c_str());
  int64_t numel = 1;
  for (int64_t d = 0; d < ndim; ++d) {
    int64_t size = -1;
    if (!(in >> size) || size < 0) {
      *error = "bad dimension";
      return false;
    }
    t->shape.push_back(size);
    numel *= size;
  }
  std::string token;
  while (in >> token) {
    char* end = nullptr;
    const double v = std::strtod(token.c_str(), &end);  // decimal, hex, inf and nan
    if (end == token.c_str() || *end != '\0') {
      *error = "bad value '" + token + "'";
      return false;
    }
    t->values.push_back(v);
  }
  const int64_t expected = with_values ? numel : 0;
  if (static_cast<int64_t>(t->values.size()) != expected) {
    *error = std::to_string(t->values.size()) + " values for shape " + soma::shape_str(t->shape);
    return false;
  }
  return true;
}

inline RefFile parse_reference(const std::string& path, const ParseRules& rules) {
  RefFile file;
  file.path = path;
  std::ifstream in(path);
  if (!in) {
    file.error = "cannot open " + path;
    return file;
  }
  std::string line;
  int line_no = 0;
  Case current;
  bool in_case = false;
  auto fail = [&](const std::string& msg) {
    file.error = path + ":" + std::to_string(line_no) + ": " + msg;
    file.cases.clear();
    return file;
  };
  auto indexed = [](const RefTensor& t) { return t.index >= 0; };
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream ls(line);
    std::string role;
    if (!(ls >> role) || role[0] == '#') continue;
    if (role == "case") {
      if (in_case) return fail("'case' before 'end'");
      current = Case{};
      std::string dtype;
      if (!(ls >> current.name >> current.op >> dtype) || !parse_dtype(dtype, &current.dtype))
        return fail("bad case header");
      current.line = line_no;
      in_case = true;
    } else if (role == "end") {
      if (!in_case) return fail("'end' outside a case");
      if (current.outs.empty() && current.keys.empty() && current.error.empty())
        return fail("case has no out");
      if (!current.outs.empty() && rules.require_gout && !current.has_gout)
        return fail("case has no (or a mis-sized) gout");
      if (current.has_gout && current.gout.values.size() != current.outs[0].values.size())
        return fail("case has no (or a mis-sized) gout");
      file.cases.push_back(current);
      in_case = false;
    } else if (role == "promote" && rules.roles.count(role)) {
      if (in_case) return fail("promote inside a case");
      std::vector<std::string> p(3);
      if (!(ls >> p[0] >> p[1] >> p[2])) return fail("bad promote line");
      file.promotions.push_back(p);
    } else if ((role == "error" || role == "backward_error") && rules.roles.count(role)) {
      if (!in_case) return fail(role + " outside a case");
      std::string message;
      std::getline(ls >> std::ws, message);
      if (message.empty()) return fail(role + " without a message");
      (role == "error" ? current.error : current.backward_error) = message;
    } else if (rules.roles.count(role)) {
      if (!in_case) return fail("tensor outside a case");
      RefTensor t;
      std::string error;
      if (!parse_tensor(ls, role != "key", &t, &error)) return fail(role + ": " + error);
      if (role == "in" || role == "scalar") {
        if (t.index != static_cast<int>(current.inputs.size())) return fail("inputs out of order");
        if (role == "scalar" && !t.shape.empty()) return fail("a scalar with dimensions");
        t.is_scalar = role == "scalar";
        current.inputs.push_back(t);
      } else if (role == "out") {
        if (t.index != static_cast<int>(current.outs.size())) return fail("outputs out of order");
        current.outs.push_back(t);
      } else if (role == "gout") {
        if (t.index < 0 || (t.index != 0 && !rules.multi_gout))
          return fail("gout of an output other than 0");
        if (t.index == 0) {
          current.gout = t;
          current.has_gout = true;
        }
        current.gouts.push_back(t);
      } else if (role == "grad") {
        if (!indexed(t)) return fail("grad of a non-numeric input '" + t.key + "'");
        current.grads.push_back(t);
      } else if (role == "param") {
        current.params.push_back(t);
      } else if (role == "pgrad") {
        current.param_grads.push_back(t);
      } else if (role == "key") {
        current.keys.push_back(t);
      } else {
        return fail("unknown line type '" + role + "'");
      }
    } else {
      return fail("unknown line type '" + role + "'");
    }
  }
  if (in_case) return fail("file ends inside a case");
  return file;
}

// The first problem with a loaded file (a parse error, no cases, a duplicate case), or "".
inline std::string file_problem(const RefFile& file) {
  if (!file.error.empty()) return file.error;
  if (file.cases.empty()) return "no cases in " + file.path;
  std::set<std::string> seen;
  for (const Case& c : file.cases)
    if (!seen.insert(c.name + "_" + c.dtype_str()).second) return "duplicate " + c.label();
  return "";
}

inline soma::Tensor make_tensor(const RefTensor& r) {
  switch (r.dtype) {
    case soma::kFloat32:
      return soma::tensor(std::vector<float>(r.values.begin(), r.values.end()), r.shape);
    case soma::kFloat64:
      return soma::tensor(r.values, r.shape);
    case soma::kInt64:
      return soma::tensor(std::vector<int64_t>(r.values.begin(), r.values.end()), r.shape);
    case soma::kBool:
      return soma::tensor(std::vector<int64_t>(r.values.begin(), r.values.end()), r.shape)
          .to(soma::kBool);
    case soma::kUInt8:
    case soma::kInt8:
    case soma::kInt32:
      return soma::tensor(std::vector<int64_t>(r.values.begin(), r.values.end()), r.shape)
          .to(r.dtype);
    case soma::kBFloat16:
    case soma::kFloat16:  // the file's values are exactly representable: the cast is exact
      return soma::tensor(r.values, r.shape).to(r.dtype);
  }
  return soma::Tensor();
}

inline std::string index_str(const soma::Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return soma::shape_str(idx);
}

// |actual - expected| <= atol + rtol * |expected|.
struct Tolerance {
  double rtol;
  double atol;
};

// Compares `actual` with the reference `expected`; returns a failure message or "". The
// message names the case, `what`, the shape, the max error and the first bad index.
inline std::string compare(const Case& c, const std::string& what, const soma::Tensor& actual,
                           const RefTensor& expected, Tolerance tol) {
  std::ostringstream msg;
  msg.precision(17);
  msg << c.label() << ", " << what << ": ";
  if (!actual.defined()) return msg.str() + "undefined tensor";
  if (actual.dtype() != expected.dtype) {
    msg << "dtype " << actual.dtype() << ", expected " << soma::dtype_name(expected.dtype);
    return msg.str();
  }
  if (actual.shape() != expected.shape) {
    msg << "shape " << soma::shape_str(actual.shape()) << ", expected "
        << soma::shape_str(expected.shape);
    return msg.str();
  }
  const std::vector<double> got = actual.to_vector<double>();
  double max_err = 0.0;
  int64_t first_bad = -1;
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = expected.values[i];
    const double err = std::abs(got[i] - e);
    const bool same_inf = std::isinf(e) && got[i] == e;
    const bool ok = same_inf || err <= tol.atol + tol.rtol * std::abs(e);  // false for nan
    if (!same_inf) max_err = std::isnan(err) ? err : std::max(max_err, err);
    if (!ok) {
      if (first_bad < 0) first_bad = static_cast<int64_t>(i);
      ++bad;
    }
  }
  if (first_bad < 0) return "";
  msg << bad << " of " << got.size() << " elements beyond rtol " << tol.rtol << " atol " << tol.atol
      << ", shape " << soma::shape_str(expected.shape) << ", max abs error " << max_err
      << "; first bad index " << index_str(expected.shape, first_bad) << ": got " << got[first_bad]
      << ", torch " << expected.values[first_bad];
  return msg.str();
}

}  // namespace golden
