// Readers for the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//
// An IDX file is a 4-byte magic number (two zero bytes, a type code, the rank), then one
// big-endian uint32 per dimension, then the elements in row-major order, big-endian:
//   type 0x08 uint8 -> kUInt8    0x09 int8, 0x0B int16, 0x0C int32 -> kInt64
//   type 0x0D float32 -> kFloat32    0x0E float64 -> kFloat64
//   auto train = soma::data::load_mnist("/usr/share/datasets/fashion-mnist", "train");
//   // train.images: uint8 [60000, 28, 28], train.labels: int64 [60000] in 0..9
#pragma once

#include <string>

#include "soma/core/tensor.h"

namespace soma::data {

/// Reads an IDX file (gzip when the name ends in .gz). Each malformed case is a soma::Error
/// naming the file: too short for the header, magic not starting with two zero bytes, unknown
/// type code, rank outside 1..4, a zero dimension, more than 2^34 bytes of data (rejected
/// before allocating), data shorter than the dimensions say (truncated) or longer (trailing
/// bytes), and gzip errors.
Tensor read_idx(const std::string& path);

/// One split of an MNIST-format dataset.
struct MnistSplit {
  Tensor images;  // uint8 [N, rows, cols] as in the file ([N, 28, 28] for (Fashion-)MNIST)
  Tensor labels;  // int64 [N], each in 0..9
};

/// Loads split "train" (files "train-*") or "test" (files "t10k-*") from `dir`, which holds
/// "<prefix>-images-idx3-ubyte" and "<prefix>-labels-idx1-ubyte", each plain or with ".gz"
/// ("<prefix>-images.idx3-ubyte" is accepted too). Errors: an unknown split, a missing file
/// (naming every name looked for), images that are not uint8 of rank 3 or labels not uint8 of
/// rank 1, different image and label counts, a label >= 10 (with its index).
MnistSplit load_mnist(const std::string& dir, const std::string& split);

}  // namespace soma::data
