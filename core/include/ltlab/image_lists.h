#pragma once
// Image files as datasets for evaluation (`ltlab import`): an image folder
// (one subfolder per class, torchvision's ImageFolder order) or split lists
// in the ImageNet-LT style ("relative/path label" per line). Listing only:
// decoding is the training module's (libpng, libjpeg-turbo). No libtorch here,
// so the workbench counts classes before anything is evaluated.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ltlab {

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

struct ImageSplits {
    std::map<std::string, ImageList> splits; // "train", "val", "test": those present
    std::vector<std::string> class_names;    // folder: the subfolders; lists: "0".."classes-1"
};

// `spec` is folder:DIR (DIR/train, DIR/val, DIR/test when present, else DIR
// is the test split) or list:[SPLIT=]FILE[,...] (paths relative to `root`,
// default each list's folder; the split from SPLIT= or the file name; labels
// must be below `classes`). Throws UsageError or InputError naming the file.
ImageSplits listImageData(const std::string& spec, const std::string& root, std::int64_t classes);

// Images per class of a split (length `classes`; labels must be in range).
std::vector<std::int64_t> classCounts(const ImageList& list, std::int64_t classes);

} // namespace ltlab
