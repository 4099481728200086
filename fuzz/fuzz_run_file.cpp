// The run-file reader with the full validation path: the bytes become a file,
// RunFile::open validates it, then every snapshot and split is read and
// analysed as `ltlab analyze` does (classifier, labels, features), plus the
// history and the text/JSON reports. Refusals (InputError, UsageError) are fine.
#include <cstdlib>

#include <hdf5.h>

#include "fuzz_util.h"
#include "ltlab/analysis.h"
#include "ltlab/analysis_report.h"
#include "ltlab/run_file.h"
#include "ltlab/runtime.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); // as ltlab does: errors become exceptions, not dumps
    ltlab::initNumericRuntime(1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = ltlab_fuzz::writeFile("run.h5", data, size);
    ltlab_fuzz::expectRefusalOrSuccess([&] {
        const auto file = ltlab::RunFile::open(path);
        (void)file->history();
        for (const auto& snapshot : file->snapshots())
            for (const auto& split : snapshot.splits)
                ltlab_fuzz::expectRefusalOrSuccess([&] {
                    const auto analysis = ltlab::analyzeSnapshot(
                        file, snapshot, split, ltlab::defaultOptionsFor(*file, std::nullopt, std::nullopt));
                    (void)ltlab::analysisToJson(analysis);
                    (void)ltlab::analysisToText(analysis, file->classes());
                });
    });
    return 0;
}
