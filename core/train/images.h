#pragma once
// PNG/JPEG decoding for evaluation (libpng, libjpeg-turbo). No libtorch here.
// Listing image folders and split lists is core's (ltlab/image_lists.h).

#include <cstdint>
#include <string>
#include <vector>

namespace ltlab::train {

// 8-bit pixels, height x width x channels (1: grey, 3: RGB).
struct Image {
    std::int64_t height = 0, width = 0, channels = 0;
    std::vector<std::uint8_t> pixels;
};

// Decodes a PNG or JPEG, told by its first bytes, into `channels` (1 or 3)
// channels; an alpha channel is dropped. Throws InputError naming the file.
Image decodeImage(const std::string& path, int channels);

} // namespace ltlab::train
