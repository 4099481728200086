// The 3D view renders one sphere per class through VTK in a QOpenGLWidget
// (needs an X server: ctest runs it under xvfb-run).

#include <QFile>
#include <QImage>
#include <QTemporaryDir>
#include <QtTest>

#include "geometry_view.h"
#include "ltlab/analysis.h"
#include "ltlab/geometry.h"
#include "ltlab/synthetic.h"
#include "vtk_widget.h"

#include <vtkRenderer.h>

using namespace ltlab;
using namespace ltlab::ui;

namespace {

// A synthetic run's latest snapshot, analysed and projected by core as the window does.
ViewData synthesize(const QTemporaryDir& dir, int classes, int dim, const GeometryOptions& options) {
    const std::string path = dir.filePath("run.h5").toStdString();
    SynthConfig cfg;
    cfg.classes = classes;
    cfg.dim = dim;
    cfg.history = false;
    writeSyntheticRun(path, cfg);
    const auto file = RunFile::open(path);
    const auto& snap = file->latestSnapshot();
    auto analysis = std::make_shared<Analysis>(
        analyzeSnapshot(file, snap, snap.defaultSplit(), defaultOptionsFor(*file, std::nullopt, std::nullopt)));
    auto geometry = std::make_shared<ClassGeometry3D>(projectClassGeometry(*analysis, options));
    addSampleCloud(*geometry, RunFileSource(file, snap, snap.defaultSplit()));
    return {"run.h5", analysis, file->classes(), std::nullopt, nullptr, geometry};
}

} // namespace

class TestGeometry : public QObject {
    Q_OBJECT
private slots:
    void rendersOneSpherePerClass() {
        QTemporaryDir dir;
        const ViewData data = synthesize(dir, 7, 12, GeometryOptions());
        GeometryView view;
        view.resize(640, 480);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        view.showData(data);
        QTest::qWait(200);
        QCOMPARE(view.sphereCount(), 7);
        const QString png = dir.filePath("geometry.png");
        QVERIFY(view.exportFigure(png, 96));
        const QImage image(png);
        QVERIFY(!image.isNull());
        int coloured = 0;
        for (int y = 0; y < image.height(); y += 2)
            for (int x = 0; x < image.width(); x += 2) {
                const QColor c = image.pixelColor(x, y);
                if (qAbs(c.red() - c.blue()) > 60) ++coloured; // blue (head) or red (tail) spheres, not the white background
            }
        QVERIFY2(coloured > 200, qPrintable(QString("only %1 coloured pixels").arg(coloured)));
        // The widget itself shows the same picture (the blit into Qt's framebuffer works).
        const QImage shown = view.vtkWidget()->grabFramebuffer();
        if (qEnvironmentVariableIsSet("LTLAB_TEST_OUTPUT")) { // to look at them
            image.save(qEnvironmentVariable("LTLAB_TEST_OUTPUT") + "/geometry_export.png");
            shown.save(qEnvironmentVariable("LTLAB_TEST_OUTPUT") + "/geometry_widget.png");
        }
        int shown_coloured = 0;
        for (int y = 0; y < shown.height(); y += 2)
            for (int x = 0; x < shown.width(); x += 2)
                if (qAbs(shown.pixelColor(x, y).red() - shown.pixelColor(x, y).blue()) > 60) ++shown_coloured;
        QVERIFY2(shown_coloured > 200, qPrintable(QString("widget shows %1 coloured pixels").arg(shown_coloured)));
    }

    // Samples, picking by a click on a sphere, and the GL2PS exports.
    void showsSamplesPicksClassesAndExportsVectorFiles() {
        QTemporaryDir dir;
        GeometryOptions options;
        options.samples_per_class = 15;
        const ViewData data = synthesize(dir, 6, 10, options);
        const auto& geometry = data.geometry;
        const auto& analysis = data.analysis;
        GeometryView view;
        view.resize(640, 480);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        view.showData(data);
        QTest::qWait(200);
        QCOMPARE(view.samplePointCount(), 90);

        // Click each class mean where it appears on screen: the nearest sphere
        // under the cursor is picked (another one can hide it from this side).
        int hits = 0;
        vtkRenderer* renderer = view.vtkWidget()->renderer();
        for (std::size_t k = 0; k < geometry->classes.size(); ++k) {
            renderer->SetWorldPoint(geometry->means[k][0], geometry->means[k][1], geometry->means[k][2], 1.0);
            renderer->WorldToDisplay();
            const double* d = renderer->GetDisplayPoint();
            const double dpr = view.vtkWidget()->devicePixelRatioF();
            const QPoint widget_pos(qRound(d[0] / dpr), qRound(view.vtkWidget()->height() - 1 - d[1] / dpr));
            QTest::mouseClick(view.vtkWidget(), Qt::LeftButton, {}, widget_pos);
            QVERIFY(view.pickedClass() >= 0);
            if (view.pickedClass() == geometry->classes[k]) ++hits;
        }
        QVERIFY2(hits >= 4, qPrintable(QString("%1 of 6 clicks picked their class").arg(hits)));
        const int c = view.pickedClass();
        QVERIFY(view.pickedText().contains(QString::fromStdString(data.classes.names[static_cast<std::size_t>(c)])));
        QVERIFY(view.pickedText().contains(QString::number(analysis->per_class.weight_norm[static_cast<std::size_t>(c)], 'g', 5)));
        QCOMPARE(view.pickAt(1, 1), -1); // the background corner: nothing

        const QString pdf = dir.filePath("geometry.pdf"), svg = dir.filePath("geometry.svg");
        QVERIFY(view.exportFigure(pdf, 192));
        QVERIFY(view.exportFigure(svg, 192));
        QFile pdf_file(pdf), svg_file(svg);
        QVERIFY(pdf_file.open(QIODevice::ReadOnly) && svg_file.open(QIODevice::ReadOnly));
        const QByteArray pdf_bytes = pdf_file.readAll(), svg_bytes = svg_file.readAll();
        QVERIFY(pdf_bytes.startsWith("%PDF"));
        QVERIFY(pdf_bytes.contains("PCA of the class means")); // the caption, as vector text
        QVERIFY(svg_bytes.contains("<svg"));
        QVERIFY(svg_bytes.contains("<image")); // the 3D scene, as a raster
        QVERIFY(svg_bytes.contains("PCA of the class means"));
        if (qEnvironmentVariableIsSet("LTLAB_TEST_OUTPUT")) {
            QFile::copy(pdf, qEnvironmentVariable("LTLAB_TEST_OUTPUT") + "/geometry.pdf");
            QFile::copy(svg, qEnvironmentVariable("LTLAB_TEST_OUTPUT") + "/geometry.svg");
            view.exportFigure(qEnvironmentVariable("LTLAB_TEST_OUTPUT") + "/geometry_samples.png", 96);
        }
    }
};

QTEST_MAIN(TestGeometry)
#include "test_geometry.moc"
