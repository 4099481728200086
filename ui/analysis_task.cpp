#include "analysis_task.h"

#include <QFileInfo>
#include <QObject>

#include <QtConcurrent/QtConcurrentRun>

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

std::shared_ptr<const Analysis> analyzeBaseline(const RunFile& run, const std::shared_ptr<const RunFile>& baseline,
                                                const std::string& snapshot_name, const std::string& split,
                                                QString* label) {
    requireComparableBaseline(run, *baseline);
    const SnapshotInfo& snap = snapshot_name.empty() ? baseline->latestSnapshot() : baseline->snapshot(snapshot_name);
    const SplitInfo& s = snap.split(split) ? *snap.split(split) : snap.defaultSplit();
    auto analysis = std::make_shared<Analysis>(
        analyzeSnapshot(baseline, snap, s, defaultOptionsFor(*baseline, std::nullopt, std::nullopt)));
    if (label)
        *label = QStringLiteral("%1: %2 (%3)")
                     .arg(QFileInfo(QString::fromStdString(baseline->path())).fileName(),
                          QString::fromStdString(snap.name), QString::fromStdString(s.name));
    return analysis;
}

QFuture<OpenedRun> openRunAsync(const QString& path) {
    return QtConcurrent::run([path] {
        OpenedRun run;
        run.path = path;
        try {
            run.file = RunFile::open(path.toStdString());
            run.history = run.file->history();
        } catch (const std::exception& e) {
            run.error = QString::fromStdString(e.what());
        }
        if (run.file) try { // the Layers tab's results: a bad /layers group does not keep the run closed
            run.layers = std::make_shared<const std::vector<LayerRun>>(readLayerResults(path.toStdString()));
        } catch (const std::exception& e) {
            run.layers_error = QString::fromStdString(e.what());
        }
        return run;
    });
}

namespace {

bool sameGeometryOptions(const GeometryOptions& a, const GeometryOptions& b) {
    return a.axes == b.axes && a.axis_classes == b.axis_classes && a.samples_per_class == b.samples_per_class &&
           a.seed == b.seed;
}

QString compareKey(const AnalysisRequest& request) {
    return request.compare_file ? QString::fromStdString(request.compare_file->path()) + "\n" + request.compare_snapshot
                                : QString();
}

} // namespace

AnalysisOutcome analyzeForViews(const std::shared_ptr<const RunFile>& file, const AnalysisRequest& request,
                                const AnalysisOutcome* previous) {
    AnalysisOutcome out;
    out.path = QString::fromStdString(file->path());
    out.snapshot = request.snapshot;
    out.file = file;
    out.compare_key = compareKey(request);
    try {
        const SnapshotInfo& snap = file->snapshot(request.snapshot.toStdString());
        const SplitInfo* s = request.split.isEmpty() ? &snap.defaultSplit() : snap.split(request.split.toStdString());
        if (!s) throw UsageError("snapshot " + snap.name + " has no split " + request.split.toStdString());
        out.split = QString::fromStdString(s->name);
        const bool same_data = previous && previous->analysis && previous->file == file &&
                               previous->snapshot == out.snapshot && previous->split == out.split;
        const auto progress = request.progress;
        // The engine's passes are most of the time; the later steps report at their ends.
        auto report = [progress](double fraction) {
            if (!progress) return true;
            progress->permille = static_cast<int>(1000 * fraction);
            return !progress->cancel.load();
        };
        auto step = [&report](double fraction) {
            if (!report(fraction)) throw Cancelled();
        };
        const RunFileSource source(file, snap, *s);
        std::shared_ptr<const Analysis> analysis;
        if (same_data) {
            analysis = previous->analysis;
            out.cone = previous->cone;
        } else {
            AnalysisOptions options = defaultOptionsFor(*file, std::nullopt, std::nullopt);
            options.progress = [report](double f) { return report(0.8 * f); };
            analysis = std::make_shared<Analysis>(analyzeSnapshot(file, snap, *s, options));
            out.cone = std::make_shared<ConeHistograms>(coneHistograms(source));
        }
        step(0.85);
        if (same_data && previous->geometry && sameGeometryOptions(previous->geometry->options, request.geometry)) {
            out.geometry = previous->geometry;
        } else {
            ClassGeometry3D geometry;
            try {
                geometry = projectClassGeometry(*analysis, request.geometry);
            } catch (const UsageError& e) { // e.g. the same class chosen twice as an axis
                out.warning = QString::fromStdString(e.what()) + QObject::tr("; showing the PCA axes");
                GeometryOptions pca = request.geometry;
                pca.axes = GeometryAxes::Pca;
                geometry = projectClassGeometry(*analysis, pca);
            }
            addSampleCloud(geometry, source);
            out.geometry = std::make_shared<ClassGeometry3D>(std::move(geometry));
        }
        step(0.9);
        if (same_data && previous->compare_key == out.compare_key) {
            out.compare = previous->compare;
            out.compare_label = previous->compare_label;
        } else if (request.compare_file) {
            const auto& other_file = request.compare_file;
            const SnapshotInfo& other = other_file->snapshot(request.compare_snapshot.toStdString());
            const SplitInfo* os = other.split(s->name) ? other.split(s->name) : &other.defaultSplit();
            if (other_file->classes().numClasses() != file->classes().numClasses()) {
                if (!out.warning.isEmpty()) out.warning += "; ";
                out.warning += QObject::tr("cannot overlay %1: it has %2 classes, this run %3")
                                   .arg(request.compare_snapshot)
                                   .arg(other_file->classes().numClasses())
                                   .arg(file->classes().numClasses());
            } else {
                out.compare = std::make_shared<Analysis>(analyzeSnapshot(
                    other_file, other, *os, defaultOptionsFor(*other_file, std::nullopt, std::nullopt)));
                out.compare_label = QStringLiteral("%1: %2")
                                        .arg(QFileInfo(QString::fromStdString(other_file->path())).fileName(),
                                             request.compare_snapshot);
            }
        } else if ((out.compare = stageOneComparison(file, snap, *s))) {
            out.compare_label = QObject::tr("end of stage 1");
        }
        // The figure set: every snapshot's classifier norms (or /history's), and the baseline run.
        if (previous && previous->evolution && previous->file == file)
            out.evolution = previous->evolution;
        else
            out.evolution = std::make_shared<WeightNormEvolution>(weightNormEvolution(*file, file->history()));
        out.baseline_key = request.baseline_file
                               ? QString::fromStdString(request.baseline_file->path()) + "\n" + request.baseline_snapshot
                               : QString();
        if (same_data && previous->baseline_key == out.baseline_key) {
            out.baseline = previous->baseline;
            out.baseline_label = previous->baseline_label;
        } else if (request.baseline_file) {
            try {
                out.baseline = analyzeBaseline(*file, request.baseline_file, request.baseline_snapshot.toStdString(),
                                               s->name, &out.baseline_label);
            } catch (const InputError& e) { // other classes: the rest is shown
                if (!out.warning.isEmpty()) out.warning += "; ";
                out.warning += QObject::tr("no baseline: %1").arg(QString::fromStdString(e.what()));
            }
        }
        out.analysis = std::move(analysis);
        report(1.0);
    } catch (const Cancelled&) {
        out.cancelled = true;
        out.error = QObject::tr("analysis cancelled");
    } catch (const std::exception& e) {
        out.error = QString::fromStdString(e.what());
    }
    return out;
}

ViewData viewDataFor(const AnalysisOutcome& out, std::optional<History> history) {
    ViewData data{QFileInfo(out.path).fileName(), out.analysis, out.file->classes(), std::move(history), out.cone,
                  out.geometry, out.compare, out.compare_label, {}, out.path, out.snapshot,
                  out.evolution, out.baseline, out.baseline_label, std::nullopt, {}};
    if (out.file && !out.snapshot.isEmpty()) {
        try {
            data.weight_decay = recordedWeightDecay(*out.file, out.file->snapshot(out.snapshot.toStdString()));
        } catch (const std::exception&) { // a snapshot that went away: no recorded weight decay
        }
    }
    return data;
}

QFuture<AnalysisOutcome> analyzeAsync(std::shared_ptr<const RunFile> file, AnalysisRequest request,
                                      std::shared_ptr<const AnalysisOutcome> previous) {
    return QtConcurrent::run(
        [file, request, previous] { return analyzeForViews(file, request, previous.get()); });
}

} // namespace ltlab::ui
