// `ltlab figures`: every view of one snapshot written to files, without a
// window. The 2D views render through QPainter, so no display is needed
// (the offscreen platform is used when DISPLAY is unset). The 3D view renders
// through VTK, which needs X: it is written when DISPLAY is set.

#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QWindow>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "analysis_task.h"
#include "analysis_view.h"
#include "cone_view.h"
#include "figure_set_view.h"
#include "geometry_view.h"
#include "layers_view.h"
#include "vtk_widget.h"
#include "per_class_view.h"
#include "logit_adjustment_view.h"
#include "ltlab/analysis.h"
#include "ltlab/error.h"
#include "ltlab/runtime.h"
#include "report_view.h"
#include "training_curves_view.h"
#include "weight_norm_view.h"

extern "C" Q_DECL_EXPORT int ltlab_ui_figures(const char* run_path, const char* snapshot_name, const char* split_name,
                                              const char* out_dir, const char* formats, double dpi,
                                              long long samples_per_class, const char* baseline_path,
                                              const char* baseline_snapshot, const char* size, double weight_decay) {
    if (!std::getenv("DISPLAY") && !std::getenv("QT_QPA_PLATFORM")) setenv("QT_QPA_PLATFORM", "offscreen", 1);
    static int argc = 1;
    static char name[] = "ltlab";
    static char* argv[] = {name, nullptr};
    std::unique_ptr<QApplication> app;
    if (!QApplication::instance()) app = std::make_unique<QApplication>(argc, argv);
    ltlab::initNumericRuntime();
    using namespace ltlab;
    try {
        const auto file = RunFile::open(run_path);
        const SnapshotInfo& snap = snapshot_name ? file->snapshot(snapshot_name) : file->latestSnapshot();
        const SplitInfo* split = split_name ? snap.split(split_name) : &snap.defaultSplit();
        if (!split) file->fail(snapshotPath(snap), std::string("has no split '") + split_name + "'");
        const bool display = std::getenv("DISPLAY") != nullptr;
        ui::setFigureSize(size && std::string(size) == "page" ? ui::FigureSize::Page : ui::FigureSize::Column);
        // The baseline is checked before anything is written: other classes are refused, naming its file.
        std::shared_ptr<const Analysis> baseline;
        QString baseline_label;
        if (baseline_path) {
            const auto other = RunFile::open(baseline_path);
            baseline = ui::analyzeBaseline(*file, other, baseline_snapshot ? baseline_snapshot : "", split->name,
                                           &baseline_label);
        }
        ui::AnalysisRequest request; // what the window computes for a snapshot, here in this thread
        request.snapshot = QString::fromStdString(snap.name);
        request.split = QString::fromStdString(split->name);
        request.geometry.samples_per_class = display ? samples_per_class : 0;
        const ui::AnalysisOutcome outcome = ui::analyzeForViews(file, request);
        if (!outcome.error.isEmpty()) throw std::runtime_error(outcome.error.toStdString());
        ui::ViewData data = ui::viewDataFor(outcome, file->history());
        data.baseline = baseline;
        data.baseline_label = baseline_label;
        QDir dir(QString::fromLocal8Bit(out_dir));
        if (!dir.mkpath(".")) throw InputError(out_dir, "", "cannot create the output folder");
        const QStringList wanted = QString(formats).split(',', Qt::SkipEmptyParts);
        // Each view's figures (the report as text) and the data behind them.
        auto write = [&](ui::AnalysisView& view) {
            view.showData(data);
            const bool report = view.fileStem() == "report";
            QStringList targets;
            if (report)
                targets << dir.filePath("report.txt");
            else
                for (const QString& format : wanted) targets << dir.filePath(view.fileStem() + "." + format.trimmed());
            for (const QString& target : targets) {
                if (!view.exportFigure(target, dpi)) throw InputError(target.toStdString(), "", "cannot write the figure");
                std::printf("%s\n", qPrintable(target));
            }
            QString failed;
            for (const QString& written :
                 ui::writeViewData(view, dir.filePath(view.fileStem() + (report ? ".json" : ".csv")), &failed))
                std::printf("%s\n", qPrintable(written));
            if (!failed.isEmpty()) throw InputError(failed.toStdString(), "", "cannot write the data");
        };
        ui::ReportView report;
        ui::WeightNormView weights;
        ui::LogitAdjustmentView la;
        ui::TrainingCurvesView curves;
        ui::ConeView cone;
        ui::PerClassView per_class;
        for (ui::AnalysisView* view : std::initializer_list<ui::AnalysisView*>{&report, &cone, &weights, &la, &per_class, &curves}) {
            view->resize(1000, 700);
            write(*view);
        }
        // The layer-wise statistics (/layers, ltlab layers --out), when the run has them.
        data.layer_results.push_back({QFileInfo(QString::fromLocal8Bit(run_path)).fileName(), QString::fromLocal8Bit(run_path),
                                      std::make_shared<const std::vector<LayerRun>>(readLayerResults(run_path)), {}});
        if (!data.layer_results.back().runs->empty()) {
            ui::LayersView layers;
            layers.resize(1000, 700);
            write(layers);
        }
        // The papers' figure set, one figure at a time (the baseline comparison only with a baseline).
        ui::FigureSetView figure_set;
        figure_set.resize(1000, 700);
        if (!std::isnan(weight_decay)) figure_set.setWeightDecayOverride(weight_decay);
        for (const auto figure : ui::FigureSetView::allFigures()) {
            if (figure == ui::FigureSetView::Figure::AccuracyVsBaseline && !baseline) continue;
            figure_set.setFigure(figure);
            write(figure_set);
        }
        if (display) {
            ui::GeometryView view; // a QOpenGLWidget gets its context only when shown
            // The raster's shape follows --size: a column's 4:3, a page's 2:1.
            if (ui::figureSize() == ui::FigureSize::Page)
                view.resize(1000, 520);
            else
                view.resize(800, 600);
            view.show();
            QElapsedTimer waited;
            waited.start();
            while ((!view.windowHandle() || !view.windowHandle()->isExposed() || view.vtkWidget()->framesRendered() == 0) &&
                   waited.elapsed() < 10000)
                QApplication::processEvents(QEventLoop::AllEvents, 50);
            if (view.vtkWidget()->framesRendered() == 0) { // an X server without usable OpenGL
                std::fprintf(stderr, "ltlab figures: OpenGL did not start on display %s, so no 3D geometry figure "
                                     "(the 2D figures are written)\n", std::getenv("DISPLAY"));
                return 0;
            }
            view.showData(data);
            QApplication::processEvents();
            write(view);
        } else {
            std::fprintf(stderr, "ltlab figures: no X display, so no 3D geometry figure (VTK renders through X; "
                                 "run `xvfb-run -a ltlab figures ...` for it)\n");
        }
        return 0;
    } catch (const UsageError& e) {
        std::fprintf(stderr, "ltlab figures: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ltlab figures: %s\n", e.what());
        return 2;
    }
}
