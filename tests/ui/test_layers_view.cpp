// The Layers tab (issue 10): each /layers statistic against the layer index,
// one line per (run, result group) of every open run, nulls as gaps, its CSV
// and exports; and Compute, which runs `ltlab layers` (LTLAB_BIN) in a child
// process, after which the run is re-read and its new group appears.

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

#include <qcustomplot.h>

#include "layer_fixture.h"
#include "layers_view.h"
#include "ltlab/layer_stats.h"
#include "ltlab/synthetic.h"
#include "main_window.h"

using namespace ltlab;
using namespace ltlab::ui;

namespace {

// LTLAB_SCREENSHOT_DIR=DIR: the test saves what a user sees, to look at.
void screenshot(QWidget* w, const QString& name) {
    const QString dir = qEnvironmentVariable("LTLAB_SCREENSHOT_DIR");
    if (dir.isEmpty()) return;
    QCoreApplication::processEvents();
    w->grab().save(dir + "/" + name + ".png");
}

QString screenshotDir() { return qEnvironmentVariable("LTLAB_SCREENSHOT_DIR"); }


// Graph `name`'s points.
QVector<QPointF> points(QCustomPlot* plot, const QString& name) {
    QVector<QPointF> out;
    for (int i = 0; i < plot->graphCount(); ++i)
        if (plot->graph(i)->name() == name)
            for (auto it = plot->graph(i)->data()->constBegin(); it != plot->graph(i)->data()->constEnd(); ++it)
                out << QPointF(it->key, it->value);
    return out;
}

QStringList legendNames(QCustomPlot* plot) {
    QStringList out;
    for (int i = 0; i < plot->legend->itemCount(); ++i)
        if (auto* item = qobject_cast<QCPPlottableLegendItem*>(plot->legend->item(i))) out << item->plottable()->name();
    return out;
}

// Runs LTLAB_BIN with `args`, waiting for it (no timing asserted).
bool runLtlab(const QStringList& args, QString* errors = nullptr) {
    QProcess p;
    p.start(qEnvironmentVariable("LTLAB_BIN"), args);
    const bool ok = p.waitForFinished(-1) && p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
    if (errors) *errors = QString::fromLocal8Bit(p.readAllStandardError());
    if (!ok) qWarning("ltlab %s failed: %s", qPrintable(args.join(' ')), p.readAllStandardError().constData());
    return ok;
}

} // namespace

class TestLayersView : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString a_, b_;
    ViewData data_;

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        a_ = dir_.filePath("ce.h5");
        b_ = dir_.filePath("ce-wd.h5");
        for (const QString& path : {a_, b_}) {
            SynthConfig cfg;
            cfg.classes = 4;
            cfg.dim = 8;
            cfg.snapshots = 1;
            writeSyntheticRun(path.toStdString(), cfg);
        }
        // ce.h5: noise trained (a null cosine at stem) and train init; ce-wd.h5: noise trained.
        writeLayerResults(a_.toStdString(), test::layerGroup("noise", "trained", 0.3, 1));
        writeLayerResults(a_.toStdString(), test::layerGroup("train", "init", 0.6, 99));
        writeLayerResults(b_.toStdString(), test::layerGroup("noise", "trained", 0.1, 4));
        data_.run_name = "ce.h5";
        data_.path = a_;
        for (const QString& path : {a_, b_})
            data_.layer_results.push_back({QFileInfo(path).fileName(), path,
                                           std::make_shared<const std::vector<LayerRun>>(readLayerResults(path.toStdString())),
                                           {}});
        QCOMPARE(data_.layer_results[0].runs->size(), std::size_t(2));
    }

    void eachGroupIsALineWithTheStoredNumbersAndNullsAsGaps() {
        LayersView view;
        view.resize(1000, 600);
        view.showData(data_);
        QVERIFY(view.setStatistic("cone_mean_cos"));
        const auto& stored = (*data_.layer_results[0].runs)[0]; // ce.h5: noise_trained (name order)
        QCOMPARE(stored.name, std::string("noise_trained"));
        const QVector<QPointF> line = points(view.plot(), "ce.h5: noise_trained");
        QCOMPARE(line.size(), qsizetype(6));
        for (int i = 0; i < 6; ++i) {
            QCOMPARE(line[i].x(), double(i));
            const Nullable v = stored.layers[static_cast<std::size_t>(i)].cone_mean_cos;
            if (v) QCOMPARE(line[i].y(), *v);
            else QVERIFY2(std::isnan(line[i].y()), "a null is a gap, never 0"); // QCustomPlot breaks the line at NaN
        }
        QVERIFY(std::isnan(line[1].y()));
        // The band: mean +- std of the same layer.
        const QVector<QPointF> high = points(view.plot(), "ce.h5: noise_trained, mean + std");
        const QVector<QPointF> low = points(view.plot(), "ce.h5: noise_trained, mean - std");
        QCOMPARE(high.size(), qsizetype(6));
        QCOMPARE(high[3].y(), *stored.layers[3].cone_mean_cos + *stored.layers[3].cone_std_cos);
        QCOMPARE(low[3].y(), *stored.layers[3].cone_mean_cos - *stored.layers[3].cone_std_cos);
        QVERIFY(std::isnan(high[1].y()) && std::isnan(low[1].y()));
        // The legend names run and group, one entry per line (not the bands).
        QCOMPARE(legendNames(view.plot()),
                 QStringList({"ce.h5: noise_trained", "ce.h5: train_init", "ce-wd.h5: noise_trained"}));
        // The x axis: the layer names at the layer indices.
        auto ticker = view.plot()->xAxis->ticker().dynamicCast<QCPAxisTickerText>();
        QVERIFY(ticker);
        QCOMPARE(ticker->ticks().value(0), QString("input"));
        QCOMPARE(ticker->ticks().value(5), QString("pooled"));
        // Init weights are dashed, trained solid; each line its own colour.
        QCPGraph* init = nullptr;
        QCPGraph* trained = nullptr;
        for (int i = 0; i < view.plot()->graphCount(); ++i) {
            if (view.plot()->graph(i)->name() == "ce.h5: train_init") init = view.plot()->graph(i);
            if (view.plot()->graph(i)->name() == "ce.h5: noise_trained") trained = view.plot()->graph(i);
        }
        QVERIFY(init && trained);
        QCOMPARE(init->pen().style(), Qt::DashLine);
        QCOMPARE(trained->pen().style(), Qt::SolidLine);
        QVERIFY(init->pen().color() != trained->pen().color());
        screenshot(&view, "layers_view_cosine");
    }

    void labelFreeGroupsHaveNoClassStatisticsAndSayWhy() {
        LayersView view;
        view.resize(1000, 600);
        view.showData(data_);
        QVERIFY(view.setStatistic("fdr"));
        QVERIFY(points(view.plot(), "ce.h5: noise_trained").isEmpty());
        const QVector<QPointF> fdr = points(view.plot(), "ce.h5: train_init");
        QCOMPARE(fdr.size(), qsizetype(6));
        const auto& stored = (*data_.layer_results[0].runs)[1];
        for (int i = 0; i < 6; ++i) QCOMPARE(fdr[i].y(), *stored.layers[static_cast<std::size_t>(i)].fdr);
        QVERIFY(view.noteLabel()->text().contains("ce.h5: noise_trained"));
        QVERIFY(view.noteLabel()->text().contains("no labels"));
        // BN statistics: null for the input and the pooled features (no BN there).
        QVERIFY(view.setStatistic("bn_gamma_mean"));
        const QVector<QPointF> gamma = points(view.plot(), "ce-wd.h5: noise_trained");
        QCOMPARE(gamma.size(), qsizetype(6));
        QVERIFY(std::isnan(gamma[0].y()) && std::isnan(gamma[5].y()));
        QCOMPARE(gamma[2].y(), 0.8);
        // Hoyer's spread is the square root of the stored variance.
        QVERIFY(view.setStatistic("hoyer_sparsity"));
        const QVector<QPointF> high = points(view.plot(), "ce-wd.h5: noise_trained, mean + std");
        QCOMPARE(high[0].y(), 0.2 + 0.02);
        // Every statistic of the chooser draws without trouble.
        for (int i = 0; i < view.statisticBox()->count(); ++i) view.statisticBox()->setCurrentIndex(i);
    }

    void untickedGroupsAreHiddenAndTheCsvHasEveryRow() {
        LayersView view;
        view.resize(1000, 600);
        view.showData(data_);
        QCOMPARE(view.groupList()->count(), 3);
        QListWidgetItem* item = view.groupList()->item(1);
        QCOMPARE(item->text(), QString("ce.h5: train_init"));
        item->setCheckState(Qt::Unchecked);
        QVERIFY(points(view.plot(), "ce.h5: train_init").isEmpty());
        QVERIFY(!legendNames(view.plot()).contains("ce.h5: train_init"));
        view.showData(data_); // kept across new data
        QCOMPARE(view.groupList()->item(1)->checkState(), Qt::Unchecked);

        const QStringList lines = view.csv().trimmed().split('\n');
        QCOMPARE(lines.size(), 1 + 3 * 6); // one row per run, group and layer
        const QStringList header = lines[0].split(',');
        for (const auto& [name, member] : layerStatisticFields()) QVERIFY2(header.contains(name), name);
        const int run = int(header.indexOf("run")), group = int(header.indexOf("group")),
                  layer = int(header.indexOf("layer")), cos = int(header.indexOf("cone_mean_cos")),
                  fdr = int(header.indexOf("fdr")), shown = int(header.indexOf("shown"));
        int seen = 0;
        for (const auto& r : data_.layer_results)
            for (const LayerRun& g : *r.runs)
                for (const LayerStats& s : g.layers) {
                    const QStringList f = lines[1 + seen++].split(',');
                    QCOMPARE(f[run], r.name);
                    QCOMPARE(f[group], QString::fromStdString(g.name));
                    QCOMPARE(f[layer], QString::fromStdString(s.name));
                    if (s.cone_mean_cos) QCOMPARE(f[cos].toDouble(), *s.cone_mean_cos);
                    else QVERIFY(f[cos].isEmpty());
                    if (s.fdr) QCOMPARE(f[fdr].toDouble(), *s.fdr);
                    else QVERIFY(f[fdr].isEmpty());
                    QCOMPARE(f[shown], QString(r.name == "ce.h5" && g.name == "train_init" ? "0" : "1"));
                }
    }

    void exportsPdfSvgAndPng() {
        LayersView view;
        view.resize(1000, 600);
        view.showData(data_);
        for (const char* suffix : {"pdf", "svg", "png"}) {
            const QString path = dir_.filePath(QString("layers.") + suffix);
            QVERIFY(view.exportFigure(path, 150));
            QVERIFY(QFileInfo(path).size() > 1000);
        }
        QFile pdf(dir_.filePath("layers.pdf"));
        QVERIFY(pdf.open(QIODevice::ReadOnly));
        QVERIFY(pdf.read(5) == "%PDF-");
        const QImage png(dir_.filePath("layers.png"));
        QVERIFY(!png.isNull());
        QCOMPARE(png.width(), 525); // 3.5 in at 150 dpi
        if (!screenshotDir().isEmpty()) {
            QVERIFY(view.exportFigure(screenshotDir() + "/layers_export.pdf", 300));
            QVERIFY(view.exportFigure(screenshotDir() + "/layers_export.png", 300));
        }
    }

    void computeArgumentsFollowTheControls() {
        LayersView view;
        view.showData(data_);
        QCOMPARE(view.runBox()->currentData().toString(), a_); // the selected run
        QCOMPARE(view.samplesBox()->value(), 2000);
        view.inputsBox()->setCurrentText("test");
        view.weightsBox()->setCurrentText("init");
        view.seedBox()->setValue(7);
        view.blocksBox()->setChecked(true);
        view.standardizeBox()->setChecked(true);
        QCOMPARE(view.computeArguments(a_),
                 QStringList({"layers", a_, "--inputs", "test", "--samples", "2000", "--seed", "7", "--init", "--blocks",
                              "--standardize", "--out", a_}));
    }

    void aFailedComputationNamesTheFileWithoutBlocking() {
        if (qEnvironmentVariable("LTLAB_BIN").isEmpty()) QSKIP("LTLAB_BIN is not set");
        LayersView view;
        view.setExecutable(qEnvironmentVariable("LTLAB_BIN"));
        view.showData(data_); // a synthetic run: nothing that ltlab layers can rebuild
        QSignalSpy finished(&view, &LayersView::computeFinished);
        QSignalSpy computed(&view, &LayersView::computed);
        view.computeButton()->click();
        QVERIFY(view.computing());
        QVERIFY(!view.computeButton()->isEnabled());
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 120000);
        QVERIFY(finished.at(0).at(1).toInt() != 0);
        QVERIFY(finished.at(0).at(2).toString().contains("ce.h5"));
        QCOMPARE(computed.count(), 0);
        QVERIFY(view.findChild<QMessageBox*>() != nullptr);
        QVERIFY(view.computeButton()->isEnabled());
    }

    // End to end: two tiny trained runs open in the window; Compute runs
    // `ltlab layers` on noise for each (trained, and init for one), and each
    // new group appears in the tab after the window re-reads the run.
    void computeRunsLtlabLayersAndTheNewGroupAppears() {
        const QString bin = qEnvironmentVariable("LTLAB_BIN");
        if (bin.isEmpty()) QSKIP("LTLAB_BIN is not set");
        if (!QFileInfo::exists(QFileInfo(bin).dir().filePath("libltlab_train.so"))) QSKIP("no libtorch module");
        QTemporaryDir dir;
        const QString ce = dir.filePath("ce.h5"), wd = dir.filePath("ce-wd.h5");
        QVERIFY(runLtlab({"train", "--recipe", "ce", "--dataset", "gaussian-lt", "--model", "mlp", "--epochs", "1",
                          "--out", ce}));
        QVERIFY(runLtlab({"train", "--recipe", "ce-wd", "--dataset", "gaussian-lt", "--model", "mlp", "--epochs", "1",
                          "--out", wd}));
        MainWindow window;
        window.setExecutable(bin);
        window.resize(1280, 800);
        window.show();
        window.openFiles({ce, wd});
        QTRY_VERIFY_WITH_TIMEOUT(window.pendingWork() == 0 && window.runsTree()->topLevelItemCount() == 2, 60000);
        auto* view = qobject_cast<LayersView*>(window.view("layers"));
        QVERIFY(view);
        window.findChild<QTabWidget*>()->setCurrentWidget(view);
        QTRY_VERIFY_WITH_TIMEOUT(view->runBox()->count() == 2, 20000);
        QCOMPARE(view->groupList()->count(), 0);
        QVERIFY(view->noteLabel()->text().contains("No layer-wise results"));

        auto computeFor = [&](const QString& path, const QString& weights, int expected_groups) {
            view->runBox()->setCurrentIndex(view->runBox()->findData(path));
            view->inputsBox()->setCurrentText("noise");
            view->weightsBox()->setCurrentText(weights);
            view->samplesBox()->setValue(300);
            QSignalSpy finished(view, &LayersView::computeFinished);
            view->computeButton()->click();
            QVERIFY(view->computing());
            QVERIFY(view->cancelButton()->isEnabled());
            QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 300000);
            QVERIFY2(finished.at(0).at(1).toInt() == 0, qPrintable(finished.at(0).at(2).toString()));
            QTRY_VERIFY_WITH_TIMEOUT(window.pendingWork() == 0 && view->groupList()->count() == expected_groups, 60000);
        };
        computeFor(ce, "trained", 1);
        QCOMPARE(view->groupList()->item(0)->text(), QString("ce.h5: noise_trained"));
        computeFor(ce, "init", 2);
        computeFor(wd, "trained", 3);
        QVERIFY(view->setStatistic("cone_mean_cos"));
        QStringList legend = legendNames(view->plot());
        legend.sort();
        QCOMPARE(legend, QStringList({"ce-wd.h5: noise_trained", "ce.h5: noise_init", "ce.h5: noise_trained"}));
        // What is drawn is what the file holds.
        const std::vector<LayerRun> stored = readLayerResults(ce.toStdString());
        QCOMPARE(stored.size(), std::size_t(2));
        const QVector<QPointF> line = points(view->plot(), "ce.h5: noise_init");
        QCOMPARE(line.size(), qsizetype(stored[0].layers.size()));
        for (std::size_t i = 0; i < stored[0].layers.size(); ++i)
            QCOMPARE(line[int(i)].y(), *stored[0].layers[i].cone_mean_cos);
        // Noise has no labels: no FDR, and the note says so.
        QVERIFY(view->setStatistic("fdr"));
        QVERIFY(view->noteLabel()->text().contains("no labels"));
        QVERIFY(view->setStatistic("cone_mean_cos"));
        screenshot(&window, "layers_window");
        screenshot(view, "layers_tab");
        if (!screenshotDir().isEmpty()) {
            QVERIFY(window.exportView(view, screenshotDir() + "/layers_window_export.pdf"));
            QVERIFY(window.exportView(view, screenshotDir() + "/layers_window_export.png"));
        }

        // Cancel stops the child and stores nothing.
        view->runBox()->setCurrentIndex(view->runBox()->findData(wd));
        view->weightsBox()->setCurrentText("init");
        view->samplesBox()->setValue(2000);
        QSignalSpy cancelled(view, &LayersView::computeFinished);
        view->computeButton()->click();
        QVERIFY(view->computing());
        view->cancelButton()->click();
        QTRY_COMPARE_WITH_TIMEOUT(cancelled.count(), 1, 60000);
        const int code = cancelled.at(0).at(1).toInt();
        QVERIFY2(code == 130 || code == 0, qPrintable(cancelled.at(0).at(2).toString())); // 0: it had finished already
        if (code == 130) QCOMPARE(readLayerResults(wd.toStdString()).size(), std::size_t(1));

        // ltlab figures writes layers.FMT and layers.csv for a run with /layers.
        const QString figs = dir.filePath("figs");
        QVERIFY(runLtlab({"figures", ce, "--out", figs, "--format", "pdf,png"}));
        QVERIFY(QFileInfo(figs + "/layers.pdf").size() > 1000);
        QVERIFY(!QImage(figs + "/layers.png").isNull());
        QFile csv(figs + "/layers.csv");
        QVERIFY(csv.open(QIODevice::ReadOnly));
        const QStringList rows = QString::fromUtf8(csv.readAll()).trimmed().split('\n');
        QCOMPARE(rows.size(), qsizetype(1 + stored[0].layers.size() + stored[1].layers.size()));
        // ... and none for a run without.
        const QString plain = dir.filePath("plain.h5");
        writeSyntheticRun(plain.toStdString(), SynthConfig{});
        QVERIFY(runLtlab({"figures", plain, "--out", dir.filePath("figs_none"), "--format", "pdf"}));
        QVERIFY(QFileInfo::exists(dir.filePath("figs_none") + "/weight_norms.pdf"));
        QVERIFY(!QFileInfo::exists(dir.filePath("figs_none") + "/layers.pdf"));
    }
};

QTEST_MAIN(TestLayersView)
#include "test_layers_view.moc"
