// The 3D view renders one sphere per class through VTK in a QOpenGLWindow
// (needs an X server: ctest runs it under xvfb-run).

#include <QFile>
#include <QImage>
#include <QTemporaryDir>
#include <QtTest>

#include <QSpinBox>
#include <QStyleOptionSpinBox>
#include <QListWidget>

#include <map>
#include <numeric>
#include <set>

#include "class_filter.h"
#include "class_labels.h"
#include "geometry_view.h"
#include "ltlab/analysis.h"
#include "ltlab/geometry.h"
#include "ltlab/synthetic.h"
#include "vtk_widget.h"

#include <vtkActor.h>
#include <vtkActorCollection.h>
#include <vtkActor2DCollection.h>
#include <vtkIntArray.h>
#include <vtkMapper.h>
#include <vtkPointData.h>
#include <vtkPolyData.h>
#include <vtkRenderer.h>
#include <vtkTextActor.h>

using namespace ltlab;
using namespace ltlab::ui;

namespace {

// A synthetic run's latest snapshot, analysed by core as the window does; view()
// projects it (and draws its sample) for given 3D options.
struct Run {
    std::shared_ptr<const RunFile> file;
    SnapshotInfo snap;
    std::shared_ptr<const Analysis> analysis;

    Run(const QTemporaryDir& dir, int classes, int dim) {
        const std::string path = dir.filePath("run.h5").toStdString();
        SynthConfig cfg;
        cfg.classes = classes;
        cfg.dim = dim;
        cfg.history = false;
        writeSyntheticRun(path, cfg);
        file = RunFile::open(path);
        snap = file->latestSnapshot();
        analysis = std::make_shared<Analysis>(
            analyzeSnapshot(file, snap, snap.defaultSplit(), defaultOptionsFor(*file, std::nullopt, std::nullopt)));
    }
    ViewData view(const GeometryOptions& options) const {
        auto geometry = std::make_shared<ClassGeometry3D>(projectClassGeometry(*analysis, options));
        addSampleCloud(*geometry, RunFileSource(file, snap, snap.defaultSplit()));
        return {"run.h5", analysis, file->classes(), std::nullopt, nullptr, geometry};
    }
};

ViewData synthesize(const QTemporaryDir& dir, int classes, int dim, const GeometryOptions& options) {
    return Run(dir, classes, dim).view(options);
}

// What the scene holds: for each per-point class array of the drawn data
// ("mean_class", "etf_class", "sample_class"), the number of points of each class.
std::map<std::string, std::map<int, int>> scenePointsPerClass(GeometryView& view) {
    std::map<std::string, std::map<int, int>> out;
    vtkActorCollection* actors = view.vtkWidget()->renderer()->GetActors();
    actors->InitTraversal();
    while (vtkActor* actor = actors->GetNextActor()) {
        auto* data = vtkPolyData::SafeDownCast(actor->GetMapper()->GetInputDataObject(0, 0));
        if (!data) continue;
        for (const char* name : {"mean_class", "etf_class", "sample_class"})
            if (auto* ids = vtkIntArray::SafeDownCast(data->GetPointData()->GetArray(name)))
                for (vtkIdType i = 0; i < ids->GetNumberOfTuples(); ++i) ++out[name][ids->GetValue(i)];
    }
    return out;
}

std::map<int, int> each(const std::vector<int>& classes, int n) {
    std::map<int, int> out;
    for (int c : classes) out[c] = n;
    return out;
}

// Asks for a frame and waits until the event loop has painted it.
void waitForFrame(GeometryView& view) {
    const int frames = view.vtkWidget()->framesRendered();
    view.vtkWidget()->requestRender();
    QTRY_VERIFY(view.vtkWidget()->framesRendered() > frames);
}

// Shows `data` in a 640 x 480 view and waits for a frame.
void showAndRender(GeometryView& view, const ViewData& data) {
    view.resize(640, 480);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    view.showData(data);
    waitForFrame(view);
}

int differentPixels(const QImage& a, const QImage& b) {
    int n = 0;
    for (int y = 0; y < std::min(a.height(), b.height()); ++y)
        for (int x = 0; x < std::min(a.width(), b.width()); ++x) n += qAbs(qGray(a.pixel(x, y)) - qGray(b.pixel(x, y))) > 40;
    return n;
}

void saveScreenshot(const QImage& image, const QString& name) {
    if (qEnvironmentVariableIsSet("LTLAB_SCREENSHOT_DIR")) image.save(qEnvironmentVariable("LTLAB_SCREENSHOT_DIR") + "/" + name);
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

    // The filter leaves exactly its classes in the scene: one mean and one ETF
    // vertex each, and their samples; the caption says what is shown.
    void filterLeavesExactlyItsClassesInTheScene() {
        QTemporaryDir dir;
        const Run run(dir, 20, 12);
        GeometryOptions options;
        options.samples_per_class = 5;
        GeometryView view;
        showAndRender(view, run.view(options));
        QCOMPARE(scenePointsPerClass(view)["mean_class"].size(), std::size_t(20)); // all classes by default
        const auto& counts = run.analysis->per_class.train_count;
        const auto many = run.analysis->many_threshold, few = run.analysis->few_threshold;
        std::vector<int> few_shot, many_shot, top4;
        for (int c = 0; c < 20; ++c) {
            if (counts[c] < few) few_shot.push_back(c);
            if (counts[c] > many) many_shot.push_back(c);
        }
        QVERIFY(few_shot.size() >= 3 && many_shot.size() >= 3);
        std::vector<int> by_count(20);
        std::iota(by_count.begin(), by_count.end(), 0);
        std::stable_sort(by_count.begin(), by_count.end(), [&](int a, int b) { return counts[a] > counts[b]; });
        top4.assign(by_count.begin(), by_count.begin() + 4);
        std::sort(top4.begin(), top4.end());
        struct Case {
            ClassFilter filter;
            std::vector<int> expected;
            QString caption;
        };
        ClassFilter f_few, f_many, f_top, f_chosen;
        f_few.kind = ClassFilter::Kind::Few;
        f_many.kind = ClassFilter::Kind::Many;
        f_top.kind = ClassFilter::Kind::TopK;
        f_top.k = 4;
        f_chosen.kind = ClassFilter::Kind::Chosen;
        f_chosen.chosen = {2, 5, 11};
        const std::vector<Case> cases{
            {f_few, few_shot, QString("%1 of 20 classes: few-shot (< %2 training samples)").arg(few_shot.size()).arg(few)},
            {f_many, many_shot, QString("%1 of 20 classes: many-shot (> %2 training samples)").arg(many_shot.size()).arg(many)},
            {f_top, top4, "4 of 20 classes: the 4 with the most training samples"},
            {f_chosen, {2, 5, 11}, "3 of 20 classes: chosen"}};
        for (const Case& c : cases) {
            view.setFilter(c.filter);
            auto scene = scenePointsPerClass(view);
            QCOMPARE(scene["mean_class"], each(c.expected, 1));
            QCOMPARE(scene["etf_class"], each(c.expected, 1));
            QCOMPARE(scene["sample_class"], each(c.expected, 5));
            QCOMPARE(view.sphereCount(), static_cast<int>(c.expected.size()));
            QCOMPARE(view.samplePointCount(), static_cast<int>(5 * c.expected.size()));
            QVERIFY2(view.caption().contains(c.caption + QString("; %1 samples").arg(5 * c.expected.size())),
                     qPrintable(view.caption()));
            // The CSV holds what is drawn: a mean, a row and a vertex per class, and the samples.
            QCOMPARE(view.csv().count("\nmean,"), static_cast<int>(c.expected.size()));
            QCOMPARE(view.csv().count("\nsample,"), static_cast<int>(5 * c.expected.size()));
        }
        // Unticking a class in the list draws the others (as the list shows them).
        view.setFilter(f_few);
        QListWidget* list = view.filterBar()->classList();
        QListWidgetItem* dropped = nullptr;
        for (int i = 0; i < list->count(); ++i)
            if (list->item(i)->data(Qt::UserRole).toInt() == few_shot.front()) dropped = list->item(i);
        QVERIFY(dropped && dropped->checkState() == Qt::Checked);
        dropped->setCheckState(Qt::Unchecked);
        QCOMPARE(scenePointsPerClass(view)["mean_class"], each({few_shot.begin() + 1, few_shot.end()}, 1));
        QVERIFY(view.caption().contains(QString("%1 of 20 classes: chosen").arg(few_shot.size() - 1)));
        saveScreenshot(view.vtkWidget()->renderImage(), "geometry_filter_chosen.png");
    }

    // Labels: the picked class and the 3 largest and 3 smallest shown classes by
    // default, named as in the file (numbers without names); none; all that fit.
    void labelsNameThePickedAndTheExtremeClasses() {
        QTemporaryDir dir;
        const Run run(dir, 20, 12);
        ViewData data = run.view(GeometryOptions());
        GeometryView view;
        showAndRender(view, data);
        QCOMPARE(view.labelMode(), LabelMode::PickedAndExtremes);
        const auto& g = *data.geometry;
        // Pick a middle class (neither among the largest nor the smallest): the
        // first whose sphere is not hidden behind another from this side.
        int picked = -1;
        vtkRenderer* renderer = view.vtkWidget()->renderer();
        for (int c = 5; c < 15 && picked < 0; ++c) {
            renderer->SetWorldPoint(g.means[c][0], g.means[c][1], g.means[c][2], 1.0);
            renderer->WorldToDisplay();
            const double* d = renderer->GetDisplayPoint();
            if (view.pickAt(d[0], d[1]) == c) picked = c;
        }
        QVERIFY(picked >= 0);
        auto texts = [&view] {
            std::map<int, QString> out;
            for (const auto& label : view.classLabels().labels()) out[label.cls] = label.text;
            return out;
        };
        // Synthetic counts fall with the class id: 0-2 are the largest, 17-19 the smallest.
        std::map<int, QString> expected;
        for (int c : {picked, 0, 1, 2, 17, 18, 19}) expected[c] = QString("class_%1").arg(c);
        QCOMPARE(texts(), expected);
        QCOMPARE(view.classLabels().labels().front().cls, picked); // first placed
        waitForFrame(view);
        const auto placed = view.classLabels().placedClasses();
        QCOMPARE(std::set<int>(placed.begin(), placed.end()).size(), expected.size()); // all of them are drawn
        const QImage with_labels = view.vtkWidget()->renderImage();
        saveScreenshot(with_labels, "geometry_labels_picked_extremes.png");

        view.setLabelMode(LabelMode::None);
        QVERIFY(view.classLabels().labels().empty());
        const QImage without = view.vtkWidget()->renderImage();
        const int changed = differentPixels(with_labels, without);
        QVERIFY2(changed > 300, qPrintable(QString("the labels changed %1 pixels").arg(changed))); // text and frames are drawn

        view.setLabelMode(LabelMode::All);
        QCOMPARE(view.classLabels().labels().size(), std::size_t(20));
        saveScreenshot(view.vtkWidget()->renderImage(), "geometry_labels_all.png");
        QVERIFY(!view.classLabels().placedClasses().empty());

        // Without names in the file: the class numbers.
        data.classes.names.clear();
        view.setLabelMode(LabelMode::PickedAndExtremes);
        view.showData(data);
        for (const auto& [c, text] : texts()) QCOMPARE(text, QString::number(c));
    }

    // The axis triad names the axes the view plots: principal components, or
    // the classifier rows of the chosen classes.
    void axisTriadNamesTheAxes() {
        QTemporaryDir dir;
        const Run run(dir, 8, 12);
        GeometryView view;
        showAndRender(view, run.view(GeometryOptions()));
        QCOMPARE(view.vtkWidget()->axisNames(), QStringList({"PC1", "PC2", "PC3"}));
        GeometryOptions rows;
        rows.axes = GeometryAxes::ClassifierRows;
        rows.axis_classes = {0, 3, 5};
        view.showData(run.view(rows));
        QCOMPARE(view.vtkWidget()->axisNames(), QStringList({"w(class_0)", "w(class_3)", "w(class_5)"}));
        saveScreenshot(view.vtkWidget()->renderImage(), "geometry_classifier_axes.png");
    }

    // A click on the spin box's up arrow asks for a new sample (the window
    // recomputes it as here) and the view draws it; the caption fits the view.
    void samplesSpinBoxArrowRedrawsTheSample() {
        QTemporaryDir dir;
        const Run run(dir, 12, 12);
        GeometryOptions options;
        options.samples_per_class = 5;
        GeometryView view;
        int requests = 0;
        QObject::connect(&view, &GeometryView::optionsChanged, &view, [&] {
            ++requests;
            view.showData(run.view(view.options())); // what MainWindow::reanalyzeCurrent does, on a worker
        });
        showAndRender(view, run.view(options));
        ClassFilter few;
        few.kind = ClassFilter::Kind::Few;
        view.setFilter(few);
        const int shown = view.sphereCount();
        QCOMPARE(view.samplePointCount(), 5 * shown);
        QSpinBox* box = view.samplesBox();
        QStyleOptionSpinBox opt;
        opt.initFrom(box);
        opt.subControls = QStyle::SC_SpinBoxUp;
        opt.stepEnabled = QAbstractSpinBox::StepUpEnabled | QAbstractSpinBox::StepDownEnabled;
        const QRect up = box->style()->subControlRect(QStyle::CC_SpinBox, &opt, QStyle::SC_SpinBoxUp, box);
        QTest::mouseClick(box, Qt::LeftButton, {}, up.center());
        QCOMPARE(box->value(), 15);
        QTRY_COMPARE(view.samplePointCount(), 15 * shown); // no Enter, no focus change
        QCOMPARE(requests, 1);
        QCOMPARE(scenePointsPerClass(view)["sample_class"], each(view.shownClasses(), 15));
        // Every caption line fits the view's width.
        vtkRenderer* renderer = view.vtkWidget()->renderer();
        vtkActor2DCollection* actors = renderer->GetActors2D();
        actors->InitTraversal();
        int captions = 0;
        while (vtkActor2D* actor = actors->GetNextActor2D())
            if (auto* text = vtkTextActor::SafeDownCast(actor); text && QString(text->GetInput()).startsWith("PCA")) {
                double size[2];
                text->GetSize(renderer, size);
                QVERIFY2(size[0] + 0.01 * renderer->GetSize()[0] <= renderer->GetSize()[0],
                         qPrintable(QString("caption %1 px wide in %2").arg(size[0]).arg(renderer->GetSize()[0])));
                ++captions;
            }
        QCOMPARE(captions, 1);
        waitForFrame(view);
        saveScreenshot(VtkWidget::grabWithScenes(&view).toImage(), "geometry_controls.png");
    }
};

QTEST_MAIN(TestGeometry)
#include "test_geometry.moc"
