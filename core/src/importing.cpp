// What an import records about the classes, before any evaluation (see importing.h).

#include "ltlab/importing.h"

#include "ltlab/datasets.h"
#include "ltlab/error.h"
#include "ltlab/image_lists.h"

namespace ltlab {

std::optional<ImportClasses> importClasses(const ImportConfig& config, std::int64_t classes) {
    ImportClasses out;
    const std::string& spec = config.data.dataset;
    const bool files = spec.rfind("folder:", 0) == 0 || spec.rfind("list:", 0) == 0;
    if (files) {
        const ImageSplits lists = listImageData(spec, config.data.data_dir, classes);
        out.names = lists.class_names;
        if (static_cast<std::int64_t>(out.names.size()) != classes)
            throw UsageError(spec + " has " + std::to_string(out.names.size()) + " classes; the classifier has " +
                             std::to_string(classes));
        if (!config.counts) {
            const auto train = lists.splits.find("train");
            if (train == lists.splits.end()) return std::nullopt;
            out.train_counts = classCounts(train->second, classes);
            out.source = "train split of " + spec;
        }
    } else if (!config.counts) {
        const DatasetSplits splits = loadDatasetSplits(config.data);
        out.names = splits.train.class_names;
        out.train_counts = splits.train_counts;
        out.source = "train split of " + spec;
    }
    if (config.counts) {
        out.train_counts = *config.counts;
        out.source = "--counts";
    }
    if (static_cast<std::int64_t>(out.train_counts.size()) != classes)
        throw UsageError(out.source + " has " + std::to_string(out.train_counts.size()) + " classes; the classifier has " +
                         std::to_string(classes));
    if (static_cast<std::int64_t>(out.names.size()) != classes) {
        out.names.clear();
        for (std::int64_t c = 0; c < classes; ++c) out.names.push_back(std::to_string(c));
    }
    return out;
}

} // namespace ltlab
