#pragma once
// Opening a run file and analysing a snapshot, off the UI thread.
// Only core computes; the result carries the engine's own report.

#include <QFuture>
#include <QString>
#include <QStringList>

#include <atomic>
#include <memory>
#include <optional>

#include "ltlab/analysis.h"
#include "ltlab/cone.h"
#include "ltlab/geometry.h"
#include "ltlab/run_file.h"
#include "analysis_view.h"

namespace ltlab::ui {

struct OpenedRun {
    QString path;
    std::shared_ptr<const RunFile> file; // null when opening failed
    std::optional<History> history;
    QString error;
    // /layers (readLayerResults), read here on the worker thread; never null.
    std::shared_ptr<const std::vector<LayerRun>> layers = std::make_shared<const std::vector<LayerRun>>();
    QString layers_error;                // /layers could not be read (the run itself opened)
};

struct AnalysisOutcome {
    QString path, snapshot, split;
    std::shared_ptr<const RunFile> file;      // the open file it was computed from
    std::shared_ptr<const Analysis> analysis; // null on error
    std::shared_ptr<const ConeHistograms> cone;
    std::shared_ptr<const ClassGeometry3D> geometry;
    // A snapshot to overlay: the one the user chose, else for a
    // weight-balancing stage-2 snapshot the end of stage 1.
    std::shared_ptr<const Analysis> compare;
    QString compare_label;
    QString compare_key;                      // what was asked for: "" (automatic) or "path\nsnapshot"
    // The figure set: the weight-norm evolution of the run, and the baseline run's analysis.
    std::shared_ptr<const WeightNormEvolution> evolution;
    std::shared_ptr<const Analysis> baseline;
    QString baseline_label, baseline_key;     // key: "path\nsnapshot" asked for ("" none)
    QString error;
    QString warning;                          // a part that could not be done (the rest is shown)
    bool cancelled = false;
};

// Shared between the UI thread and a running analysis: how far it got, and
// whether the user asked it to stop.
struct AnalysisProgress {
    std::atomic<int> permille{0};
    std::atomic<bool> cancel{false};
};

// What to analyse besides the snapshot itself.
struct AnalysisRequest {
    std::shared_ptr<AnalysisProgress> progress; // may be null
    QString snapshot, split;                  // split empty: the snapshot's default
    GeometryOptions geometry;
    std::shared_ptr<const RunFile> compare_file; // null: the automatic stage-1 comparison
    QString compare_snapshot;
    // A baseline run for the per-class comparison (null: none); it must have the run's classes.
    std::shared_ptr<const RunFile> baseline_file;
    QString baseline_snapshot;                // empty: its last snapshot
};

// For a weight-balancing stage-2 snapshot, stage 1's final analysis of the
// same split (stage 2 retrains only the classifier); null otherwise.
std::shared_ptr<const Analysis> stageOneComparison(const std::shared_ptr<const RunFile>& file,
                                                   const SnapshotInfo& snapshot, const SplitInfo& split);

// A baseline run's analysis for the per-class comparison: its snapshot
// `snapshot_name` (empty: its last), on the split named `split` when it has
// one, else its default split. Throws InputError naming the baseline file
// when its classes differ from the run's (figure_data.h).
std::shared_ptr<const Analysis> analyzeBaseline(const RunFile& run, const std::shared_ptr<const RunFile>& baseline,
                                                const std::string& snapshot_name, const std::string& split,
                                                QString* label);

QFuture<OpenedRun> openRunAsync(const QString& path);
// Everything the views show for one snapshot, computed by core: the analysis,
// the cone histograms, the 3D geometry with its sample cloud, the overlay.
// Parts of `previous` (an outcome for the same snapshot of the same open file)
// that the request leaves unchanged are reused: changing the 3D axes or the
// overlay does not analyse the snapshot again. Never throws: errors and
// cancellation are in the outcome.
AnalysisOutcome analyzeForViews(const std::shared_ptr<const RunFile>& file, const AnalysisRequest& request,
                                const AnalysisOutcome* previous = nullptr);
// What the views draw from a successful outcome (the run's history for the curves).
ViewData viewDataFor(const AnalysisOutcome& outcome, std::optional<History> history);
// The same on a worker thread.
QFuture<AnalysisOutcome> analyzeAsync(std::shared_ptr<const RunFile> file, AnalysisRequest request,
                                      std::shared_ptr<const AnalysisOutcome> previous = nullptr);

} // namespace ltlab::ui
