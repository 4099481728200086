// The IDX reader (MNIST/Fashion-MNIST format, plain or gzip): the input is
// [u16 little-endian length L][L bytes images file][rest: labels file].
#include "fuzz_util.h"
#include "ltlab/datasets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    std::size_t split = data[0] | (std::size_t{data[1]} << 8);
    data += 2;
    size -= 2;
    if (split > size) split = size;
    const std::string images = ltlab_fuzz::writeFile("images-idx3-ubyte", data, split);
    const std::string labels = ltlab_fuzz::writeFile("labels-idx1-ubyte", data + split, size - split);
    ltlab_fuzz::expectRefusalOrSuccess([&] {
        const auto d = ltlab::readIdx(images, labels, "idx");
        (void)d.classCounts();
    });
    return 0;
}
