// The 3D view renders one sphere per class through VTK in a QOpenGLWidget
// (needs an X server: ctest runs it under xvfb-run).

#include <QImage>
#include <QTemporaryDir>
#include <QtTest>

#include "geometry_view.h"
#include "ltlab/analysis.h"
#include "ltlab/geometry.h"
#include "ltlab/synthetic.h"
#include "vtk_widget.h"

using namespace ltlab;
using namespace ltlab::ui;

class TestGeometry : public QObject {
    Q_OBJECT
private slots:
    void rendersOneSpherePerClass() {
        QTemporaryDir dir;
        const std::string path = dir.filePath("run.h5").toStdString();
        SynthConfig cfg;
        cfg.classes = 7;
        cfg.dim = 12;
        cfg.history = false;
        writeSyntheticRun(path, cfg);
        const auto file = RunFile::open(path);
        const auto& snap = file->latestSnapshot();
        auto analysis = std::make_shared<Analysis>(
            analyzeSnapshot(file, snap, snap.defaultSplit(), defaultOptionsFor(*file, std::nullopt, std::nullopt)));
        ViewData data{"run.h5", analysis, file->classes(), std::nullopt, nullptr,
                      std::make_shared<ClassGeometry3D>(projectClassGeometry(*analysis))};
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
};

QTEST_MAIN(TestGeometry)
#include "test_geometry.moc"
