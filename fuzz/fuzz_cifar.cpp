// The CIFAR binary readers: the bytes are CIFAR-100's train.bin and
// CIFAR-10's test_batch.bin (plain or gzip), both read.
#include "fuzz_util.h"
#include "ltlab/datasets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ltlab_fuzz::writeFile("train.bin", data, size);
    ltlab_fuzz::writeFile("test_batch.bin", data, size);
    ltlab_fuzz::expectRefusalOrSuccess([&] { (void)ltlab::readCifar100(ltlab_fuzz::tempDir(), true).classCounts(); });
    ltlab_fuzz::expectRefusalOrSuccess([&] { (void)ltlab::readCifar10(ltlab_fuzz::tempDir(), false).classCounts(); });
    return 0;
}
