#pragma once
// One imported checkpoint as a network and the data it is evaluated on, as
// `ltlab import` builds them (importer.cpp); the layer-wise analysis
// (layers.cpp) rebuilds models the same way. Internal to the module.

#include <memory>
#include <string>

#include "data.h"
#include "ltlab/checkpoint.h"
#include "ltlab/importing.h"
#include "weights.h"

namespace ltlab::train {

struct LoadedCheckpoint {
    std::unique_ptr<ckpt::Checkpoint> file;
    ckpt::StateDict state_dict;
    ImportedModel model;
};

// A state_dict into a built-in network (c.arch) or a TorchScript module.
LoadedCheckpoint loadCheckpointModel(const std::string& path, const ImportConfig& c);
// The dataset of c.data for that network: shapes and class count checked,
// the evaluation transform and normalisation set, only c.splits kept.
Data loadImportData(const ImportedModel& m, const ImportConfig& c, const std::string& checkpoint);

} // namespace ltlab::train
