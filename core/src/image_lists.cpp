// Image folders and split lists (see image_lists.h).

#include "ltlab/image_lists.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ltlab/error.h"
#include "ltlab/input_file.h"

namespace ltlab {

namespace fs = std::filesystem;

namespace {

bool isImageFile(const fs::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::vector<fs::path> sortedEntries(const fs::path& dir, bool folders) {
    std::vector<fs::path> out;
    for (const auto& entry : fs::directory_iterator(dir, fs::directory_options::follow_directory_symlink))
        if (folders ? entry.is_directory() : (entry.is_regular_file() && isImageFile(entry.path())))
            out.push_back(entry.path());
    std::sort(out.begin(), out.end());
    return out;
}

void listFolders(ImageSplits& data, const std::string& dir) {
    for (const char* name : {"train", "val", "test"}) {
        std::error_code ec;
        if (!fs::is_directory(fs::path(dir) / name, ec)) continue;
        ImageList list = listImageFolder((fs::path(dir) / name).string());
        if (data.class_names.empty()) data.class_names = list.class_names;
        if (list.class_names != data.class_names)
            throw InputError((fs::path(dir) / name).string(), "", "has other class subfolders than the first split");
        data.splits[name] = std::move(list);
    }
    if (!data.splits.empty()) return;
    ImageList list = listImageFolder(dir);
    data.class_names = list.class_names;
    data.splits["test"] = std::move(list);
}

// "train=FILE", or the split told by the file name.
std::pair<std::string, std::string> listSplit(const std::string& item) {
    const auto eq = item.find('=');
    if (eq != std::string::npos) {
        const std::string split = item.substr(0, eq);
        if (split != "train" && split != "val" && split != "test")
            throw UsageError("split list '" + item + "': the split is train, val or test");
        return {split, item.substr(eq + 1)};
    }
    const std::string name = fs::path(item).filename().string();
    for (const char* split : {"train", "val", "test"})
        if (name.find(split) != std::string::npos) return {split, item};
    throw UsageError("cannot tell the split of the list '" + item + "' from its name; write train=, val= or test= before it");
}

void listLists(ImageSplits& data, const std::string& items, const std::string& root, std::int64_t classes) {
    std::stringstream stream(items);
    std::string item;
    while (std::getline(stream, item, ',')) {
        if (item.empty()) continue;
        const auto [split, file] = listSplit(item);
        ImageList list = readSplitList(file, root.empty() ? fs::path(file).parent_path().string() : root);
        for (std::size_t i = 0; i < list.labels.size(); ++i)
            if (list.labels[i] >= classes)
                throw InputError(file, "line with " + list.paths[i], "label " + std::to_string(list.labels[i]) +
                                                                          " is outside the classifier's " + std::to_string(classes) + " classes");
        data.splits[split] = std::move(list);
    }
    for (std::int64_t c = 0; c < classes; ++c) data.class_names.push_back(std::to_string(c));
}

} // namespace

ImageList listImageFolder(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw InputError(dir, "", "not a folder");
    ImageList out;
    for (const fs::path& cls : sortedEntries(dir, true)) {
        const auto label = static_cast<std::int32_t>(out.class_names.size());
        out.class_names.push_back(cls.filename().string());
        for (const fs::path& file : sortedEntries(cls, false)) {
            out.paths.push_back(file.string());
            out.labels.push_back(label);
        }
    }
    if (out.class_names.empty()) throw InputError(dir, "", "has no class subfolders (an image folder has one per class)");
    if (out.paths.empty()) throw InputError(dir, "", "has no .png/.jpg/.jpeg images in its class subfolders");
    return out;
}

ImageList readSplitList(const std::string& list_path, const std::string& root) {
    requireRegularFile(list_path, "split list"); // a FIFO would block the open
    std::ifstream in(list_path);
    if (!in) throw InputError(list_path, "", "cannot read the split list");
    ImageList out;
    std::string line;
    for (std::int64_t number = 1; std::getline(in, line); ++number) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto last = line.find_last_not_of(" \t");
        if (last == std::string::npos) continue;
        line.erase(last + 1);
        const auto space = line.find_last_of(" \t");
        char* end = nullptr;
        const long label = space == std::string::npos ? -1 : std::strtol(line.c_str() + space + 1, &end, 10);
        if (space == std::string::npos || *end != '\0' || label < 0 || label > 10'000'000)
            throw InputError(list_path, "line " + std::to_string(number), "expected 'relative/path label', got '" + line + "'");
        const std::string rel = line.substr(0, line.find_last_not_of(" \t", space) + 1);
        out.paths.push_back((fs::path(root) / rel).string());
        out.labels.push_back(static_cast<std::int32_t>(label));
    }
    if (out.paths.empty()) throw InputError(list_path, "", "lists no images");
    return out;
}

ImageSplits listImageData(const std::string& spec, const std::string& root, std::int64_t classes) {
    ImageSplits data;
    if (spec.rfind("folder:", 0) == 0) listFolders(data, spec.substr(7));
    else if (spec.rfind("list:", 0) == 0) listLists(data, spec.substr(5), root, classes);
    else throw UsageError("image data is folder:DIR or list:FILE[,FILE...], got '" + spec + "'");
    return data;
}

std::vector<std::int64_t> classCounts(const ImageList& list, std::int64_t classes) {
    std::vector<std::int64_t> counts(static_cast<std::size_t>(std::max<std::int64_t>(classes, 0)), 0);
    for (auto y : list.labels)
        if (y >= 0 && y < classes) ++counts[static_cast<std::size_t>(y)];
    return counts;
}

} // namespace ltlab
