// The torch-free checkpoint reader: format sniffing, PyTorch zip (libzip),
// legacy torch.save, safetensors, TorchScript's entry checks, the restricted
// unpickler; then what `ltlab inspect` does with a checkpoint: the state_dict,
// the classifier, the architecture, opaque objects, and every tensor read.
#include "fuzz_util.h"
#include "ltlab/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = ltlab_fuzz::writeFile("model.pth", data, size);
    (void)ltlab::ckpt::sniffFile(path);
    ltlab_fuzz::expectRefusalOrSuccess([&] {
        const auto checkpoint = ltlab::ckpt::Checkpoint::open(path);
        (void)checkpoint->formatDetail();
        (void)ltlab::ckpt::describe(checkpoint->root());
        (void)ltlab::ckpt::opaqueEntries(checkpoint->root());
        const auto state_dict = ltlab::ckpt::extractStateDict(*checkpoint);
        (void)ltlab::ckpt::detectArchitecture(state_dict);
        std::size_t budget = 64; // tensors read per input, to keep the rate up
        for (const auto& t : state_dict.tensors) {
            if (budget-- == 0) break;
            ltlab_fuzz::expectRefusalOrSuccess([&] { (void)checkpoint->read(*t.tensor).toDoubles(); });
        }
        std::vector<std::string> reasons;
        if (const auto classifier = ltlab::ckpt::findClassifier(state_dict, &reasons))
            (void)ltlab::ckpt::readClassifier(*checkpoint, state_dict, *classifier);
    });
    return 0;
}
