// TrainConfig::fromJson: any text is parsed, type-checked per key and range
// validated, or refused with a UsageError; a config read back round-trips.
#include <cstdlib>

#include "fuzz_util.h"
#include "ltlab/training.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    ltlab_fuzz::expectRefusalOrSuccess([&] {
        const auto config = ltlab::TrainConfig::fromJson(text, ltlab::TrainConfig());
        const std::string again = config.toJson();
        if (ltlab::TrainConfig::fromJson(again, ltlab::TrainConfig()).toJson() != again) std::abort();
    });
    return 0;
}
