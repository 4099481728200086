// The workbench window opens a run file on a worker thread and shows the
// engine's own report for the latest snapshot.

#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTreeWidget>
#include <QtTest>

#include "ltlab/analysis.h"
#include "ltlab/analysis_report.h"
#include "ltlab/run_file.h"
#include "ltlab/synthetic.h"
#include "main_window.h"
#include "training_dock.h"
#include "training_curves_view.h"

#include <QComboBox>
#include <QElapsedTimer>
#include <QTimer>
#include <algorithm>

#include <qcustomplot.h>

class TestMainWindow : public QObject {
    Q_OBJECT
private slots:
    void opensARunAndShowsTheLatestSnapshotsAnalysis() {
        QTemporaryDir dir;
        const QString path = dir.filePath("run.h5");
        ltlab::SynthConfig cfg;
        cfg.classes = 4;
        cfg.dim = 6;
        cfg.snapshots = 3;
        cfg.history = false;
        ltlab::writeSyntheticRun(path.toStdString(), cfg);

        ltlab::ui::MainWindow window;
        window.show();
        window.openFiles({path});
        QTRY_VERIFY_WITH_TIMEOUT(window.pendingWork() == 0 && !window.reportText().isEmpty(), 10000);

        QTreeWidget* tree = window.runsTree();
        QCOMPARE(tree->topLevelItemCount(), 1);
        QCOMPARE(tree->topLevelItem(0)->childCount(), 3);
        QCOMPARE(tree->currentItem()->text(0), QString("epoch_0003"));

        const auto file = ltlab::RunFile::open(path.toStdString());
        const auto& snap = file->latestSnapshot();
        const auto analysis = ltlab::analyzeSnapshot(file, snap, snap.defaultSplit(),
                                                     ltlab::defaultOptionsFor(*file, std::nullopt, std::nullopt));
        QCOMPARE(window.reportText(), QString::fromStdString(ltlab::analysisToText(analysis, file->classes())));
    }

    // Training from the dock: the run appears, grows epoch by epoch, and the
    // views follow it; the event loop stays responsive throughout.
    void trainsFromTheDockAndTheViewsFollow() {
        ltlab::ui::MainWindow window;
        window.show();
        auto* dock = window.trainingDock();
        dock->setExecutable(qEnvironmentVariable("LTLAB_BIN"));
        dock->setDataset("gaussian-lt", "mlp");
        dock->setRecipe("ce", 3);
        QSignalSpy finished(dock, &ltlab::ui::TrainingDock::runFinished);
        QSignalSpy epochs(dock, &ltlab::ui::TrainingDock::epochFinished);

        // Event-loop latency: a 10 ms timer, and how late each tick comes.
        std::vector<double> late;
        QElapsedTimer clock;
        clock.start();
        qint64 last = 0;
        QTimer tick;
        tick.setInterval(10);
        QObject::connect(&tick, &QTimer::timeout, [&] {
            const qint64 now = clock.elapsed();
            late.push_back(double(now - last - 10));
            last = now;
        });
        tick.start();
        dock->start();
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 120000);
        QTRY_VERIFY_WITH_TIMEOUT(window.pendingWork() == 0, 20000);
        tick.stop();
        QCOMPARE(finished.at(0).at(1).toInt(), 0);
        QCOMPARE(epochs.count(), 3);

        QTreeWidget* tree = window.runsTree();
        QCOMPARE(tree->topLevelItemCount(), 1);
        QCOMPARE(tree->topLevelItem(0)->childCount(), 3);
        QCOMPARE(tree->currentItem()->text(0), QString("final")); // followed the newest epoch
        auto* curves = static_cast<ltlab::ui::TrainingCurvesView*>(window.view("training_curves"));
        int points = 0;
        for (int i = 0; i < curves->plot()->graphCount(); ++i)
            if (curves->plot()->graph(i)->name() == "test_accuracy") points = curves->plot()->graph(i)->data()->size();
        QCOMPARE(points, 3);
        std::sort(late.begin(), late.end());
        const double p99 = late.empty() ? 0 : late[static_cast<std::size_t>(0.99 * double(late.size() - 1))];
        qInfo("event-loop lateness while training: p99 %.0f ms, max %.0f ms over %zu ticks", p99,
              late.empty() ? 0.0 : late.back(), late.size());
    }

    void stopKeepsTheFinishedEpochs() {
        ltlab::ui::MainWindow window;
        auto* dock = window.trainingDock();
        dock->setExecutable(qEnvironmentVariable("LTLAB_BIN"));
        dock->setDataset("gaussian-lt", "mlp");
        dock->setRecipe("ce", 5000);
        QSignalSpy finished(dock, &ltlab::ui::TrainingDock::runFinished);
        QSignalSpy epochs(dock, &ltlab::ui::TrainingDock::epochFinished);
        dock->start();
        QTRY_VERIFY_WITH_TIMEOUT(epochs.count() >= 2, 60000);
        dock->stop();
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);
        QCOMPARE(finished.at(0).at(1).toInt(), 130);
        const auto file = ltlab::RunFile::open(dock->outputPath().toStdString());
        QVERIFY(file->history()->numEpochs() >= 2);
    }

    void reportsAFileThatCannotBeOpened() {
        QTemporaryDir dir;
        const QString path = dir.filePath("broken.h5");
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("not hdf5");
        f.close();
        ltlab::ui::MainWindow window;
        window.openFiles({path});
        QTRY_VERIFY_WITH_TIMEOUT(window.pendingWork() == 0, 10000);
        QVERIFY(window.reportText().contains("broken.h5"));
        QVERIFY(window.reportText().contains("not an HDF5 file"));
        QCOMPARE(window.runsTree()->topLevelItemCount(), 0);
    }
};

QTEST_MAIN(TestMainWindow)
#include "test_main_window.moc"
