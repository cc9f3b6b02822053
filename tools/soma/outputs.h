// What `soma train` leaves behind once training ends (rank 0): the model tested on the test
// split, model.safetensors, metrics.json, report.html and the closing lines on stdout.
#pragma once

#include <nlohmann/json.hpp>

#include "config.h"
#include "data_select.h"
#include "model_builder.h"
#include "soma/nn/module.h"

namespace soma::cli {

/// `history` holds the run's epoch rows, the first `initial_epoch` of them from before a
/// --resume; `world` ranks trained for `train_seconds`.
void write_outputs(const TrainConfig& c, TrainData& data, const Architecture& arch,
                   nn::Sequential& model, const nlohmann::json& history, int64_t initial_epoch,
                   double train_seconds, int world);

}  // namespace soma::cli
