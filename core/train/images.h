#pragma once
// Image files for evaluation: an image folder (one subfolder per class) or a
// split list in the ImageNet-LT style ("path label" per line), and PNG/JPEG
// decoding (libpng, libjpeg-turbo). No libtorch here.

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

struct ImageList {
    std::vector<std::string> paths;
    std::vector<std::int32_t> labels;
    std::vector<std::string> class_names; // folder: the subfolders; list: empty
};

// torchvision's ImageFolder order: classes are the subfolders sorted by name,
// files (.png, .jpg, .jpeg, any case) sorted by name within each.
ImageList listImageFolder(const std::string& dir);
// Non-empty lines "relative/path label" (the label is the last field); paths
// are relative to `root`. Throws InputError with the line number.
ImageList readSplitList(const std::string& list_path, const std::string& root);

} // namespace ltlab::train
