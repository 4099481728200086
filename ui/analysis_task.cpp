#include "analysis_task.h"

#include <QtConcurrent/QtConcurrentRun>

#include "ltlab/analysis_report.h"
#include "ltlab/error.h"

namespace ltlab::ui {

std::shared_ptr<const Analysis> stageOneComparison(const std::shared_ptr<const RunFile>& file,
                                                   const SnapshotInfo& snapshot, const SplitInfo& split) {
    if (snapshot.stage != 2) return nullptr;
    for (const SnapshotInfo& other : file->snapshots())
        if (other.name == "stage1_final" && other.split(split.name))
            return std::make_shared<Analysis>(analyzeSnapshot(file, other, *other.split(split.name),
                                                              defaultOptionsFor(*file, std::nullopt, std::nullopt)));
    return nullptr;
}

QFuture<OpenedRun> openRunAsync(const QString& path) {
    return QtConcurrent::run([path] {
        OpenedRun run{path, nullptr, std::nullopt, {}};
        try {
            run.file = RunFile::open(path.toStdString());
            run.history = run.file->history();
        } catch (const std::exception& e) {
            run.error = QString::fromStdString(e.what());
        }
        return run;
    });
}

QFuture<AnalysisOutcome> analyzeAsync(std::shared_ptr<const RunFile> file, QString snapshot, QString split) {
    return QtConcurrent::run([file, snapshot, split] {
        AnalysisOutcome out{QString::fromStdString(file->path()), snapshot, split, nullptr, nullptr, nullptr, nullptr, {}, {}};
        try {
            const SnapshotInfo& snap = file->snapshot(snapshot.toStdString());
            const SplitInfo* s = split.isEmpty() ? &snap.defaultSplit() : snap.split(split.toStdString());
            if (!s) throw UsageError("snapshot " + snap.name + " has no split " + split.toStdString());
            auto analysis = std::make_shared<Analysis>(
                analyzeSnapshot(file, snap, *s, defaultOptionsFor(*file, std::nullopt, std::nullopt)));
            out.report = QString::fromStdString(analysisToText(*analysis, file->classes()));
            out.cone = std::make_shared<ConeHistograms>(coneHistograms(RunFileSource(file, snap, *s)));
            out.geometry = std::make_shared<ClassGeometry3D>(projectClassGeometry(*analysis));
            out.split = QString::fromStdString(s->name);
            out.analysis = std::move(analysis);
            out.stage1 = stageOneComparison(file, snap, *s);
        } catch (const std::exception& e) {
            out.error = QString::fromStdString(e.what());
        }
        return out;
    });
}

} // namespace ltlab::ui
