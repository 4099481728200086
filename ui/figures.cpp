// `ltlab figures`: every view of one snapshot written to files, without a
// window. The 2D views render through QPainter, so no display is needed
// (the offscreen platform is used when DISPLAY is unset). The 3D view renders
// through VTK, which needs X: it is written when DISPLAY is set.

#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QWindow>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "analysis_task.h"
#include "analysis_view.h"
#include "cone_view.h"
#include "geometry_view.h"
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
                                              long long samples_per_class) {
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
        ui::ViewData data;
        data.run_name = QString::fromLocal8Bit(run_path);
        data.analysis = std::make_shared<Analysis>(
            analyzeSnapshot(file, snap, *split, defaultOptionsFor(*file, std::nullopt, std::nullopt)));
        data.classes = file->classes();
        data.history = file->history();
        data.cone = std::make_shared<ConeHistograms>(coneHistograms(RunFileSource(file, snap, *split)));
        data.compare = ui::stageOneComparison(file, snap, *split);
        if (data.compare) data.compare_label = "end of stage 1";
        QDir dir(QString::fromLocal8Bit(out_dir));
        if (!dir.mkpath(".")) throw InputError(out_dir, "", "cannot create the output folder");
        ui::ReportView report;
        ui::WeightNormView weights;
        ui::LogitAdjustmentView la;
        ui::TrainingCurvesView curves;
        ui::ConeView cone;
        ui::PerClassView per_class;
        const std::vector<ui::AnalysisView*> views{&report, &cone, &weights, &la, &per_class, &curves};
        const QStringList wanted = QString(formats).split(',', Qt::SkipEmptyParts);
        for (ui::AnalysisView* view : views) {
            view->resize(1000, 700);
            view->showData(data);
            QStringList targets;
            if (view == &report)
                targets << dir.filePath("report.txt");
            else
                for (const QString& format : wanted) targets << dir.filePath(view->fileStem() + "." + format.trimmed());
            for (const QString& target : targets) {
                if (!view->exportFigure(target, dpi)) throw InputError(target.toStdString(), "", "cannot write the figure");
                std::printf("%s\n", qPrintable(target));
            }
            const QString csv_path = dir.filePath(view->fileStem() + (view == &report ? ".json" : ".csv"));
            QFile csv(csv_path);
            if (!csv.open(QIODevice::WriteOnly | QIODevice::Text) || csv.write(view->csv().toUtf8()) < 0)
                throw InputError(csv_path.toStdString(), "", "cannot write the data");
            std::printf("%s\n", qPrintable(csv_path));
            for (const auto& [suffix, table] : view->extraCsv()) {
                const QString extra_path = dir.filePath(view->fileStem() + suffix + ".csv");
                QFile extra(extra_path);
                if (!extra.open(QIODevice::WriteOnly | QIODevice::Text) || extra.write(table.toUtf8()) < 0)
                    throw InputError(extra_path.toStdString(), "", "cannot write the data");
                std::printf("%s\n", qPrintable(extra_path));
            }
        }
        if (std::getenv("DISPLAY")) {
            GeometryOptions options;
            options.samples_per_class = samples_per_class;
            auto geometry = std::make_shared<ClassGeometry3D>(projectClassGeometry(*data.analysis, options));
            addSampleCloud(*geometry, RunFileSource(file, snap, *split));
            data.geometry = geometry;
            ui::GeometryView view; // a QOpenGLWidget gets its context only when shown
            view.resize(1000, 700);
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
            for (const QString& format : wanted) {
                const QString target = dir.filePath(view.fileStem() + "." + format.trimmed());
                if (!view.exportFigure(target, dpi)) throw InputError(target.toStdString(), "", "cannot write the figure");
                std::printf("%s\n", qPrintable(target));
            }
            const QString csv_path = dir.filePath(view.fileStem() + ".csv");
            QFile csv(csv_path);
            if (!csv.open(QIODevice::WriteOnly | QIODevice::Text) || csv.write(view.csv().toUtf8()) < 0)
                throw InputError(csv_path.toStdString(), "", "cannot write the data");
            std::printf("%s\n", qPrintable(csv_path));
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
