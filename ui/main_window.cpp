#include "main_window.h"

#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFutureWatcher>
#include <QHeaderView>
#include <QMenuBar>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QSettings>
#include <QStatusBar>
#include <QTreeWidget>

#include "analysis_task.h"

namespace ltlab::ui {

namespace {
constexpr int kPathRole = Qt::UserRole + 1;
constexpr int kSnapshotRole = Qt::UserRole + 2;
constexpr int kMaxRecent = 10;
} // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setWindowTitle(tr("ltlab — long-tailed recognition workbench"));
    setAcceptDrops(true);
    resize(1100, 720);

    report_ = new QPlainTextEdit(this);
    report_->setReadOnly(true);
    report_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    report_->setPlaceholderText(tr("Open a run file (File ▸ Open, or drop it here) and pick a snapshot."));
    setCentralWidget(report_);

    runs_ = new QTreeWidget(this);
    runs_->setHeaderLabels({tr("Run / snapshot"), tr("Epoch")});
    runs_->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    auto* dock = new QDockWidget(tr("Runs"), this);
    dock->setObjectName("runs_dock");
    dock->setWidget(runs_);
    addDockWidget(Qt::LeftDockWidgetArea, dock);
    connect(runs_, &QTreeWidget::currentItemChanged, this, [this](QTreeWidgetItem* item) { analyzeItem(item); });

    auto* file_menu = menuBar()->addMenu(tr("&File"));
    file_menu->addAction(tr("&Open…"), QKeySequence::Open, this, &MainWindow::openDialog);
    recent_menu_ = file_menu->addMenu(tr("Open &Recent"));
    file_menu->addSeparator();
    file_menu->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
    auto* view_menu = menuBar()->addMenu(tr("&View"));
    view_menu->addAction(dock->toggleViewAction());

    progress_ = new QProgressBar(this);
    progress_->setRange(0, 0);
    progress_->setMaximumWidth(160);
    progress_->hide();
    statusBar()->addPermanentWidget(progress_);
    statusBar()->showMessage(tr("Ready"));

    QSettings settings;
    restoreGeometry(settings.value("window/geometry").toByteArray());
    restoreState(settings.value("window/state").toByteArray());
    updateRecentMenu();
}

QString MainWindow::reportText() const { return report_->toPlainText(); }

void MainWindow::beginWork(const QString& message) {
    ++pending_;
    progress_->show();
    statusBar()->showMessage(message);
}

void MainWindow::endWork() {
    if (--pending_ == 0) progress_->hide();
    emit workFinished();
}

void MainWindow::openDialog() {
    const QStringList paths = QFileDialog::getOpenFileNames(this, tr("Open run files"), QString(),
                                                            tr("Run files (*.h5 *.hdf5);;All files (*)"));
    openFiles(paths);
}

void MainWindow::openFiles(const QStringList& paths) {
    for (const QString& path : paths) {
        beginWork(tr("Opening %1…").arg(path));
        auto* watcher = new QFutureWatcher<OpenedRun>(this);
        connect(watcher, &QFutureWatcher<OpenedRun>::finished, this, [this, watcher] {
            const OpenedRun run = watcher->result();
            watcher->deleteLater();
            if (run.file) {
                addRun(run.path, run.file);
                rememberRecent(run.path);
                statusBar()->showMessage(tr("Opened %1").arg(run.path), 5000);
            } else {
                statusBar()->showMessage(run.error);
                report_->setPlainText(tr("Could not open the run file.\n\n%1").arg(run.error));
            }
            endWork();
        });
        watcher->setFuture(openRunAsync(path));
    }
}

void MainWindow::addRun(const QString& path, std::shared_ptr<const RunFile> file) {
    files_[path] = file;
    auto* top = new QTreeWidgetItem(runs_, {QFileInfo(path).fileName(), QString()});
    top->setToolTip(0, path);
    top->setData(0, kPathRole, path);
    QTreeWidgetItem* last = nullptr;
    for (const SnapshotInfo& snap : file->snapshots()) {
        last = new QTreeWidgetItem(top, {QString::fromStdString(snap.name),
                                         snap.epoch ? QString::number(*snap.epoch) : QString()});
        last->setData(0, kPathRole, path);
        last->setData(0, kSnapshotRole, QString::fromStdString(snap.name));
    }
    top->setExpanded(true);
    if (last) runs_->setCurrentItem(last); // the latest snapshot, as `ltlab analyze` picks
}

void MainWindow::analyzeItem(QTreeWidgetItem* item) {
    if (!item || item->data(0, kSnapshotRole).isNull()) return;
    const auto it = files_.find(item->data(0, kPathRole).toString());
    if (it == files_.end()) return;
    const QString snapshot = item->data(0, kSnapshotRole).toString();
    beginWork(tr("Analysing %1…").arg(snapshot));
    auto* watcher = new QFutureWatcher<AnalysisOutcome>(this);
    connect(watcher, &QFutureWatcher<AnalysisOutcome>::finished, this, [this, watcher] {
        const AnalysisOutcome out = watcher->result();
        watcher->deleteLater();
        // Only the selected snapshot's result is shown; older ones are dropped.
        QTreeWidgetItem* current = runs_->currentItem();
        const bool still_selected = current && current->data(0, kPathRole).toString() == out.path &&
                                    current->data(0, kSnapshotRole).toString() == out.snapshot;
        if (still_selected) {
            report_->setPlainText(out.error.isEmpty() ? out.report : out.error);
            statusBar()->showMessage(out.error.isEmpty() ? tr("Analysed %1 (%2 split)").arg(out.snapshot, out.split)
                                                         : out.error);
        }
        endWork();
    });
    watcher->setFuture(analyzeAsync(it->second, snapshot, QString()));
}

void MainWindow::rememberRecent(const QString& path) {
    QSettings settings;
    QStringList recent = settings.value("recentFiles").toStringList();
    const QString absolute = QFileInfo(path).absoluteFilePath();
    recent.removeAll(absolute);
    recent.prepend(absolute);
    while (recent.size() > kMaxRecent) recent.removeLast();
    settings.setValue("recentFiles", recent);
    updateRecentMenu();
}

void MainWindow::updateRecentMenu() {
    recent_menu_->clear();
    const QStringList recent = QSettings().value("recentFiles").toStringList();
    for (const QString& path : recent)
        recent_menu_->addAction(path, this, [this, path] { openFiles({path}); });
    recent_menu_->setEnabled(!recent.isEmpty());
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
    if (event->mimeData()->hasUrls()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
    QStringList paths;
    for (const QUrl& url : event->mimeData()->urls())
        if (url.isLocalFile()) paths << url.toLocalFile();
    openFiles(paths);
}

void MainWindow::closeEvent(QCloseEvent* event) {
    QSettings settings;
    settings.setValue("window/geometry", saveGeometry());
    settings.setValue("window/state", saveState());
    event->accept();
}

} // namespace ltlab::ui
