// toolkit: math. einsum, lowered to soma ops: a label repeated within one operand takes the
// diagonal (a product with an identity mask, summed), labels used by one operand only and not in
// the output are summed first, then the operands are contracted left to right, each pair as one
// batched matmul of [batch, left, contracted] @ [batch, contracted, right] (integers: a
// broadcast product and a sum). Transposes, reshapes, sums and matmul carry the gradients, of
// any order.
#include <algorithm>
#include <array>
#include <string>

#include "core/tensor_impl.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/matmul.h"
#include "soma/ops/reduce.h"
#include "soma/ops/shape.h"

namespace soma {

namespace {

constexpr int kLetters = 52;  // 'A'..'Z' then 'a'..'z'; ellipsis dims get labels from 52 up

int letter_label(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
  return -1;
}

std::string label_name(int l) {
  if (l < 26) return std::string(1, static_cast<char>('A' + l));
  if (l < kLetters) return std::string(1, static_cast<char>('a' + l - 26));
  return "...[" + std::to_string(l - kLetters) + "]";
}

// One term of the equation: its letters in order and where the ellipsis is (-1: none).
struct Term {
  std::vector<int> letters;
  int ellipsis_at = -1;  // position among letters before which the ellipsis stands
};

Term parse_term(const std::string& s, const std::string& eq) {
  Term t;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      SOMA_CHECK(s.compare(i, 3, "...") == 0, "einsum(): found '.' in equation '", eq,
                 "' that is not part of any ellipsis ('...')");
      SOMA_CHECK(t.ellipsis_at < 0, "einsum(): found more than one ellipsis ('...') in term '", s,
                 "' of equation '", eq, "'");
      t.ellipsis_at = static_cast<int>(t.letters.size());
      i += 2;
      continue;
    }
    const int l = letter_label(s[i]);
    SOMA_CHECK(l >= 0, "einsum(): invalid subscript '", std::string(1, s[i]), "' in equation '", eq,
               "' (subscripts must be letters in [a-zA-Z])");
    t.letters.push_back(l);
  }
  return t;
}

// Moves dims so that dim perm[i] of x becomes dim i (a chain of transposes, all views).
Tensor permute_dims(Tensor x, std::vector<int64_t> perm) {
  // cur[i]: which original dim sits at position i
  std::vector<int64_t> cur(perm.size());
  for (size_t i = 0; i < cur.size(); ++i) cur[i] = static_cast<int64_t>(i);
  for (size_t i = 0; i < perm.size(); ++i) {
    const auto j = static_cast<size_t>(std::find(cur.begin(), cur.end(), perm[i]) - cur.begin());
    if (j != i) {
      x = transpose(x, static_cast<int64_t>(i), static_cast<int64_t>(j));
      std::swap(cur[i], cur[j]);
    }
  }
  return x;
}

// An operand with one label per dimension.
struct Labeled {
  Tensor t;
  std::vector<int> labels;
};

// Sums x over the dims whose labels `drop` returns true for.
template <typename Pred>
Labeled sum_labels(Labeled x, Pred drop) {
  for (int64_t d = static_cast<int64_t>(x.labels.size()) - 1; d >= 0; --d) {
    if (!drop(x.labels[static_cast<size_t>(d)])) continue;
    x.t = sum(x.t, d);
    x.labels.erase(x.labels.begin() + d);
  }
  return x;
}

// The diagonal over dims d1 < d2 (same size): sum over d2 of x times an identity mask.
Tensor diagonal_of(const Tensor& x, int64_t d1, int64_t d2) {
  const int64_t n = x.size(d1);
  const Tensor r = arange(n);
  Shape s1(static_cast<size_t>(x.dim()), 1), s2(static_cast<size_t>(x.dim()), 1);
  s1[static_cast<size_t>(d1)] = n;
  s2[static_cast<size_t>(d2)] = n;
  // where(), not x * mask: an inf or nan off the diagonal must not leak in as 0 * inf.
  const Tensor mask = eq(reshape(r, s1), reshape(r, s2));
  return sum(where(mask, x, zeros({}, x.dtype())), d2);
}

// a and b contracted over the labels `contract` (in both, summed away); the other shared labels
// are batch labels; the rest stay on their side.
Labeled contract_pair(Labeled a, Labeled b, const std::vector<bool>& summed) {
  auto has = [](const Labeled& x, int l) {
    return std::find(x.labels.begin(), x.labels.end(), l) != x.labels.end();
  };
  auto dim_of = [](const Labeled& x, int l) {
    return static_cast<int64_t>(std::find(x.labels.begin(), x.labels.end(), l) - x.labels.begin());
  };
  std::vector<int> batch, left, right, contr;
  for (int l : a.labels) {
    if (has(b, l))
      (summed[static_cast<size_t>(l)] ? contr : batch).push_back(l);
    else
      left.push_back(l);
  }
  for (int l : b.labels)
    if (!has(a, l)) right.push_back(l);
  // shared labels broadcast (a size 1 stretches)
  Shape ea = a.t.shape(), eb = b.t.shape();
  for (int l : a.labels) {
    if (!has(b, l)) continue;
    const int64_t da = dim_of(a, l), db = dim_of(b, l);
    const int64_t sa = ea[static_cast<size_t>(da)], sb = eb[static_cast<size_t>(db)];
    SOMA_CHECK(sa == sb || sa == 1 || sb == 1, "einsum(): operands do not broadcast: subscript ",
               label_name(l), " has sizes ", sa, " and ", sb);
    ea[static_cast<size_t>(da)] = eb[static_cast<size_t>(db)] = std::max(sa, sb);
  }
  if (ea != a.t.shape()) a.t = expand(a.t, ea);
  if (eb != b.t.shape()) b.t = expand(b.t, eb);

  auto sizes = [](const Labeled& x, const std::vector<int>& ls, auto&& dim_of_fn) {
    Shape s;
    int64_t total = 1;
    for (int l : ls) {
      s.push_back(x.t.size(dim_of_fn(x, l)));
      total *= s.back();
    }
    return std::pair{s, total};
  };
  const auto [bs, nb] = sizes(a, batch, dim_of);
  const auto [ls, nl] = sizes(a, left, dim_of);
  const auto [cs, nc] = sizes(a, contr, dim_of);
  const auto [rs, nr] = sizes(b, right, dim_of);
  std::vector<int64_t> pa, pb;
  for (const auto* group : {&batch, &left, &contr})
    for (int l : *group) pa.push_back(dim_of(a, l));
  for (const auto* group : {&batch, &contr, &right})
    for (int l : *group) pb.push_back(dim_of(b, l));
  const Tensor a3 = reshape(permute_dims(a.t, pa), {nb, nl, nc});
  const Tensor b3 = reshape(permute_dims(b.t, pb), {nb, nc, nr});
  Shape out_shape = bs;
  out_shape.insert(out_shape.end(), ls.begin(), ls.end());
  out_shape.insert(out_shape.end(), rs.begin(), rs.end());
  Labeled out;
  out.t =
      reshape(is_floating(a3.dtype()) ? bmm(a3, b3) : sum(unsqueeze(a3, -1) * unsqueeze(b3, 1), 2),
              out_shape);
  out.labels = batch;
  out.labels.insert(out.labels.end(), left.begin(), left.end());
  out.labels.insert(out.labels.end(), right.begin(), right.end());
  return out;
}

}  // namespace

Tensor einsum(std::string_view equation_view, const std::vector<Tensor>& operands) {
  std::string eq;
  for (char c : equation_view)
    if (c != ' ') eq.push_back(c);
  const std::string original(equation_view);
  SOMA_CHECK(!operands.empty(), "einsum(): must provide at least one operand");
  for (const Tensor& t : operands) SOMA_CHECK(t.defined(), "einsum(): an operand is undefined");
  for (const Tensor& t : operands)
    SOMA_CHECK(t.dtype() == operands[0].dtype(), "einsum(): expected all operands to have dtype ",
               operands[0].dtype(), ", got ", t.dtype());

  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<Term> terms;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    terms.push_back(parse_term(lhs.substr(start, comma - start), original));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  SOMA_CHECK(terms.size() == operands.size(), "einsum(): the equation '", original, "' has ",
             terms.size(), " operand term(s) but ", operands.size(), " operand(s) were given");

  // labels of every operand's dims; ellipsis dims aligned from the right
  int64_t n_ell = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    const Term& t = terms[i];
    const auto nl = static_cast<int64_t>(t.letters.size());
    const int64_t nd = operands[i].dim();
    if (t.ellipsis_at < 0)
      SOMA_CHECK(nl == nd, "einsum(): the number of subscripts in the equation (", nl,
                 ") does not match the number of dimensions (", nd, ") for operand ", i,
                 " and no ellipsis was given");
    else
      SOMA_CHECK(nl <= nd, "einsum(): the number of subscripts in the equation (", nl,
                 ") is more than the number of dimensions (", nd, ") for operand ", i);
    if (t.ellipsis_at >= 0) n_ell = std::max(n_ell, nd - nl);
  }
  std::vector<Labeled> ops(operands.size());
  std::array<int, kLetters> count{};
  bool any_ellipsis = false;
  for (size_t i = 0; i < terms.size(); ++i) {
    const Term& t = terms[i];
    const int64_t e =
        t.ellipsis_at < 0 ? 0 : operands[i].dim() - static_cast<int64_t>(t.letters.size());
    any_ellipsis |= t.ellipsis_at >= 0;
    std::vector<int> labels;
    for (int p = 0; p <= static_cast<int>(t.letters.size()); ++p) {
      if (p == t.ellipsis_at)
        for (int64_t j = 0; j < e; ++j)
          labels.push_back(kLetters + static_cast<int>(n_ell - e + j));
      if (p < static_cast<int>(t.letters.size())) {
        labels.push_back(t.letters[static_cast<size_t>(p)]);
        ++count[static_cast<size_t>(t.letters[static_cast<size_t>(p)])];
      }
    }
    ops[i] = {operands[i], labels};
  }

  // output labels
  std::vector<int> out_labels;
  if (arrow != std::string::npos) {
    const Term o = parse_term(eq.substr(arrow + 2), original);
    for (int p = 0; p <= static_cast<int>(o.letters.size()); ++p) {
      if (p == o.ellipsis_at)
        for (int64_t j = 0; j < n_ell; ++j) out_labels.push_back(kLetters + static_cast<int>(j));
      if (p == static_cast<int>(o.letters.size())) break;
      const int l = o.letters[static_cast<size_t>(p)];
      SOMA_CHECK(std::find(out_labels.begin(), out_labels.end(), l) == out_labels.end(),
                 "einsum(): output subscript ", label_name(l),
                 " appears more than once in the output");
      SOMA_CHECK(count[static_cast<size_t>(l)] > 0, "einsum(): output subscript ", label_name(l),
                 " does not appear in the equation for any input operand");
      out_labels.push_back(l);
    }
  } else {
    if (any_ellipsis)
      for (int64_t j = 0; j < n_ell; ++j) out_labels.push_back(kLetters + static_cast<int>(j));
    for (int l = 0; l < kLetters; ++l)
      if (count[static_cast<size_t>(l)] == 1) out_labels.push_back(l);
  }
  const size_t n_labels = static_cast<size_t>(kLetters + n_ell);
  std::vector<bool> in_out(n_labels, false);
  for (int l : out_labels) in_out[static_cast<size_t>(l)] = true;

  // diagonals: a label repeated within one operand
  for (Labeled& x : ops) {
    for (size_t d1 = 0; d1 < x.labels.size(); ++d1) {
      for (size_t d2 = x.labels.size() - 1; d2 > d1; --d2) {
        if (x.labels[d2] != x.labels[d1]) continue;
        SOMA_CHECK(x.t.size(static_cast<int64_t>(d1)) == x.t.size(static_cast<int64_t>(d2)),
                   "einsum(): subscript ", label_name(x.labels[d1]),
                   " is repeated for an operand but the sizes don't match, ",
                   x.t.size(static_cast<int64_t>(d2)), " != ", x.t.size(static_cast<int64_t>(d1)));
        x.t = diagonal_of(x.t, static_cast<int64_t>(d1), static_cast<int64_t>(d2));
        x.labels.erase(x.labels.begin() + static_cast<std::ptrdiff_t>(d2));
      }
    }
  }

  // how many operands (from index i on) use each label
  auto used_after = [&](size_t i) {
    std::vector<int> n(n_labels, 0);
    for (size_t j = i; j < ops.size(); ++j)
      for (int l : ops[j].labels) ++n[static_cast<size_t>(l)];
    return n;
  };
  {
    const std::vector<int> users = used_after(0);
    for (Labeled& x : ops)
      x = sum_labels(x, [&](int l) {
        return !in_out[static_cast<size_t>(l)] && users[static_cast<size_t>(l)] == 1;
      });
  }
  Labeled acc = ops[0];
  for (size_t i = 1; i < ops.size(); ++i) {
    const std::vector<int> later = used_after(i + 1);
    std::vector<bool> summed(n_labels);
    for (size_t l = 0; l < n_labels; ++l) summed[l] = !in_out[l] && later[l] == 0;
    acc = contract_pair(acc, ops[i], summed);
  }
  // labels left that the output drops (only possible with one operand's ellipsis dims)
  acc = sum_labels(acc, [&](int l) { return !in_out[static_cast<size_t>(l)]; });

  // output order; a label missing from acc cannot happen (checked above), but an ellipsis dim
  // absent from every operand (fewer dims) is inserted as size 1
  std::vector<int64_t> perm;
  Shape final_shape;
  for (int l : out_labels) {
    const auto it = std::find(acc.labels.begin(), acc.labels.end(), l);
    if (it == acc.labels.end()) {
      acc.t = unsqueeze(acc.t, acc.t.dim());
      acc.labels.push_back(l);
      perm.push_back(acc.t.dim() - 1);
    } else {
      perm.push_back(static_cast<int64_t>(it - acc.labels.begin()));
    }
  }
  return permute_dims(acc.t, perm);
}

}  // namespace soma
