#pragma once
// Users' weights in ltlab's networks: a checkpoint's state_dict (read by
// ltlab::ckpt, never torch::load) into a built-in network of the detected or
// named architecture, or a TorchScript module (torchscript.cpp) behind the
// same Network interface. Internal to the training module.

#include <string>
#include <vector>

#include "ltlab/checkpoint.h"
#include "networks.h"

namespace ltlab::train {

// A network ready for evaluation, and what evaluation needs to know of it.
struct ImportedModel {
    Network net;
    std::string architecture;          // "resnet34", "resnet18-imagenet", "torchscript (resnet18-imagenet)"
    ArchSpec arch;                     // the built-in architecture, or the one the TorchScript weights look like
    std::int64_t in_channels = 3;
    std::int64_t input_size = 32;      // side of the square input; 0: vectors (mlp on vector data)
    std::int64_t input_features = 0;   // mlp: the input width
    std::int64_t classes = 0;
    bool etf = false;
    std::vector<std::string> notes;    // how it was found and loaded, warnings
};

// The built-in architecture for a state_dict: `arch` ("auto": detected, or
// from HN410's args.json when detection fails; a name without a stem takes
// the detected stem).
ArchSpec chooseArchitecture(const ckpt::StateDict& state_dict, const std::string& arch, const ckpt::SideArgs& side,
                            const std::string& file);

// Builds the network and copies every tensor into it (converted to the
// network's dtype; prefixes already mapped by ltlab::ckpt). A mismatch is an
// InputError naming the file that lists the missing, unexpected and wrongly
// shaped keys. With `copy` false, only checks that the weights fit.
ImportedModel loadBuiltIn(const ckpt::Checkpoint& file, const ckpt::StateDict& state_dict, const std::string& arch,
                          bool copy = true);

// A TorchScript module (torch::jit::load): features from its `features`
// method, else the input of the last aten::linear of forward, else the output
// of the submodule `features_module`; the classifier from that linear layer,
// else the submodule (or parameter prefix) `classifier`, else the last 2-D
// weight. `listed` is ltlab::ckpt's view of the same file (its tensors).
ImportedModel loadTorchScript(const std::string& path, const ckpt::StateDict& listed, const std::string& features_module,
                              const std::string& classifier);

} // namespace ltlab::train
