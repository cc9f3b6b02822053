// soma: a small deep-learning library for C++20. Include this one header.
#pragma once

#include "soma/autograd/grad_mode.h"
#include "soma/autograd/gradcheck.h"
#include "soma/core/dtype.h"
#include "soma/core/error.h"
#include "soma/core/random.h"
#include "soma/core/tensor.h"
#include "soma/core/threading.h"
#include "soma/ops/activation.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/matmul.h"
#include "soma/ops/reduce.h"
#include "soma/ops/shape.h"
