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
