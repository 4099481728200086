// The Runs tree, the epoch player, the session and the Training dock's
// actions on the open run, driven as a user drives them: clicks, keys, the
// context menu. QSettings point at a temporary folder (never the user's).

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QContextMenuEvent>
#include <QDockWidget>
#include <QDoubleSpinBox>
#include <QFile>
#include <QLabel>
#include <QMenu>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSlider>
#include <QSpinBox>
#include <QStatusBar>
#include <QTabBar>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <QToolButton>
#include <QTreeWidget>
#include <QtTest>

#include <set>

#include "class_filter.h"
#include "epoch_player.h"
#include "geometry_view.h"
#include "logit_adjustment_view.h"
#include "ltlab/synthetic.h"
#include "ltlab/training.h"
#include "main_window.h"
#include "runs_filter.h"
#include "session.h"
#include "training_dock.h"
#include "weight_norm_view.h"

namespace {

// A tiny run (3 classes, 4 dimensions) of `snapshots` epochs, with a val split for la.
QString writeRun(const QTemporaryDir& dir, const QString& name, int snapshots) {
    ltlab::SynthConfig cfg;
    cfg.classes = 3;
    cfg.dim = 4;
    cfg.max_per_class = 20;
    cfg.test_per_class = 5;
    cfg.val_per_class = 5;
    cfg.snapshots = snapshots;
    cfg.history = false;
    const QString path = dir.filePath(name);
    ltlab::writeSyntheticRun(path.toStdString(), cfg);
    return path;
}

bool settle(ltlab::ui::MainWindow& window) {
    return QTest::qWaitFor([&] { return window.pendingWork() == 0 && !window.session()->restoring(); }, 30000);
}

QStringList topNames(const QTreeWidget* tree) {
    QStringList names;
    for (int i = 0; i < tree->topLevelItemCount(); ++i) names << tree->topLevelItem(i)->text(0);
    return names;
}

void clickItem(QTreeWidget* tree, QTreeWidgetItem* item) {
    tree->scrollToItem(item);
    QTest::mouseClick(tree->viewport(), Qt::LeftButton, {}, tree->visualItemRect(item).center());
}

void clickTab(ltlab::ui::MainWindow& window, const QString& title) {
    auto* tabs = window.findChild<QTabWidget*>();
    for (int i = 0; i < tabs->count(); ++i)
        if (tabs->tabText(i) == title) QTest::mouseClick(tabs->tabBar(), Qt::LeftButton, {}, tabs->tabBar()->tabRect(i).center());
}

// A click on the box itself.
void clickCheckBox(QCheckBox* box) { QTest::mouseClick(box, Qt::LeftButton, {}, QPoint(8, box->height() / 2)); }

void showAndActivate(ltlab::ui::MainWindow& window) {
    window.show();
    window.activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(&window));
}

} // namespace

class TestSession : public QObject {
    Q_OBJECT
    QTemporaryDir settings_dir_;

private slots:
    void initTestCase() {
        QVERIFY(settings_dir_.isValid());
        // This test's settings live in a temporary folder, whoever runs it.
        QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, settings_dir_.path());
        QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, settings_dir_.path());
        QCoreApplication::setOrganizationName("ltlab-test");
        QCoreApplication::setApplicationName("session");
        QVERIFY(QSettings().fileName().startsWith(settings_dir_.path()));
        QSettings().clear();
    }

    // Order given, a click on a run shows its last snapshot, a file opened
    // again is selected (not opened twice), Ctrl+W and the context menu close.
    void theRunsTreeKeepsOrderOpensOnceAndClosesByKeyAndMenu() {
        QTemporaryDir dir;
        const QStringList paths{writeRun(dir, "c.h5", 2), writeRun(dir, "a.h5", 3), writeRun(dir, "b.h5", 2)};
        ltlab::ui::MainWindow window;
        showAndActivate(window);
        window.openFiles(paths);
        QVERIFY(settle(window));
        QTreeWidget* tree = window.runsTree();
        QCOMPARE(topNames(tree), (QStringList{"c.h5", "a.h5", "b.h5"}));

        clickItem(tree, tree->topLevelItem(1)); // the run a.h5
        QCOMPARE(tree->currentItem(), tree->topLevelItem(1)->child(2));
        QVERIFY(settle(window));
        QCOMPARE(window.selectedSnapshot().second, QString("epoch_0003"));

        window.openFiles({dir.path() + "/./c.h5"}); // the same file, another spelling
        QVERIFY(settle(window));
        QCOMPARE(tree->topLevelItemCount(), 3);
        QCOMPARE(tree->currentItem(), tree->topLevelItem(0)->child(1));

        tree->setFocus();
        QTest::keyClick(tree, Qt::Key_W, Qt::ControlModifier); // closes c.h5, the selected run
        QCOMPARE(topNames(tree), (QStringList{"a.h5", "b.h5"}));
        QVERIFY(settle(window));

        // Right-click on b.h5's snapshot, then the menu's "Close b.h5".
        QTreeWidgetItem* b = tree->topLevelItem(1)->child(0);
        QString chosen;
        QTimer::singleShot(0, this, [&chosen] {
            auto* menu = qobject_cast<QMenu*>(QApplication::activePopupWidget());
            if (!menu) return;
            chosen = menu->actions().value(0)->text();
            menu->actions().value(0)->trigger();
            menu->close();
        });
        const QPoint at = tree->visualItemRect(b).center();
        QContextMenuEvent menu_event(QContextMenuEvent::Mouse, at, tree->viewport()->mapToGlobal(at));
        QApplication::sendEvent(tree->viewport(), &menu_event);
        QCOMPARE(chosen, QString("Close b.h5"));
        QCOMPARE(topNames(tree), QStringList{"a.h5"});
        QVERIFY(settle(window));
    }

    // The filter keeps the snapshots whose name matches and the runs that
    // have one; runs opened (and snapshots added) later follow it.
    void theFilterShowsMatchingSnapshotsAndTheirRuns() {
        QTemporaryDir dir;
        const QString many = writeRun(dir, "long.h5", 120), few = writeRun(dir, "short.h5", 3);
        ltlab::ui::MainWindow window;
        showAndActivate(window);
        window.openFiles({many, few});
        QVERIFY(settle(window));
        QTreeWidget* tree = window.runsTree();
        ltlab::ui::RunsFilter* filter = window.runsFilter();
        QCOMPARE(filter->shownSnapshots(), 123);

        QTest::keyClick(&window, Qt::Key_F, Qt::ControlModifier); // Ctrl+F: to the filter
        QVERIFY(filter->hasFocus());
        QTest::keyClicks(filter, "EPOCH_011"); // case-insensitive: epoch_0110 .. epoch_0119
        QCOMPARE(filter->shownSnapshots(), 10);
        QVERIFY(!tree->topLevelItem(0)->isHidden());
        QVERIFY(tree->topLevelItem(1)->isHidden()); // short.h5 has none
        QVERIFY(tree->topLevelItem(0)->child(108)->isHidden());   // epoch_0109
        QVERIFY(!tree->topLevelItem(0)->child(109)->isHidden());  // epoch_0110

        const QString later = writeRun(dir, "later.h5", 115);
        window.openFiles({later});
        QVERIFY(settle(window));
        QCOMPARE(filter->shownSnapshots(), 16); // and later.h5's epoch_0110 .. epoch_0115
        QVERIFY(!tree->topLevelItem(2)->isHidden());

        QTest::keyClick(filter, Qt::Key_A, Qt::ControlModifier);
        QTest::keyClicks(filter, "short"); // a run's name: all of its snapshots
        QCOMPARE(filter->shownSnapshots(), 3);
        QVERIFY(tree->topLevelItem(0)->isHidden() && !tree->topLevelItem(1)->isHidden());
        filter->clear(); // the clear button
        QCOMPARE(filter->shownSnapshots(), 238);
    }

    // Speed from the combo box, loop or stop at the end (ticks driven one by one).
    void thePlayerHasASpeedAndStopsAtTheEndOrLoops() {
        QTemporaryDir dir;
        const QString run = writeRun(dir, "play.h5", 3);
        ltlab::ui::MainWindow window;
        showAndActivate(window);
        window.openFiles({run});
        QVERIFY(settle(window));
        ltlab::ui::EpochPlayer* player = window.player();
        QCOMPARE(player->speed(), 1.0);
        QCOMPARE(player->intervalMs(), 800);
        QTest::keyClick(player->speedBox(), Qt::Key_Down); // 1x -> 2x
        QCOMPARE(player->speed(), 2.0);
        QCOMPARE(player->intervalMs(), 400);
        QVERIFY(!player->speedBox()->toolTip().isEmpty() && !player->loopBox()->toolTip().isEmpty());

        QVERIFY(player->loops());
        clickCheckBox(player->loopBox()); // untick Loop: stop at the end
        QVERIFY(!player->loops());
        QSlider* timeline = player->timeline();
        QCOMPARE(timeline->value(), 2); // on the last snapshot
        QTest::mouseClick(player->playButton(), Qt::LeftButton); // play from the end: from the first
        QVERIFY(player->playing());
        QCOMPARE(timeline->value(), 0);
        player->advance();
        player->advance();
        QCOMPARE(timeline->value(), 2);
        QVERIFY(player->playing());
        player->advance(); // past the end: stops there
        QVERIFY(!player->playing());
        QCOMPARE(timeline->value(), 2);
        QCOMPARE(window.selectedSnapshot().second, QString("epoch_0003"));

        clickCheckBox(player->loopBox()); // Loop again
        QTest::mouseClick(player->playButton(), Qt::LeftButton);
        QCOMPARE(timeline->value(), 2); // looping: play goes on from where it is
        player->advance();
        QCOMPARE(timeline->value(), 0);
        QVERIFY(player->playing());
        QCOMPARE(window.selectedSnapshot().second, QString("epoch_0001"));
        QTest::mouseClick(player->playButton(), Qt::LeftButton); // pause
        QVERIFY(!player->playing());
        QVERIFY(settle(window));
    }

    // The player steps only through what the Runs filter shows; Space plays
    // from the tree, and keeps its own meaning on a focused check box or list.
    void thePlayerSkipsFilteredSnapshotsAndSpaceStaysWithFocusedControls() {
        QTemporaryDir dir;
        const QString run = writeRun(dir, "twelve.h5", 12);
        ltlab::ui::MainWindow window;
        showAndActivate(window);
        window.openFiles({run});
        QVERIFY(settle(window));
        QTreeWidget* tree = window.runsTree();
        QTest::keyClick(&window, Qt::Key_F, Qt::ControlModifier);
        QTest::keyClicks(window.runsFilter(), "epoch_001"); // epoch_0010 .. epoch_0012
        QCOMPARE(window.runsFilter()->shownSnapshots(), 3);
        clickItem(tree, tree->topLevelItem(0)->child(9));
        QVERIFY(settle(window));
        ltlab::ui::EpochPlayer* player = window.player();
        QCOMPARE(player->timeline()->value(), 9);
        player->advance();
        QCOMPARE(window.selectedSnapshot().second, QString("epoch_0011"));
        player->advance();
        QCOMPARE(player->timeline()->value(), 11);
        player->advance(); // loops to the first shown snapshot, not epoch_0001
        QCOMPARE(window.selectedSnapshot().second, QString("epoch_0010"));
        QVERIFY(settle(window));

        // Space on the focused Loop box ticks it; the player does not start.
        player->loopBox()->setFocus();
        QVERIFY(player->loopBox()->hasFocus());
        QVERIFY(player->loops());
        QTest::keyClick(player->loopBox(), Qt::Key_Space);
        QVERIFY(!player->loops());
        QTest::qWait(250); // a shortcut clicks the play button after 100 ms
        QVERIFY(!player->playing());
        // A space typed in the filter field is text.
        window.runsFilter()->setFocus();
        QTest::keyClick(window.runsFilter(), Qt::Key_Space);
        QCOMPARE(window.runsFilter()->text(), QString("epoch_001 "));
        QTest::qWait(250);
        QVERIFY(!player->playing());
        QTest::keyClick(window.runsFilter(), Qt::Key_Backspace);
        // From the Runs tree, Space plays and pauses.
        tree->setFocus();
        QTest::keyClick(tree, Qt::Key_Space);
        QTRY_VERIFY(player->playing());
        QTest::keyClick(tree, Qt::Key_Space);
        QTRY_VERIFY(!player->playing());
        QVERIFY(settle(window));
    }

    // "none" as the overlay, the 3D view's labels and class filter come back too.
    void theOverlayNoneAndThe3DLabelsAndFilterAreRestored() {
        QTemporaryDir dir;
        const QString run = writeRun(dir, "views.h5", 2);
        {
            ltlab::ui::MainWindow first;
            showAndActivate(first);
            first.openFiles({run});
            QVERIFY(settle(first));
            first.weightNormView()->setOverlayHidden();
            QVERIFY(first.weightNormView()->overlayHidden());
            first.geometryView()->setLabelMode(ltlab::ui::LabelMode::All);
            ltlab::ui::ClassFilter filter;
            filter.kind = ltlab::ui::ClassFilter::Kind::Chosen;
            filter.chosen = {0, 2};
            first.geometryView()->setFilter(filter);
            QVERIFY(settle(first));
            first.close();
        }
        ltlab::ui::MainWindow second;
        showAndActivate(second);
        QCOMPARE(second.restoreSession(), QStringList{QFileInfo(run).absoluteFilePath()});
        QVERIFY(settle(second));
        QVERIFY(second.weightNormView()->overlayHidden());
        QVERIFY(second.geometryView()->labelMode() == ltlab::ui::LabelMode::All);
        const ltlab::ui::ClassFilter restored = second.geometryView()->filter();
        QVERIFY(restored.kind == ltlab::ui::ClassFilter::Kind::Chosen);
        QCOMPARE(restored.chosen, (std::set<int>{0, 2}));
    }

    // A second window restores what the first showed when it was closed; a
    // run file that has gone is skipped with a word in the status bar.
    void theSessionIsRestoredByTheNextWindow() {
        QTemporaryDir dir;
        const QStringList paths{writeRun(dir, "one.h5", 3), writeRun(dir, "two.h5", 3), writeRun(dir, "gone.h5", 2)};
        {
            ltlab::ui::MainWindow first;
            showAndActivate(first);
            first.openFiles(paths);
            QVERIFY(settle(first));
            QTreeWidget* tree = first.runsTree();
            clickItem(tree, tree->topLevelItem(1)->child(1)); // two.h5, epoch_0002
            QVERIFY(settle(first));
            first.weightNormView()->setCompareChoice(QFileInfo(paths[0]).absoluteFilePath(), "epoch_0001");
            QVERIFY(settle(first));
            QTest::keyClick(first.geometryView()->samplesBox(), Qt::Key_Up); // a new analysis: before the tau
            QVERIFY(settle(first));
            clickTab(first, "Logit adjustment");
            auto* la = first.findChild<ltlab::ui::LogitAdjustmentView*>();
            la->setMultiplicative(true);
            const int best = la->tauSlider()->value();
            la->tauSlider()->setFocus();
            QTest::keyClick(la->tauSlider(), best < 5 ? Qt::Key_Right : Qt::Key_Left);
            QVERIFY(la->tauSlider()->value() != best);
            QTest::keyClick(first.player()->speedBox(), Qt::Key_Up); // 0.5x
            clickCheckBox(first.player()->loopBox());
            const ltlab::ui::SessionState saved = first.session()->capture();
            QCOMPARE(saved.runs.size(), 3);
            QCOMPARE(saved.snapshot, QString("epoch_0002"));
            QCOMPARE(saved.view, QString("logit_adjustment"));
            first.close(); // quit: the session is saved
            QVERIFY(QFile::remove(paths[2]));

            ltlab::ui::MainWindow second;
            showAndActivate(second);
            QCOMPARE(second.restoreSession(), paths.mid(0, 2));
            QVERIFY(settle(second));
            QCOMPARE(second.openRuns(), (QStringList{saved.runs[0], saved.runs[1]}));
            QCOMPARE(second.selectedSnapshot(), qMakePair(saved.run, QString("epoch_0002")));
            QCOMPARE(second.currentViewStem(), QString("logit_adjustment"));
            QVERIFY(!second.startPageShown());
            QCOMPARE(second.weightNormView()->compareChoice(), qMakePair(saved.overlay_run, QString("epoch_0001")));
            auto* la2 = second.findChild<ltlab::ui::LogitAdjustmentView*>();
            QVERIFY(la2->multiplicative());
            QCOMPARE(la2->tauSlider()->value(), saved.la_tau_index);
            QCOMPARE(second.geometryView()->options().samples_per_class, first.geometryView()->options().samples_per_class);
            QCOMPARE(second.player()->speed(), 0.5);
            QVERIFY(!second.player()->loops());
            QVERIFY2(second.statusBar()->currentMessage().contains("gone.h5"), qPrintable(second.statusBar()->currentMessage()));
            QCOMPARE(second.session()->capture().runs, (QStringList{saved.runs[0], saved.runs[1]}));
        }
        // Nothing left to reopen: the start page, and a word about the missing files.
        for (const QString& p : paths) QFile::remove(p);
        ltlab::ui::MainWindow third;
        showAndActivate(third);
        QVERIFY(third.restoreSession().isEmpty());
        QVERIFY(third.startPageShown());
        QVERIFY(third.session()->missingMessage().contains("one.h5"));
    }

    // A saved run that is there but can no longer be read: the status bar
    // names it with the reason, and the rest of the session is restored.
    void aSessionRunThatCannotBeReadIsNamedWithItsReason() {
        QTemporaryDir dir;
        const QStringList paths{writeRun(dir, "fine.h5", 2), writeRun(dir, "broken.h5", 2)};
        {
            ltlab::ui::MainWindow first;
            showAndActivate(first);
            first.openFiles(paths);
            QVERIFY(settle(first));
            clickTab(first, "Cone effect");
            first.close();
        }
        QFile broken(paths[1]);
        QVERIFY(broken.open(QIODevice::WriteOnly | QIODevice::Truncate));
        broken.write("not an HDF5 file");
        broken.close();
        ltlab::ui::MainWindow second;
        showAndActivate(second);
        QCOMPARE(second.restoreSession().size(), 2);
        QVERIFY(settle(second));
        QCOMPARE(second.openRuns().size(), 1);
        QCOMPARE(second.currentViewStem(), QString("cone"));
        const QString message = second.statusBar()->currentMessage();
        QVERIFY2(message.contains("could not reopen broken.h5: ") && message.contains(paths[1]), qPrintable(message));
    }

    // The Training dock on the open run: la and resume from its buttons, with
    // the dock's settings on the command line (a stand-in ltlab records it).
    void theDocksLaAndResumeOfTheOpenRunRunTheirCommandLines() {
        QTemporaryDir dir;
        const QString fake = dir.filePath("fake-ltlab.sh");
        QFile script(fake);
        QVERIFY(script.open(QIODevice::WriteOnly));
        script.write("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args.txt\"\n");
        script.close();
        script.setPermissions(script.permissions() | QFileDevice::ExeOwner);
        ltlab::ui::TrainingDock dock;
        dock.setExecutable(fake);
        auto* la = dock.findChild<QPushButton*>("la_open_run");
        auto* resume = dock.findChild<QPushButton*>("resume_open_run");
        QVERIFY(la && resume);
        QVERIFY(!la->isEnabled() && !resume->isEnabled()); // no run open
        const QString run = dir.filePath("wb.h5");
        ltlab::TrainConfig config = ltlab::recipeDefaults("wb");
        config.epochs = 4;
        config.stage2_epochs = 2;
        dock.setOpenRun(run, QString::fromStdString(config.toJson()));
        QVERIFY(la->isEnabled() && resume->isEnabled());
        QVERIFY(!la->toolTip().isEmpty() && !resume->toolTip().isEmpty());
        auto* epochs = dock.findChild<QSpinBox*>("resume_epochs");
        auto* stage2 = dock.findChild<QSpinBox*>("resume_stage2_epochs");
        QCOMPARE(epochs->value(), 4);
        QCOMPARE(epochs->minimum(), 4); // extends, never cuts
        QTest::keyClick(epochs, Qt::Key_Up);
        QTest::keyClick(stage2, Qt::Key_Up);
        if (const QString shots = qEnvironmentVariable("LTLAB_SCREENSHOT_DIR"); !shots.isEmpty()) {
            dock.resize(320, 520);
            dock.show();
            QVERIFY(QTest::qWaitForWindowExposed(&dock));
            dock.grab().save(shots + "/session_dock_wb.png");
        }
        QSignalSpy finished(&dock, &ltlab::ui::TrainingDock::runFinished);
        auto recorded = [&dir] {
            QFile f(dir.filePath("args.txt"));
            return f.open(QIODevice::ReadOnly) ? QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts) : QStringList();
        };
        QTest::mouseClick(resume, Qt::LeftButton);
        QVERIFY(finished.wait(20000));
        QCOMPARE(recorded(), (QStringList{"train", "--resume", run, "--epochs", "5", "--stage2-epochs", "3", "--progress-json"}));
        QCOMPARE(finished.last().at(0).toString(), run); // the window re-reads the same file

        auto* tau = dock.findChild<QDoubleSpinBox*>("tau");
        auto* mode = dock.findChild<QComboBox*>("la_mode");
        QVERIFY(tau->isEnabled() && mode->isEnabled()); // for the open run's la, whatever the recipe
        tau->selectAll();
        QTest::keyClicks(tau, "1.5");
        QTest::keyClick(mode, Qt::Key_Down); // additive
        QTest::mouseClick(la, Qt::LeftButton);
        QVERIFY(finished.wait(20000));
        const QString out = dir.filePath("wb-la.h5");
        QCOMPARE(recorded(), (QStringList{"train", "--recipe", "la", "--from", run, "--out", out, "--overwrite", "--la-mode",
                                          "additive", "--progress-json", "--tau", "1.5"}));
        QCOMPARE(finished.last().at(0).toString(), out); // the window opens it

        dock.setOpenRun(run, QString()); // not from ltlab train: la only
        QVERIFY(la->isEnabled() && !resume->isEnabled());
        dock.setOpenRun(QString(), QString());
        QVERIFY(!la->isEnabled());
    }

    // The real thing: la on the selected run through `ltlab train`, whose
    // output opens beside it in the Runs tree.
    void laOfTheSelectedRunOpensTheAdjustedRun() {
        const QString ltlab_bin = qEnvironmentVariable("LTLAB_BIN");
        if (ltlab_bin.isEmpty()) QSKIP("LTLAB_BIN (the ltlab executable) is not set");
        QTemporaryDir dir;
        const QString run = writeRun(dir, "synth.h5", 2);
        ltlab::ui::MainWindow window;
        showAndActivate(window);
        window.setExecutable(ltlab_bin);
        window.openFiles({run});
        QVERIFY(settle(window));
        ltlab::ui::TrainingDock* dock = window.trainingDock();
        QCOMPARE(dock->openRun(), run);
        QSignalSpy finished(dock, &ltlab::ui::TrainingDock::runFinished);
        QTest::mouseClick(dock->findChild<QPushButton*>("la_open_run"), Qt::LeftButton);
        QVERIFY(finished.wait(60000));
        QCOMPARE(finished.last().at(1).toInt(), 0);
        QTRY_COMPARE_WITH_TIMEOUT(topNames(window.runsTree()), (QStringList{"synth.h5", "synth-la.h5"}), 20000);
        QVERIFY(settle(window));
        QTreeWidgetItem* adjusted = window.runsTree()->topLevelItem(1);
        QCOMPARE(adjusted->child(adjusted->childCount() - 1)->text(0), QString("epoch_0002_la"));
        if (const QString shots = qEnvironmentVariable("LTLAB_SCREENSHOT_DIR"); !shots.isEmpty()) {
            window.runsFilter()->setText("0002");
            window.player()->loopBox()->setChecked(false);
            window.findChild<QDockWidget*>("runs_dock")->raise();
            QTest::qWait(300);
            window.grab().save(shots + "/session_window_runs.png");
            dock->raise();
            QTest::qWait(300);
            window.grab().save(shots + "/session_window_dock.png");
        }
    }
};

QTEST_MAIN(TestSession)
#include "test_session.moc"
