// Frame rate of the 3D geometry view with many classes and a large sample
// cloud (issue 4's goal: at least 30 frames/s with C = 1000 and 20,000 points
// under Xvfb's software OpenGL; issue 13: also with class labels and a class
// filter). Orbits the camera once per setting (labels x filter) and prints
// the frame rate of each. Run under an X server:
//   xvfb-run -a -s "-screen 0 1920x1080x24" build/bin/ltlab_view_benchmark [CLASSES] [SAMPLES_PER_CLASS]

#include <QApplication>
#include <QElapsedTimer>
#include <QImage>
#include <QTemporaryDir>
#include <QWindow>

#include <vtkCamera.h>
#include <vtkRenderer.h>

#include <cstdio>
#include <cstdlib>

#include "class_filter.h"
#include "class_labels.h"
#include "geometry_view.h"
#include "ltlab/analysis.h"
#include "ltlab/geometry.h"
#include "ltlab/synthetic.h"
#include "vtk_widget.h"

int main(int argc, char** argv) {
    if (qEnvironmentVariableIsEmpty("DISPLAY")) {
        std::fprintf(stderr, "ltlab_view_benchmark: no DISPLAY; run it under xvfb-run -a\n");
        return 2;
    }
    QApplication app(argc, argv);
    const int classes = argc > 1 ? std::atoi(argv[1]) : 1000;
    const int per_class = argc > 2 ? std::atoi(argv[2]) : 20;
    QTemporaryDir dir;
    const std::string path = dir.filePath("bench.h5").toStdString();
    ltlab::SynthConfig cfg;
    cfg.classes = classes;
    cfg.dim = 128;
    cfg.imbalance = 100;
    cfg.max_per_class = 200;
    cfg.test_per_class = per_class;
    cfg.history = false;
    ltlab::writeSyntheticRun(path, cfg);
    const auto file = ltlab::RunFile::open(path);
    const auto& snap = file->latestSnapshot();
    QElapsedTimer timer;
    timer.start();
    auto analysis = std::make_shared<ltlab::Analysis>(ltlab::analyzeSnapshot(
        file, snap, snap.defaultSplit(), ltlab::defaultOptionsFor(*file, std::nullopt, std::nullopt)));
    ltlab::GeometryOptions options;
    options.samples_per_class = per_class;
    auto geometry = std::make_shared<ltlab::ClassGeometry3D>(ltlab::projectClassGeometry(*analysis, options));
    ltlab::addSampleCloud(*geometry, ltlab::RunFileSource(file, snap, snap.defaultSplit()));
    const double analysis_seconds = timer.elapsed() / 1e3;

    ltlab::ui::GeometryView view;
    view.resize(1280, 800);
    view.show();
    while (!view.windowHandle() || !view.windowHandle()->isExposed()) app.processEvents(QEventLoop::WaitForMoreEvents, 50);
    app.processEvents();
    timer.restart();
    view.showData({"bench.h5", analysis, file->classes(), std::nullopt, nullptr, geometry});
    {
        const int before = view.vtkWidget()->framesRendered();
        view.vtkWidget()->requestRender();
        while (view.vtkWidget()->framesRendered() == before) app.processEvents(QEventLoop::AllEvents, 5);
    }
    const double first_frame = timer.elapsed() / 1e3;
    std::printf("classes %d, sample points %d, feature dim %d\n", view.sphereCount(), view.samplePointCount(),
                static_cast<int>(cfg.dim));
    std::printf("analysis + projection + sample: %.2f s (worker thread in the workbench)\n", analysis_seconds);
    std::printf("first frame (build the scene): %.3f s\n", first_frame);
    using ltlab::ui::ClassFilter;
    using ltlab::ui::LabelMode;
    struct Setting {
        const char* name;
        LabelMode labels;
        ClassFilter::Kind filter;
        int k;
    };
    const Setting settings[] = {
        {"no labels, all classes", LabelMode::None, ClassFilter::Kind::All, 0},
        {"labels picked + extremes, all classes", LabelMode::PickedAndExtremes, ClassFilter::Kind::All, 0},
        {"labels all (placed without overlaps), all classes", LabelMode::All, ClassFilter::Kind::All, 0},
        {"labels all, filter few-shot", LabelMode::All, ClassFilter::Kind::Few, 0},
        {"labels picked + extremes, filter top 100", LabelMode::PickedAndExtremes, ClassFilter::Kind::TopK, 100},
    };
    for (const Setting& setting : settings) {
        ClassFilter filter;
        filter.kind = setting.filter;
        filter.k = setting.k;
        timer.restart();
        view.setFilter(filter);
        view.setLabelMode(setting.labels);
        const double rebuild = timer.elapsed() / 1e3;
        // Orbit: each frame a new camera, painted by the event loop (render, blit, composite).
        const int frames = 120;
        double vtk_seconds = 0;
        std::size_t placed = 0;
        timer.restart();
        for (int i = 0; i < frames; ++i) {
            view.vtkWidget()->renderer()->GetActiveCamera()->Azimuth(3.0);
            const int before = view.vtkWidget()->framesRendered();
            view.vtkWidget()->requestRender(); // as a mouse drag does; the event loop paints
            while (view.vtkWidget()->framesRendered() == before) app.processEvents(QEventLoop::AllEvents, 5);
            vtk_seconds += view.vtkWidget()->renderer()->GetLastRenderTimeInSeconds();
            placed += view.classLabels().placedClasses().size();
        }
        app.processEvents();
        const double seconds = timer.elapsed() / 1e3;
        std::printf("%s: %d spheres, %d sample points, %zu labels (%.0f placed a frame); rebuild %.3f s; orbit %d "
                    "frames in %.2f s = %.1f frames/s (1280 x 800 widget; VTK's own render time %.1f ms/frame, labels placed and drawn included)\n",
                    setting.name, view.sphereCount(), view.samplePointCount(), view.classLabels().labels().size(),
                    double(placed) / frames, rebuild, frames, seconds, frames / seconds, 1e3 * vtk_seconds / frames);
        if (qEnvironmentVariableIsSet("LTLAB_SCREENSHOT_DIR")) // to look at
            view.vtkWidget()->renderImage().save(QString("%1/view_benchmark_%2.png")
                                                     .arg(qEnvironmentVariable("LTLAB_SCREENSHOT_DIR"))
                                                     .arg(&setting - settings));
    }
    return 0;
}
