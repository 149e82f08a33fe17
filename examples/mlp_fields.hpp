#pragma once
// The checkpoint names of the demo training state, shared by the examples that track all of it.
// (quickstart.cpp spells out its own annotations, and leaves the optimizer unannotated.)

#include <ckpt/ckpt.hpp>

#include "mlp_training.hpp"

namespace demo {
CKPT_FIELDS(dense, kernel, bias)
CKPT_FIELDS(mlp, hidden, out)
CKPT_FIELDS(adam, lr, beta1, beta2, eps, iterations, m, v)
CKPT_FIELDS(data_cursor, epoch, index, order)
}  // namespace demo
