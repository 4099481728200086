// Baseline images of every 2D view of a generated run (issue 11, F3D's
// testing/baselines style): each view at the size it has in the default
// window and each figure it exports at column width is compared with a PNG
// under tests/ui/baselines/ within a tolerance, and nothing in any plot may be
// clipped (view_checks.h). LTLAB_UPDATE_BASELINES=1 writes new baselines
// (docs/architecture.md, "Baseline images"). Runs under xvfb-run.

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QPainter>
#include <QTemporaryDir>
#include <QtTest>

#include <memory>

#include <qcustomplot.h>

#include "analysis_task.h"
#include "cone_lab_view.h"
#include "cone_view.h"
#include "figure_set_view.h"
#include "layer_fixture.h"
#include "layers_view.h"
#include "logit_adjustment_view.h"
#include "ltlab/cone_lab.h"
#include "ltlab/layer_stats.h"
#include "ltlab/synthetic.h"
#include "per_class_view.h"
#include "stage2_view.h"
#include "training_curves_view.h"
#include "view_checks.h"
#include "weight_norm_view.h"

using namespace ltlab;
using namespace ltlab::ui;

namespace {

// A view's tab page in the default 1200 x 800 window (the Runs dock beside it).
const QSize kWindowView(900, 640);
// Column-wide figures are compared at 150 dpi (525 x 390 pixels): small baselines, every label legible.
constexpr double kBaselineDpi = 150;

// The names of Fashion-MNIST, the Training dock's default dataset.
const std::vector<std::string> kNames{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

} // namespace

class TestBaselines : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    ViewData data_;
    QStringList mismatches_; // of the current test function

    // The window-size image and the clip check of `view` as it is now, then
    // every figure it exports at column width (compared) and page width (checked).
    void check(AnalysisView& view, const QString& name) {
        view.resize(kWindowView);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        QStringList problems = test::viewProblems(&view);
        for (QCustomPlot* plot : view.findChildren<QCustomPlot*>())
            if (plot->isVisibleTo(&view)) problems << test::edgeProblems(plot->toPixmap().toImage(), name + " " + plot->objectName());
        mismatches_ << test::compareWithBaseline(view.grab().toImage(), name + "_window");
        for (const FigureSize size : {FigureSize::Column, FigureSize::Page}) {
            setFigureSize(size);
            const QTemporaryDir out;
            const QString path = QDir(out.path()).filePath(name + ".png");
            bool written = false;
            problems << test::problemsWhile(&view, [&] { written = view.exportFigure(path, kBaselineDpi); });
            QVERIFY2(written, qPrintable(path));
            if (size == FigureSize::Page) continue;
            for (const QFileInfo& png : QDir(out.path()).entryInfoList({"*.png"}, QDir::Files, QDir::Name)) {
                const QImage image(png.filePath());
                problems << test::edgeProblems(image, png.fileName());
                mismatches_ << test::compareWithBaseline(image, png.completeBaseName() + "_column");
            }
        }
        setFigureSize(FigureSize::Column);
        problems.removeDuplicates();
        QVERIFY2(problems.isEmpty(), qPrintable("\n" + problems.join("\n")));
    }

    void verifyBaselines() {
        mismatches_.removeAll(QString());
        const QString text = mismatches_.join("\n");
        mismatches_.clear();
        QVERIFY2(text.isEmpty(), qPrintable("\n" + text));
    }

private slots:
    void initTestCase() {
        const std::string path = dir_.filePath("fashion-lt.h5").toStdString();
        SynthConfig cfg;
        cfg.classes = 10;
        cfg.dim = 16;
        cfg.snapshots = 3;
        cfg.noise = 1.3;
        cfg.seed = 11;
        writeSyntheticRun(path, cfg);
        const auto file = RunFile::open(path);
        AnalysisRequest request; // as the window asks for it: the last snapshot, epoch 1 overlaid and as the baseline
        request.snapshot = QString::fromStdString(file->latestSnapshot().name);
        request.compare_file = file;
        request.compare_snapshot = "epoch_0001";
        request.geometry.samples_per_class = 0;
        const AnalysisOutcome outcome = analyzeForViews(file, request);
        QVERIFY2(outcome.error.isEmpty(), qPrintable(outcome.error));
        data_ = viewDataFor(outcome, file->history());
        data_.classes.names = kNames; // a Fashion-MNIST-LT run's class names
        QString label;
        data_.baseline = analyzeBaseline(*file, file, "epoch_0001", data_.analysis->split, &label);
        data_.baseline_label = label;
        data_.weight_decay = WeightDecayChoice{5e-4, "test"};
    }

    void coneView() {
        ConeView view;
        view.showData(data_);
        check(view, "cone");
        verifyBaselines();
    }

    void weightNorms() {
        WeightNormView view;
        view.showData(data_);
        check(view, "weight_norms");
        verifyBaselines();
    }

    void weightNormBiases() {
        WeightNormView view;
        view.showData(data_);
        view.findChild<QCheckBox*>()->setChecked(true);
        check(view, "weight_norms_bias");
        verifyBaselines();
    }

    void logitAdjustment() {
        LogitAdjustmentView view;
        view.showData(data_);
        check(view, "logit_adjustment");
        verifyBaselines();
    }

    void perClassWithTheTauOfTheSlider() {
        LogitAdjustmentView la;
        PerClassView view;
        connect(&la, &LogitAdjustmentView::tauChanged, &view, &PerClassView::setLogitAdjustment);
        view.showData(data_);
        la.showData(data_); // the best tau of the sweep, in the per-class legend
        check(view, "per_class");
        verifyBaselines();
    }

    void trainingCurves() {
        TrainingCurvesView view;
        view.showData(data_);
        check(view, "training_curves");
        verifyBaselines();
    }

    // The Cone lab's first preset (it needs no run file), once computed.
    void coneLab() {
        ConeLabView view;
        view.setSettings(coneLabPreset(0));
        view.resize(kWindowView);
        view.show();
        QTRY_VERIFY_WITH_TIMEOUT(view.computations() >= 1 && !view.busy(), 60000);
        check(view, "cone_lab");
        verifyBaselines();
    }

    // The stage-2 sandbox on the generated run's last snapshot, with its default settings.
    void stage2Sandbox() {
        Stage2View view;
        ViewData data;
        data.path = dir_.filePath("fashion-lt.h5");
        data.snapshot = QString::fromStdString(RunFile::open(data.path.toStdString())->latestSnapshot().name);
        view.showData(data);
        view.resize(kWindowView);
        view.show();
        QTRY_VERIFY_WITH_TIMEOUT(view.runs() == 1 && !view.busy(), 60000);
        check(view, "stage2_sandbox");
        verifyBaselines();
    }

    // The Layers tab with two result groups of known numbers (no `ltlab layers` needed):
    // noise through the trained network, and a labelled batch through the initial one.
    void layersView() {
        const QString path = dir_.filePath("layers.h5");
        SynthConfig cfg;
        cfg.classes = 4;
        cfg.dim = 8;
        cfg.snapshots = 1;
        writeSyntheticRun(path.toStdString(), cfg);
        writeLayerResults(path.toStdString(), test::layerGroup("noise", "trained", 0.3, 99));
        writeLayerResults(path.toStdString(), test::layerGroup("train", "init", 0.4, 99)); // cosines up to 0.9
        ViewData data;
        data.run_name = "layers.h5";
        data.path = path;
        data.layer_results.push_back(
            {"layers.h5", path, std::make_shared<const std::vector<LayerRun>>(readLayerResults(path.toStdString())), {}});
        LayersView view;
        view.showData(data);
        check(view, "layers");
        verifyBaselines();
    }

    // The checks find what the issue saw: markers half cut at the edges, a
    // peak on the frame, a label behind a bar, a legend cut off.
    void theClipCheckFindsClippedMarkersPeaksLabelsAndLegends() {
        QCustomPlot& plot = *makePlot(nullptr, "test"); // the legend below the axes, as in every view
        const std::unique_ptr<QCustomPlot> owner(&plot);
        plot.setViewport(QRect(0, 0, 400, 300)); // hidden: no resize event sets it
        QCPGraph* markers = plot.addGraph();
        markers->setName("points");
        markers->setData({0, 1, 2}, {0, 1, 2});
        markers->setLineStyle(QCPGraph::lsNone);
        markers->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 8));
        auto* bars = new QCPBars(plot.xAxis, plot.yAxis);
        bars->setData({1}, {1.5});
        auto* label = new QCPItemText(&plot);
        label->position->setCoords(1, 1);
        label->setText("medium");
        plot.legend->setVisible(true);
        plot.rescaleAxes();
        plot.replot();
        const QString found = test::clipProblems(&plot).join("\n");
        QVERIFY2(found.contains("'points' (QCPGraph): 2 markers cut by the axis rect"), qPrintable(found));
        QVERIFY2(found.contains("text 'medium'") && found.contains("overlaps a bar"), qPrintable(found));
        markers->setLineStyle(QCPGraph::lsLine);
        markers->setName(QString("a legend entry far wider than the plot that holds it, so it is cut ").repeated(2));
        plot.replot();
        const QString more = test::clipProblems(&plot).join("\n");
        QVERIFY2(more.contains("the line's peak lies on the frame"), qPrintable(more));
        QVERIFY2(more.contains("QCPPlottableLegendItem") && more.contains("its text needs"), qPrintable(more)); // cut
    }

    // A changed view fails its baseline, and the test says where the images are.
    void aChangedImageFailsItsBaseline() {
        if (qEnvironmentVariableIntValue("LTLAB_UPDATE_BASELINES") == 1) QSKIP("writing baselines");
        const QString name = "weight_norms_column";
        QImage image(test::baselinePath(name));
        QVERIFY(!image.isNull());
        QVERIFY(test::compareWithBaseline(image, name).isEmpty());
        QPainter(&image).fillRect(QRect(100, 100, 40, 30), Qt::black); // 0.6 % of the pixels
        const QString message = test::compareWithBaseline(image, name);
        QVERIFY2(message.contains(name + ".diff.png") && message.contains(name + ".actual.png"), qPrintable(message));
        QVERIFY2(message.startsWith(name + ": ") && message.contains("differ from"), qPrintable(message));
    }

    void paperFigures() {
        FigureSetView view;
        view.showData(data_);
        for (const auto figure : FigureSetView::allFigures()) {
            view.setFigure(figure);
            check(view, view.fileStem());
        }
        verifyBaselines();
    }
};

QTEST_MAIN(TestBaselines)
#include "test_baselines.moc"
