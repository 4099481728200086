// Importing checkpoints in the workbench: the dialog reads what a file holds,
// the weight views show its classifier at once, the run file follows the
// evaluation in a child process, and failures and foreign files are named.
// The checkpoints are written by PyTorch at test time (nothing binary is committed).

#include <QComboBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QLabel>
#include <QMessageBox>
#include <QMimeData>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTreeWidget>
#include <QUrl>
#include <QtTest>

#include "import_dialog.h"
#include "logit_adjustment_view.h"
#include "main_window.h"
#include "weight_norm_view.h"

namespace {

// ltlab's built-in MLP for 28 x 28 inputs and 10 classes, as torchvision-style
// keys, with class c's classifier row scaled by (c + 1): its weight norms
// grow with the class index. Returns the norms PyTorch computes.
std::vector<double> writeMlpStateDict(const QString& path) {
    const QString script = QStringLiteral(R"(
import sys, torch
torch.manual_seed(0)
sd = {'fc1.weight': torch.randn(256, 784) * 0.05, 'fc1.bias': torch.zeros(256),
      'fc2.weight': torch.randn(128, 256) * 0.05, 'fc2.bias': torch.zeros(128),
      'fc.weight': torch.randn(10, 128) * 0.1 * torch.arange(1, 11).float().unsqueeze(1),
      'fc.bias': torch.linspace(-0.5, 0.5, 10)}
torch.save({'epoch': 7, 'state_dict': sd, 'best_acc': 0.5}, sys.argv[1])
print(' '.join(repr(float(v)) for v in sd['fc.weight'].double().norm(dim=1)))
)");
    QProcess python;
    python.start("/usr/bin/python3", {"-c", script, path});
    if (!python.waitForFinished(120000) || python.exitCode() != 0) {
        qWarning("python failed: %s", python.readAllStandardError().constData());
        return {};
    }
    std::vector<double> norms;
    for (const QByteArray& v : python.readAllStandardOutput().trimmed().split(' ')) norms.push_back(v.toDouble());
    return norms;
}

// weight_norm column of the view's CSV, by class index.
std::vector<double> csvNorms(const QString& csv) {
    std::vector<double> out(10, -1);
    const QStringList lines = csv.trimmed().split('\n');
    for (int i = 1; i < lines.size(); ++i) {
        const QStringList f = lines[i].split(',');
        out[static_cast<std::size_t>(f[1].toInt())] = f[4].toDouble();
    }
    return out;
}

// LTLAB_SCREENSHOT_DIR=DIR: the test saves what a user sees, to look at.
void screenshot(QWidget* w, const QString& name) {
    const QString dir = qEnvironmentVariable("LTLAB_SCREENSHOT_DIR");
    if (dir.isEmpty()) return;
    QCoreApplication::processEvents();
    w->grab().save(dir + "/" + name + ".png");
}

void dropOn(ltlab::ui::MainWindow& window, const QStringList& paths) {
    QMimeData mime;
    QList<QUrl> urls;
    for (const QString& p : paths) urls << QUrl::fromLocalFile(p);
    mime.setUrls(urls);
    // As a drag does it: enter (which makes the window the drop target), then drop.
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(&window, &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(&window, &drop);
}

} // namespace

class TestImport : public QObject {
    Q_OBJECT
private slots:
    void theDialogReadsTheFileAndPrefillsTheArchitectureAndDataset() {
        QTemporaryDir dir;
        const QString ckpt = dir.filePath("best.pth");
        QVERIFY(!writeMlpStateDict(ckpt).empty());
        ltlab::ui::ImportDialog dialog({ckpt});
        QSignalSpy done(&dialog, &ltlab::ui::ImportDialog::inspectionFinished);
        QTRY_VERIFY_WITH_TIMEOUT(dialog.inspected(), 10000);
        QCOMPARE(dialog.summaries().size(), 1);
        const auto& s = dialog.summaries().front();
        QVERIFY2(s.error.isEmpty(), qPrintable(s.error));
        QCOMPARE(s.arch, QString("mlp"));
        QCOMPARE(s.classes, 10);
        QCOMPARE(s.feature_dim, 128);
        QVERIFY(s.text.contains("training checkpoint"));
        QVERIFY(dialog.architectureBox()->currentText().contains("mlp"));
        QCOMPARE(dialog.datasetBox()->currentText(), QString("fashion-mnist-lt")); // 10 classes, not RGB
        QVERIFY(dialog.importButton()->isEnabled());
        dialog.show();
        screenshot(&dialog, "import_dialog");
        const ltlab::ui::ImportRequest r = dialog.request();
        QCOMPARE(r.out, dir.filePath("best.h5")); // beside the checkpoint
        const QStringList args = ltlab::ui::importArguments(r);
        QCOMPARE(args.mid(0, 2), (QStringList{"import", ckpt}));
        QVERIFY(args.join(' ').contains("--dataset fashion-mnist-lt --out " + dir.filePath("best.h5")));
        QVERIFY(!args.contains("--arch"));      // auto
        QVERIFY(!args.contains("--splits"));    // all of them
        QCOMPARE(args.last(), QString("--progress-json"));
        dialog.setDataset("cifar10-lt");        // needs its files
        QVERIFY(!dialog.importButton()->isEnabled());
        dialog.setDataset("folder:" + dir.path());
        QVERIFY(dialog.importButton()->isEnabled());
        QVERIFY(ltlab::ui::importArguments(dialog.request()).join(' ').contains("--dataset folder:" + dir.path()));

        // A file that is not a checkpoint: named, and nothing to import.
        const QString text = dir.filePath("notes.txt");
        QFile f(text);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("not a checkpoint\n");
        f.close();
        ltlab::ui::ImportDialog bad({text});
        QTRY_VERIFY_WITH_TIMEOUT(bad.inspected(), 10000);
        QVERIFY(bad.summaries().front().error.contains("not a checkpoint"));
        QVERIFY(!bad.importButton()->isEnabled());
    }

    void theWeightsShowAtOnceAndTheRunFileFollowsTheEvaluation() {
        QTemporaryDir dir;
        const QString ckpt = dir.filePath("epoch_7.pth");
        const std::vector<double> norms = writeMlpStateDict(ckpt);
        QCOMPARE(norms.size(), std::size_t(10));
        ltlab::ui::MainWindow window;
        window.setExecutable(qEnvironmentVariable("LTLAB_BIN"));
        window.show();
        ltlab::ui::ImportRequest r;
        r.checkpoints = {ckpt};
        r.dataset = "fashion-mnist-lt";
        r.max_per_class = 5;
        r.out = dir.filePath("imported.h5");
        QSignalSpy finished(&window, &ltlab::ui::MainWindow::importFinished);
        window.startImport(r);
        QVERIFY(window.importRunning());

        // Before the evaluation is done, the weight views show the classifier.
        QTreeWidget* tree = window.runsTree();
        QCOMPARE(tree->topLevelItemCount(), 1);
        QVERIFY(tree->topLevelItem(0)->text(0).contains("importing"));
        auto* weights = window.weightNormView();
        QTRY_VERIFY_WITH_TIMEOUT(csvNorms(window.weightNormView()->csv())[9] > 0 || finished.count() > 0, 20000);
        qInfo("preview seen before the import finished: %s", finished.count() == 0 ? "yes" : "no");
        if (finished.count() == 0) { // (a very fast import may already have replaced the preview)
            const std::vector<double> shown = csvNorms(weights->csv());
            for (std::size_t c = 0; c < 10; ++c) QVERIFY2(std::abs(shown[c] - norms[c]) < 1e-6 * norms[c], qPrintable(QString::number(c)));
            // Counts are Fashion-MNIST-LT's train split (imbalance 100): the head class first.
            QVERIFY(weights->csv().contains("Sneaker") || weights->csv().contains("T-shirt"));
            auto* la = static_cast<ltlab::ui::LogitAdjustmentView*>(window.view("logit_adjustment"));
            QVERIFY(la != nullptr);
            screenshot(&window, "import_weights_preview");
            if (!qEnvironmentVariable("LTLAB_SCREENSHOT_DIR").isEmpty()) {
                window.findChild<QTabWidget*>()->setCurrentWidget(la);
                screenshot(&window, "import_weights_preview_la");
                window.findChild<QTabWidget*>()->setCurrentWidget(weights);
            }
        }

        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 180000);
        QCOMPARE(finished.at(0).at(1).toInt(), 0);
        QVERIFY(QFile::exists(r.out));
        QTRY_VERIFY_WITH_TIMEOUT(window.pendingWork() == 0 && tree->topLevelItemCount() == 1 &&
                                     tree->topLevelItem(0)->text(0) == "imported.h5",
                                 20000);
        QCOMPARE(tree->topLevelItem(0)->childCount(), 1); // one snapshot for the one checkpoint
        QCOMPARE(tree->topLevelItem(0)->child(0)->text(1), QString("7")); // its stored epoch
        QTRY_VERIFY_WITH_TIMEOUT(window.pendingWork() == 0, 20000);
        // The run's analysis now: the same classifier, with features of the test split.
        const std::vector<double> shown = csvNorms(window.weightNormView()->csv());
        for (std::size_t c = 0; c < 10; ++c) QVERIFY(std::abs(shown[c] - norms[c]) < 1e-5 * norms[c]);
        QVERIFY(window.reportText().contains("test"));
        screenshot(&window, "import_done");
    }

    void aFailedImportSaysWhyAndKeepsTheWeights() {
        QTemporaryDir dir;
        const QString ckpt = dir.filePath("model.pth");
        QVERIFY(!writeMlpStateDict(ckpt).empty());
        ltlab::ui::MainWindow window;
        window.setExecutable(qEnvironmentVariable("LTLAB_BIN"));
        window.show();
        ltlab::ui::ImportRequest r;
        r.checkpoints = {ckpt};
        r.dataset = "gaussian-lt"; // 32-d inputs: the MLP takes 784
        r.out = dir.filePath("bad.h5");
        QSignalSpy finished(&window, &ltlab::ui::MainWindow::importFinished);
        window.startImport(r);
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 120000);
        QCOMPARE(finished.at(0).at(1).toInt(), 2);
        const QString message = finished.at(0).at(2).toString();
        QVERIFY2(message.contains("model.pth"), qPrintable(message)); // names the file
        QVERIFY(!QFile::exists(r.out));
        QTRY_VERIFY(window.findChild<QMessageBox*>() != nullptr);
        QVERIFY(window.findChild<QMessageBox*>()->text().contains("model.pth"));
        window.findChild<QMessageBox*>()->close();
        QVERIFY(window.runsTree()->topLevelItem(0)->text(0).contains("failed"));
    }

    void droppedFilesOpenImportOrAreNamed() {
        QTemporaryDir dir;
        const QString ckpt = dir.filePath("weights.pt");
        QVERIFY(!writeMlpStateDict(ckpt).empty());
        const QString text = dir.filePath("readme.txt");
        QFile f(text);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("hello\n");
        f.close();
        ltlab::ui::MainWindow window;
        window.show();
        dropOn(window, {text});
        QVERIFY2(window.reportText().contains("ltlab opens run files"), qPrintable(window.reportText()));
        QVERIFY(window.reportText().contains("readme.txt"));
        QVERIFY(window.findChild<ltlab::ui::ImportDialog*>() == nullptr);
        dropOn(window, {ckpt});
        QTRY_VERIFY(window.findChild<ltlab::ui::ImportDialog*>() != nullptr);
        auto* dialog = window.findChild<ltlab::ui::ImportDialog*>();
        QTRY_VERIFY_WITH_TIMEOUT(dialog->inspected(), 10000);
        QCOMPARE(dialog->summaries().front().arch, QString("mlp"));
        dialog->reject();
    }
};

QTEST_MAIN(TestImport)
#include "test_import.moc"
