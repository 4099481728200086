#include "main_window.h"

#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMessageBox>
#include <QMimeData>
#include <QProcess>
#include <QScreen>
#include <QRegularExpression>
#include <QProgressBar>
#include <QInputDialog>
#include <QDir>
#include <QSettings>
#include <QSlider>
#include <QStackedWidget>
#include <QStandardPaths>
#include <QStatusBar>
#include <QStyle>
#include <QTabWidget>
#include <QTimer>
#include <QToolButton>
#include <QTreeWidget>
#include <QVBoxLayout>

#include "analysis_task.h"
#include "import_dialog.h"
#include "ltlab/checkpoint.h"

#include <qcustomplot.h>
#include "cone_lab_view.h"
#include "cone_view.h"
#include "stage2_view.h"
#include "geometry_view.h"
#include "per_class_view.h"
#include "logit_adjustment_view.h"
#include "report_view.h"
#include "training_dock.h"
#include "training_curves_view.h"
#include "weight_norm_view.h"
#include "figure_set_view.h"
#include "help.h"
#include "layers_view.h"
#include "start_page.h"
#include "epoch_player.h"
#include "runs_filter.h"
#include "session.h"

namespace ltlab::ui {

namespace {
constexpr int kPathRole = Qt::UserRole + 1;
constexpr int kSnapshotRole = Qt::UserRole + 2;
constexpr int kPreviewRole = Qt::UserRole + 3; // the weights of a checkpoint being imported
constexpr int kMaxRecent = 10;

// One file, however it is spelled (relative, "./", a symbolic link).
QString fileKey(const QString& path) {
    const QFileInfo info(path);
    const QString canonical = info.canonicalFilePath();
    return canonical.isEmpty() ? QDir::cleanPath(info.absoluteFilePath()) : canonical;
}
} // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setWindowTitle(tr("ltlab — long-tailed recognition workbench"));
    setAcceptDrops(true);
    // The first window fits the screen it opens on (a 1280 x 720 laptop or projector included).
    if (const QScreen* s = screen()) {
        const QRect avail = s->availableGeometry();
        resize(std::min(1200, avail.width() * 92 / 100), std::min(800, avail.height() * 90 / 100));
    } else {
        resize(1200, 800);
    }

    tabs_ = new QTabWidget(this);
    report_ = new ReportView(this);
    geometry_ = new GeometryView(this);
    weight_norms_ = new WeightNormView(this);
    auto* logit_adjustment = new LogitAdjustmentView(this);
    auto* per_class = new PerClassView(this);
    auto* figure_set = new FigureSetView(this);
    auto* layers = new LayersView(this);
    views_ = {report_,
              geometry_,
              new ConeView(this),
              weight_norms_,
              logit_adjustment,
              per_class,
              new TrainingCurvesView(this),
              figure_set,
              layers,
              new Stage2View(this),
              new ConeLabView(this)};
    for (AnalysisView* v : views_) tabs_->addTab(v, v->title());
    // Behind the start page the tabs wait on the weight norms, the view a run opens on;
    // choosing another tab (the Cone lab preset, a test) brings the tabs forward on it.
    tabs_->setCurrentWidget(weight_norms_);
    connect(tabs_, &QTabWidget::currentChanged, this, [this] {
        deliver(qobject_cast<AnalysisView*>(tabs_->currentWidget()));
        stack_->setCurrentWidget(tabs_);
    });
    // Choices that change what core computes ask for a new analysis.
    connect(geometry_, &GeometryView::optionsChanged, this, &MainWindow::reanalyzeCurrent);
    connect(weight_norms_, &WeightNormView::compareChanged, this, &MainWindow::reanalyzeCurrent);
    connect(figure_set, &FigureSetView::baselineChanged, this, &MainWindow::reanalyzeCurrent);
    connect(layers, &LayersView::computed, this, &MainWindow::refreshRun); // its new /layers group appears
    // The tau slider's per-class accuracies also appear in the per-class view.
    connect(logit_adjustment, &LogitAdjustmentView::tauChanged, per_class, &PerClassView::setLogitAdjustment);
    for (AnalysisView* v : views_)
        if (auto* sandbox = qobject_cast<Stage2View*>(v))
            connect(sandbox, &Stage2View::snapshotSaved, this, [this](const QString& path, const QString& snapshot) {
                if (!snapshot.isEmpty()) refreshRun(path); // the saved snapshot joins the Runs tree
            });
    start_ = new StartPage(this);
    stack_ = new QStackedWidget(this);
    stack_->addWidget(start_);
    stack_->addWidget(tabs_);
    stack_->setCurrentWidget(start_);
    setCentralWidget(stack_);
    connect(start_, &StartPage::openRequested, this, &MainWindow::openDialog);
    connect(start_, &StartPage::importRequested, this, &MainWindow::importDialog);
    connect(start_, &StartPage::demoRequested, this, &MainWindow::openDemo);
    connect(start_, &StartPage::recentRequested, this, [this](const QString& path) { openFiles({path}); });
    connect(start_, &StartPage::presetRequested, this, &MainWindow::choosePreset);

    auto* runs_panel = new QWidget(this);
    runs_ = new QTreeWidget(runs_panel);
    runs_->setHeaderLabels({tr("Run / snapshot"), tr("Epoch")});
    runs_->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    runs_->setToolTip(tr("Open runs and their snapshots in the order opened: a click on a run shows its last snapshot; "
                         "right-click or Ctrl+W closes a run"));
    filter_ = new RunsFilter(runs_, runs_panel);
    auto* runs_layout = new QVBoxLayout(runs_panel);
    runs_layout->setContentsMargins(0, 0, 0, 0);
    runs_layout->addWidget(filter_);
    runs_layout->addWidget(runs_, 1);
    auto* dock = new QDockWidget(tr("Runs"), this);
    dock->setObjectName("runs_dock");
    dock->setWidget(runs_panel);
    addDockWidget(Qt::LeftDockWidgetArea, dock);
    connect(runs_, &QTreeWidget::currentItemChanged, this, [this](QTreeWidgetItem* item) {
        // A run stands for its last snapshot, as `ltlab analyze` picks.
        if (item && !item->parent() && item->childCount() > 0 && !item->data(0, kPreviewRole).toBool()) {
            runs_->setCurrentItem(item->child(item->childCount() - 1));
            return;
        }
        syncTimeline(item);
        showRunInDock(item);
        analyzeItem(item);
    });
    runs_->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(runs_, &QTreeWidget::customContextMenuRequested, this, [this](const QPoint& pos) {
        QTreeWidgetItem* item = runs_->itemAt(pos);
        if (!item) return;
        const QString path = item->data(0, kPathRole).toString();
        if (path.isEmpty() || !runs_by_path_.count(path)) return;
        QMenu menu(this);
        menu.addAction(tr("Close %1").arg(QFileInfo(path).fileName()), this, [this, path] { closeRun(path); });
        menu.exec(runs_->viewport()->mapToGlobal(pos));
    });

    // Epoch timeline: a slider over the selected run's snapshots, with the player.
    player_ = new EpochPlayer(this);
    player_->setBusy([this] { return pending_ > 0; }); // let the current analysis finish first
    player_->setHidden([this](int index) { // the player skips what the Runs filter hides
        QTreeWidgetItem* current = runs_->currentItem();
        QTreeWidgetItem* top = current && current->parent() ? current->parent() : current;
        return top && index >= 0 && index < top->childCount() && top->child(index)->isHidden();
    });
    timeline_ = player_->timeline();
    timeline_label_ = player_->label();
    auto* timeline_dock = new QDockWidget(tr("Epoch timeline"), this);
    timeline_dock->setObjectName("timeline_dock");
    timeline_dock->setWidget(player_);
    addDockWidget(Qt::BottomDockWidgetArea, timeline_dock);
    connect(timeline_, &QSlider::valueChanged, this, [this](int index) {
        QTreeWidgetItem* current = runs_->currentItem();
        if (!current) return;
        QTreeWidgetItem* top = current->parent() ? current->parent() : current;
        if (index >= 0 && index < top->childCount() && top->child(index) != current) runs_->setCurrentItem(top->child(index));
    });

    training_ = new TrainingDock(this);
    addDockWidget(Qt::LeftDockWidgetArea, training_);
    tabifyDockWidget(dock, training_); // Runs and Training share the left side
    dock->raise();
    connect(training_, &TrainingDock::epochFinished, this, [this](const QString& path) { refreshRun(path); });
    connect(training_, &TrainingDock::runFinished, this, [this](const QString& path, int, const QString& message) {
        refreshRun(path);
        statusBar()->showMessage(message, 15000);
    });

    connect(training_, &TrainingDock::coneLabRequested, this, [this](int preset) {
        for (AnalysisView* v : views_)
            if (auto* lab = qobject_cast<ConeLabView*>(v)) {
                lab->applyPreset(preset);
                showView(lab);
            }
    });

    auto* file_menu = menuBar()->addMenu(tr("&File"));
    file_menu->addAction(tr("&Open…"), QKeySequence::Open, this, &MainWindow::openDialog);
    recent_menu_ = file_menu->addMenu(tr("Open &Recent"));
    file_menu->addAction(tr("&Import checkpoint…"), QKeySequence(Qt::CTRL | Qt::Key_I), this, &MainWindow::importDialog)
        ->setToolTip(tr("Evaluate PyTorch checkpoints, TorchScript modules or safetensors files on a dataset"));
    file_menu->addAction(tr("&Export current view…"), QKeySequence(Qt::CTRL | Qt::Key_E), this,
                         &MainWindow::exportCurrentView);
    file_menu->addAction(tr("&Close run"), QKeySequence::Close, this, [this] {
        QTreeWidgetItem* item = runs_->currentItem();
        if (item) closeRun(item->data(0, kPathRole).toString());
    });
    file_menu->addAction(tr("&Filter snapshots"), QKeySequence::Find, this, [this] {
        filter_->setFocus();
        filter_->selectAll();
    });
    file_menu->addSeparator();
    file_menu->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
    auto* view_menu = menuBar()->addMenu(tr("&View"));
    view_menu->addAction(dock->toggleViewAction());
    view_menu->addAction(timeline_dock->toggleViewAction());
    view_menu->addAction(training_->toggleViewAction());
    view_menu->addSeparator();
    presentation_ = view_menu->addAction(tr("&Presentation mode"), this, &MainWindow::setPresentationMode);
    presentation_->setCheckable(true);
    presentation_->setShortcut(QKeySequence(Qt::Key_F5));
    normal_font_ = QApplication::font();
    auto* help_menu = menuBar()->addMenu(tr("&Help"));
    help_menu->addAction(tr("Guide to this &view"), QKeySequence::HelpContents, this, [this] {
        auto* view = startPageShown() ? nullptr : qobject_cast<AnalysisView*>(tabs_->currentWidget());
        showHelpWindow(this, tr("ltlab: the views"), viewGuideHtml(), view ? guideAnchor(view->fileStem()) : QString());
    });
    help_menu->addAction(tr("&Keyboard shortcuts"), this,
                         [this] { showHelpWindow(this, tr("ltlab: keyboard shortcuts"), shortcutsHtml()); });
    help_menu->addAction(tr("&About ltlab"), this, [this] { showHelpWindow(this, tr("About ltlab"), aboutHtml()); });
    // Each tab's tooltip: its first line of the guide.
    for (int i = 0; i < tabs_->count(); ++i)
        if (auto* view = qobject_cast<AnalysisView*>(tabs_->widget(i)))
            tabs_->setTabToolTip(i, tr("%1 — F1 for the guide to this view").arg(view->title()));

    progress_ = new QProgressBar(this);
    progress_->setRange(0, 0);
    progress_->setMaximumWidth(160);
    progress_->hide();
    statusBar()->addPermanentWidget(progress_);
    cancel_ = new QToolButton(this);
    cancel_->setText(tr("Cancel"));
    cancel_->setToolTip(tr("Stop the running analysis (Esc)"));
    cancel_->setShortcut(Qt::Key_Escape);
    cancel_->hide();
    statusBar()->addPermanentWidget(cancel_);
    connect(cancel_, &QToolButton::clicked, this, &MainWindow::cancelAnalysis);
    import_progress_ = new QProgressBar(this);
    import_progress_->setRange(0, 1000);
    import_progress_->setMaximumWidth(160);
    import_progress_->setFormat(tr("import %p%"));
    import_progress_->hide();
    statusBar()->addPermanentWidget(import_progress_);
    import_cancel_ = new QToolButton(this);
    import_cancel_->setText(tr("Cancel import"));
    import_cancel_->setToolTip(tr("Stop the import; the checkpoints already evaluated stay in the run file"));
    import_cancel_->hide();
    statusBar()->addPermanentWidget(import_cancel_);
    connect(import_cancel_, &QToolButton::clicked, this, &MainWindow::cancelImport);
    // The analysis reports its progress through atomics; the bar reads them.
    progress_timer_ = new QTimer(this);
    progress_timer_->setInterval(100);
    connect(progress_timer_, &QTimer::timeout, this, [this] {
        if (analysis_progress_) {
            progress_->setRange(0, 1000);
            progress_->setValue(analysis_progress_->permille.load());
        } else {
            progress_->setRange(0, 0); // busy: opening a file
        }
    });
    statusBar()->showMessage(tr("Ready"));

    const QSettings settings;
    restoreGeometry(settings.value("window/geometry").toByteArray());
    if (const QScreen* s = screen()) { // saved on a larger screen: shrink to this one
        const QRect avail = s->availableGeometry();
        if (width() > avail.width() || height() > avail.height())
            resize(std::min(width(), avail.width()), std::min(height(), avail.height()));
    }
    restoreState(settings.value("window/state").toByteArray());
    training_->restoreSettings();
    if (settings.value("window/presentation", false).toBool()) presentation_->trigger();
    player_->restoreSettings();
    session_ = new Session(this);
    session_->restoreViewSettings();
    if (auto* presets = training_->findChild<QComboBox*>("preset")) {
        QStringList titles;
        for (int i = 0; i < presets->count(); ++i) titles << presets->itemText(i);
        start_->setPresets(titles);
    }
    updateRecentMenu();
}

bool MainWindow::startPageShown() const { return stack_->currentWidget() == start_; }

void MainWindow::showView(QWidget* view) {
    tabs_->setCurrentWidget(view);
    stack_->setCurrentWidget(tabs_);
}

void MainWindow::showStartPage() {
    stack_->setCurrentWidget(start_);
    tabs_->setCurrentWidget(weight_norms_); // where the next run opens (shown with it)
    stack_->setCurrentWidget(start_);
}

void MainWindow::choosePreset(int index) {
    training_->show();
    training_->raise();
    auto* presets = training_->findChild<QComboBox*>("preset");
    if (!presets || index <= 0 || index >= presets->count()) return;
    if (presets->currentIndex() == index) training_->applyPreset(index); // chosen again: its settings again
    else presets->setCurrentIndex(index);                               // applies it
    presets->setFocus();
    statusBar()->showMessage(tr("Training dock: \"%1\" is set; Start trains it").arg(presets->itemText(index)), 10000);
}

namespace {
const char* const kDemoFiles[] = {"synthetic-lt.h5", "fashion-mnist-lt-wb.h5"}; // tools/run-demo.sh's
} // namespace

void MainWindow::openDemo() {
    if (demo_) return; // being written
    QStringList folders;
    if (const QString env = qEnvironmentVariable("LTLAB_DEMO_DIR"); !env.isEmpty()) folders << env;
    folders << QDir::current().filePath("demo") << QDir(QCoreApplication::applicationDirPath()).filePath("../../demo")
            << QDir(QCoreApplication::applicationDirPath()).filePath("../share/ltlab/demo");
    const QString own = QDir(QStandardPaths::writableLocation(QStandardPaths::AppDataLocation)).filePath("demo");
    folders << own;
    for (const QString& folder : folders) {
        QStringList found;
        for (const char* name : kDemoFiles)
            if (QFileInfo::exists(QDir(folder).filePath(name))) found << QDir(folder).absoluteFilePath(name);
        if (!found.isEmpty()) {
            openFiles(found);
            return;
        }
    }
    // None yet: `ltlab synth` writes the synthetic one (a second or two), then it opens.
    const QString folder = qEnvironmentVariable("LTLAB_DEMO_DIR").isEmpty() ? own : qEnvironmentVariable("LTLAB_DEMO_DIR");
    QDir().mkpath(folder);
    const QString out = QDir(folder).absoluteFilePath(kDemoFiles[0]);
    demo_ = new QProcess(this);
    demo_->setProcessChannelMode(QProcess::MergedChannels);
    start_->setDemoBusy(true, tr("Writing the demo run %1…").arg(out));
    beginWork(tr("Writing the demo run…"));
    connect(demo_, &QProcess::finished, this, [this, out](int code, QProcess::ExitStatus status) {
        const QString log = QString::fromLocal8Bit(demo_->readAll()).trimmed();
        demo_->deleteLater();
        demo_ = nullptr;
        endWork();
        if (status == QProcess::NormalExit && code == 0 && QFileInfo::exists(out)) {
            start_->setDemoBusy(false);
            openFiles({out});
        } else {
            const QString why = tr("Could not write the demo run %1: %2").arg(out, log.isEmpty() ? tr("ltlab synth failed") : log);
            start_->setDemoBusy(false, why);
            statusBar()->showMessage(why, 15000);
        }
    });
    connect(demo_, &QProcess::errorOccurred, this, [this, out](QProcess::ProcessError error) {
        if (error != QProcess::FailedToStart || !demo_) return;
        const QString why = tr("Could not write the demo run %1: %2").arg(out, demo_->errorString());
        demo_->deleteLater();
        demo_ = nullptr;
        endWork();
        start_->setDemoBusy(false, why);
        statusBar()->showMessage(why, 15000);
    });
    demo_->start(executable_.isEmpty() ? QCoreApplication::applicationFilePath() : executable_,
                 {"synth", "--out", out, "--classes", "10", "--dim", "64", "--imbalance", "100", "--snapshots", "5",
                  "--seed", "1"});
}

QString MainWindow::reportText() const {
    deliver(report_);
    return report_->text();
}

GeometryView* MainWindow::geometryView() const {
    deliver(geometry_);
    return geometry_;
}

WeightNormView* MainWindow::weightNormView() const {
    deliver(weight_norms_);
    return weight_norms_;
}

AnalysisView* MainWindow::view(const QString& file_stem) const {
    for (AnalysisView* v : views_)
        if (v->fileStem() == file_stem) {
            deliver(v);
            return v;
        }
    return nullptr;
}

const std::vector<AnalysisView*>& MainWindow::views() const {
    for (AnalysisView* v : views_) deliver(v);
    return views_;
}

void MainWindow::deliver(AnalysisView* view) const {
    if (view && stale_.erase(view) && view_data_) view->showData(*view_data_);
}

void MainWindow::showEveryView() {
    for (int i = 0; i < tabs_->count(); ++i) {
        tabs_->setCurrentIndex(i);
        QApplication::processEvents(); // lays out, draws the plots, renders the 3D view
    }
    if (runs_by_path_.empty()) showStartPage();
    else tabs_->setCurrentWidget(geometry_);
    QApplication::processEvents();
}

void MainWindow::cancelAnalysis() {
    if (analysis_progress_) analysis_progress_->cancel = true;
}

void MainWindow::beginWork(const QString& message) {
    ++pending_;
    progress_->show();
    progress_timer_->start();
    statusBar()->showMessage(message);
}

void MainWindow::endWork() {
    if (--pending_ == 0) {
        progress_->hide();
        progress_timer_->stop();
    }
    cancel_->setVisible(analysis_progress_ != nullptr);
    emit workFinished();
}

void MainWindow::openDialog() {
    const QStringList paths = QFileDialog::getOpenFileNames(this, tr("Open run files"), QString(),
                                                            tr("Run files (*.h5 *.hdf5);;All files (*)"));
    openFiles(paths);
}

namespace {
const QStringList kExportSuffixes{"pdf", "svg", "png", "csv", "txt", "json"};
} // namespace

QString exportPathFor(const QString& path, const QString& chosen_filter) {
    if (kExportSuffixes.contains(QFileInfo(path).suffix().toLower())) return path; // what the user typed wins
    // "PDF (*.pdf)" -> ".pdf"
    const int star = chosen_filter.indexOf("*.");
    if (star < 0) return path;
    const QString ext = chosen_filter.mid(star + 2).section(QRegularExpression("[ )]"), 0, 0);
    return ext.isEmpty() ? path : path + "." + ext;
}

void MainWindow::exportCurrentView() {
    auto* view = qobject_cast<AnalysisView*>(tabs_->currentWidget());
    if (!view) return;
    deliver(view);
    const bool text = view == report_;
    QString filter = text ? tr("Text (*.txt);;JSON (*.json)")
                          : tr("PDF (*.pdf);;SVG (*.svg);;PNG (*.png);;Data as CSV (*.csv)");
    QSettings settings;
    QString chosen;
    const QString start = QDir(settings.value("export/folder").toString()).filePath(view->fileStem());
    const QString typed = QFileDialog::getSaveFileName(this, tr("Export %1").arg(view->title()), start, filter, &chosen);
    if (typed.isEmpty()) return;
    const QString path = exportPathFor(typed, chosen);
    settings.setValue("export/folder", QFileInfo(path).absolutePath());
    int dpi = settings.value("export/dpi", 300).toInt();
    if (QFileInfo(path).suffix().toLower() == "png") { // the 3D view renders at dpi / 96 times its size
        bool accepted = false;
        dpi = QInputDialog::getInt(this, tr("PNG resolution"), tr("Dots per inch:"), dpi, 72, 1200, 50, &accepted);
        if (!accepted) return;
        settings.setValue("export/dpi", dpi);
    }
    exportView(view, path, dpi);
}

bool MainWindow::exportView(AnalysisView* view, const QString& path, int dpi) {
    deliver(view);
    const QString suffix = QFileInfo(path).suffix().toLower();
    QString problem;
    const QFileInfo folder(QFileInfo(path).absolutePath());
    if (!folder.isDir()) problem = tr("the folder %1 does not exist").arg(folder.filePath());
    else if (!folder.isWritable()) problem = tr("the folder %1 is not writable").arg(folder.filePath());
    else if (!kExportSuffixes.contains(suffix))
        problem = tr("ltlab writes .pdf, .svg, .png, .csv, .txt or .json; '%1' is none of these").arg(QFileInfo(path).fileName());
    else if (suffix == "csv" || suffix == "json") {
        QString failed;
        writeViewData(*view, path, &failed); // with the view's other figures' data beside it
        if (!failed.isEmpty()) problem = tr("could not write %1").arg(failed);
    } else if (!view->exportFigure(path, dpi)) {
        problem = tr("the figure could not be written");
    }
    if (problem.isEmpty()) {
        statusBar()->showMessage(tr("Exported %1").arg(path), 8000);
        return true;
    }
    statusBar()->showMessage(tr("Could not export to %1: %2").arg(path, problem), 15000);
    // A real dialog, but not a blocking one (nor for a test).
    auto* box = new QMessageBox(QMessageBox::Warning, tr("Export failed"),
                                tr("Could not export to %1:\n%2").arg(path, problem), QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
    return false;
}

void MainWindow::openFiles(const QStringList& paths) {
    for (const QString& path : paths) {
        // The same file twice: show the open one (its last snapshot).
        const QString absolute = fileKey(path);
        bool open = false;
        for (const auto& [p, run] : runs_by_path_)
            if (fileKey(p) == absolute && run.item) {
                runs_->setCurrentItem(run.item);
                open = true;
            }
        if (open || opening_.contains(absolute)) continue;
        opening_.insert(absolute);
        open_order_[path] = next_order_++; // the tree keeps the order given, whichever opens first
        beginWork(tr("Opening %1…").arg(path));
        auto* watcher = new QFutureWatcher<OpenedRun>(this);
        connect(watcher, &QFutureWatcher<OpenedRun>::finished, this, [this, watcher] {
            OpenedRun opened = watcher->result();
            watcher->deleteLater();
            opening_.remove(fileKey(opened.path));
            if (opened.file) {
                addRun(opened.path, Run{opened.file, std::move(opened.history), nullptr, opened.layers, opened.layers_error});
                rememberRecent(opened.path);
                statusBar()->showMessage(tr("Opened %1").arg(opened.path), 5000);
            } else {
                statusBar()->showMessage(opened.error);
                report_->showMessage(tr("Could not open the run file.\n\n%1").arg(opened.error));
                showView(report_);
                emit openFailed(opened.path, opened.error);
            }
            endWork();
        });
        watcher->setFuture(openRunAsync(path));
    }
}

void MainWindow::setPresentationMode(bool on) {
    if (on == presenting_) return;
    if (presentation_->isChecked() != on) {
        const QSignalBlocker block(presentation_);
        presentation_->setChecked(on);
    }
    if (on) { // the layout to give back, exactly
        saved_geometry_ = saveGeometry();
        saved_state_ = saveState();
        saved_rect_ = geometry();
        saved_maximized_ = isMaximized();
        saved_dock_sizes_.clear();
        for (QDockWidget* dock : findChildren<QDockWidget*>())
            if (dock->isVisible()) saved_dock_sizes_.append({dock, dock->size()});
    }
    presenting_ = on;
    // Larger fonts, as large as the screen allows: 1.25x on a 720-line projector, 1.6x from 1080 lines.
    const double lines = screen() ? screen()->geometry().height() : 1080;
    const double scale = on ? std::clamp(1.25 * lines / 720.0, 1.25, 1.6) : 1.0;
    QFont font = normal_font_;
    font.setPointSizeF(normal_font_.pointSizeF() * scale);
    QApplication::setFont(font);
    for (AnalysisView* v : views_)
        for (QCustomPlot* plot : v->findChildren<QCustomPlot*>()) setPlotFontScale(plot, scale);
    if (on) {
        // The view fills the screen: the docks step aside (the epoch timeline stays, to step
        // through a run in a lecture), and View > ... brings any of them back.
        for (QDockWidget* dock : findChildren<QDockWidget*>())
            if (dock->objectName() != "timeline_dock") dock->hide();
        showFullScreen();
    } else {
        showNormal();
        // Once the window has left full screen and laid out at its old size:
        // the geometry exactly (restoreGeometry would add the frame again
        // without a window manager), then the docks' sizes within it.
        auto restore = [this] {
            if (presenting_) return;
            if (saved_maximized_) showMaximized();
            else setGeometry(saved_rect_);
            restoreState(saved_state_);
            // And the docks' sizes as they were (restoreState alone lets the
            // dock areas settle to their contents after the resize).
            QList<QDockWidget*> side, bottom;
            QList<int> widths, heights;
            for (const auto& [dock, size] : saved_dock_sizes_) {
                if (!dock || !dock->isVisible() || dock->isFloating()) continue;
                const Qt::DockWidgetArea area = dockWidgetArea(dock);
                if (area == Qt::LeftDockWidgetArea || area == Qt::RightDockWidgetArea) side << dock, widths << size.width();
                else bottom << dock, heights << size.height();
            }
            if (!side.isEmpty()) resizeDocks(side, widths, Qt::Horizontal);
            if (!bottom.isEmpty()) resizeDocks(bottom, heights, Qt::Vertical);
        };
        restore();
        QTimer::singleShot(0, this, restore);
        QTimer::singleShot(250, this, restore); // after the window system has answered the resize
    }
}

void MainWindow::refreshRun(const QString& path) {
    if (!QFileInfo::exists(path)) return; // before the first epoch is written
    // HDF5 shares one open file per process and would serve the new open from
    // the old one's cached metadata: let go of ours so the file is read afresh.
    if (auto it = runs_by_path_.find(path); it != runs_by_path_.end()) it->second.file.reset();
    if (shown_ && shown_->path == path) shown_.reset(); // it holds the file too
    beginWork(tr("Reading %1…").arg(QFileInfo(path).fileName()));
    auto* watcher = new QFutureWatcher<OpenedRun>(this);
    connect(watcher, &QFutureWatcher<OpenedRun>::finished, this, [this, watcher] {
        OpenedRun opened = watcher->result();
        watcher->deleteLater();
        if (opened.file) {
            Run run{opened.file, std::move(opened.history), nullptr, opened.layers, opened.layers_error};
            if (runs_by_path_.count(opened.path))
                updateRun(opened.path, std::move(run));
            else
                addRun(opened.path, std::move(run));
        } else {
            statusBar()->showMessage(opened.error, 8000); // e.g. read during a write: the next epoch retries
        }
        endWork();
    });
    watcher->setFuture(openRunAsync(path));
}

void MainWindow::updateRun(const QString& path, Run run) {
    Run& existing = runs_by_path_[path];
    QTreeWidgetItem* top = existing.item;
    QTreeWidgetItem* current = runs_->currentItem();
    const bool following = !current || current == top || (current->parent() == top && top->indexOfChild(current) == top->childCount() - 1);
    QStringList known;
    for (int i = 0; i < top->childCount(); ++i) known << top->child(i)->data(0, kSnapshotRole).toString();
    for (const SnapshotInfo& snap : run.file->snapshots()) {
        const QString name = QString::fromStdString(snap.name);
        if (known.contains(name)) continue;
        auto* item = new QTreeWidgetItem(top, {name, snap.epoch ? QString::number(*snap.epoch) : QString()});
        item->setData(0, kPathRole, path);
        item->setData(0, kSnapshotRole, name);
        if (!snap.label.empty()) item->setToolTip(0, QString::fromStdString(snap.label));
    }
    run.item = top;
    existing = std::move(run);
    updateCompareChoices();
    showRunInDock(runs_->currentItem()); // its configuration may have grown (resume --epochs)
    if (following && top->childCount() > 0 && top->child(top->childCount() - 1) != current)
        runs_->setCurrentItem(top->child(top->childCount() - 1));
    else
        syncTimeline(runs_->currentItem());
    updateLayerResults();
}

void MainWindow::closeRun(const QString& path) {
    const auto it = runs_by_path_.find(path);
    if (it == runs_by_path_.end()) return;
    if (shown_ && shown_->path == path) shown_.reset();
    const bool showing = view_data_ && view_data_->path == path;
    delete it->second.item;
    runs_by_path_.erase(it);
    open_order_.erase(path);
    updateCompareChoices();
    if (showing && !runs_->currentItem()) { // nothing else selected: the views empty
        view_data_ = std::make_shared<const ViewData>();
        stale_ = {views_.begin(), views_.end()};
        deliver(qobject_cast<AnalysisView*>(tabs_->currentWidget()));
        timeline_->setEnabled(false);
        timeline_label_->setText(tr("no run"));
    }
    updateLayerResults();
    if (runs_by_path_.empty() && !preview_item_) showStartPage(); // nothing open: the first screen again
    statusBar()->showMessage(tr("Closed %1").arg(path), 5000);
}

void MainWindow::showRunInDock(QTreeWidgetItem* item) {
    const auto it = item ? runs_by_path_.find(item->data(0, kPathRole).toString()) : runs_by_path_.end();
    if (it == runs_by_path_.end() || !it->second.file) {
        if (!item) training_->setOpenRun(QString(), QString()); // nothing selected (a run being re-read keeps its entry)
        return;
    }
    const std::optional<std::string>& config = it->second.file->config();
    training_->setOpenRun(it->first, config ? QString::fromStdString(*config) : QString());
}

QStringList MainWindow::openRuns() const {
    QStringList paths;
    for (int i = 0; i < runs_->topLevelItemCount(); ++i) {
        const QString path = runs_->topLevelItem(i)->data(0, kPathRole).toString();
        if (runs_by_path_.count(path)) paths << QDir::cleanPath(QFileInfo(path).absoluteFilePath());
    }
    return paths;
}

QPair<QString, QString> MainWindow::selectedSnapshot() const {
    const QTreeWidgetItem* item = runs_->currentItem();
    if (!item || item->data(0, kPathRole).toString().isEmpty()) return {};
    return {QDir::cleanPath(QFileInfo(item->data(0, kPathRole).toString()).absoluteFilePath()),
            item->data(0, kSnapshotRole).toString()};
}

bool MainWindow::selectSnapshot(const QString& path, const QString& snapshot) {
    const QString key = fileKey(path);
    for (int i = 0; i < runs_->topLevelItemCount(); ++i) {
        QTreeWidgetItem* top = runs_->topLevelItem(i);
        if (top->data(0, kPathRole).toString().isEmpty() || fileKey(top->data(0, kPathRole).toString()) != key) continue;
        for (int j = 0; j < top->childCount(); ++j)
            if (top->child(j)->data(0, kSnapshotRole).toString() == snapshot) {
                runs_->setCurrentItem(top->child(j));
                return true;
            }
        runs_->setCurrentItem(top); // the snapshot is gone: the run's last
        return false;
    }
    return false;
}

QString MainWindow::currentViewStem() const {
    const auto* view = qobject_cast<AnalysisView*>(tabs_->currentWidget());
    return view ? view->fileStem() : QString();
}

bool MainWindow::showViewNamed(const QString& file_stem) {
    for (AnalysisView* v : views_)
        if (v->fileStem() == file_stem) {
            showView(v);
            return true;
        }
    return false;
}

QStringList MainWindow::restoreSession() { return session_->restore(); }

void MainWindow::addRun(const QString& path, Run run) {
    // In the order the files were given (runs from training and import: last).
    const int order = open_order_.count(path) ? open_order_[path] : (open_order_[path] = next_order_++);
    int index = runs_->topLevelItemCount();
    for (int i = 0; i < runs_->topLevelItemCount(); ++i) {
        const QString other = runs_->topLevelItem(i)->data(0, kPathRole).toString();
        if (open_order_.count(other) && open_order_[other] > order) {
            index = i;
            break;
        }
    }
    auto* top = new QTreeWidgetItem(QStringList{QFileInfo(path).fileName(), QString()});
    runs_->insertTopLevelItem(index, top);
    top->setToolTip(0, path);
    top->setData(0, kPathRole, path);
    run.item = top;
    QTreeWidgetItem* last = nullptr;
    for (const SnapshotInfo& snap : run.file->snapshots()) {
        last = new QTreeWidgetItem(top, {QString::fromStdString(snap.name),
                                         snap.epoch ? QString::number(*snap.epoch) : QString()});
        last->setData(0, kPathRole, path);
        last->setData(0, kSnapshotRole, QString::fromStdString(snap.name));
        if (!snap.label.empty()) last->setToolTip(0, QString::fromStdString(snap.label));
    }
    const bool from_nothing = startPageShown();
    runs_by_path_[path] = std::move(run);
    updateCompareChoices();
    top->setExpanded(true);
    // Opened from the start page: the view that tells the run's story, the
    // classifier's weight norms head to tail (every run file has a classifier).
    if (from_nothing) showView(weight_norms_);
    if (last) runs_->setCurrentItem(last); // the latest snapshot, as `ltlab analyze` picks
    updateLayerResults();
}

std::vector<ViewData::LayerResults> MainWindow::layerResults() const {
    std::vector<ViewData::LayerResults> out;
    auto add = [&](const QString& path) {
        const auto it = runs_by_path_.find(path);
        if (it == runs_by_path_.end()) return;
        out.push_back({QFileInfo(path).fileName(), path,
                       it->second.layers ? it->second.layers : std::make_shared<const std::vector<LayerRun>>(),
                       it->second.layers_error});
    };
    // (the tree's order, not the selected run first: each line keeps its colour when another run is selected)
    for (int i = 0; i < runs_->topLevelItemCount(); ++i) add(runs_->topLevelItem(i)->data(0, kPathRole).toString());
    return out;
}

void MainWindow::updateLayerResults() {
    if (!view_data_) return; // the first analysis brings them
    auto data = std::make_shared<ViewData>(*view_data_);
    data->layer_results = layerResults();
    view_data_ = std::move(data);
    for (AnalysisView* v : views_)
        if (qobject_cast<LayersView*>(v)) stale_.insert(v);
    deliver(qobject_cast<AnalysisView*>(tabs_->currentWidget()));
}

void MainWindow::syncTimeline(QTreeWidgetItem* item) {
    if (!item) return;
    QTreeWidgetItem* top = item->parent() ? item->parent() : item;
    const QSignalBlocker block(timeline_);
    timeline_->setEnabled(top->childCount() > 1);
    timeline_->setRange(0, std::max(0, top->childCount() - 1));
    if (item->parent()) timeline_->setValue(top->indexOfChild(item));
    timeline_label_->setText(item->parent() ? tr("%1 (%2 of %3)")
                                                  .arg(item->text(0))
                                                  .arg(top->indexOfChild(item) + 1)
                                                  .arg(top->childCount())
                                            : tr("%1 snapshots").arg(top->childCount()));
}

void MainWindow::analyzeItem(QTreeWidgetItem* item) {
    if (item && item->data(0, kPreviewRole).toBool()) { // a checkpoint's weights, before its run file exists
        if (!preview_data_) return;                      // still being read: shown when it arrives
        view_data_ = preview_data_;
        stale_ = {views_.begin(), views_.end()};
        deliver(qobject_cast<AnalysisView*>(tabs_->currentWidget()));
        shown_.reset();
        return;
    }
    if (!item || item->data(0, kSnapshotRole).isNull()) return;
    const auto it = runs_by_path_.find(item->data(0, kPathRole).toString());
    if (it == runs_by_path_.end() || !it->second.file) return; // being re-read: the refresh selects again
    AnalysisRequest request;
    request.snapshot = item->data(0, kSnapshotRole).toString();
    request.geometry = geometry_->options();
    const QPair<QString, QString> compare = weight_norms_->compareChoice();
    QString compare_note;
    if (const auto other = runs_by_path_.find(compare.first); other != runs_by_path_.end() && other->second.file) {
        request.compare_file = other->second.file;
        request.compare_snapshot = compare.second;
    } else if (!compare.first.isEmpty()) { // that run is being re-read (training): next time
        compare_note = tr("the overlay %1 is being re-read").arg(QFileInfo(compare.first).fileName());
    }
    for (AnalysisView* v : views_) // the figure set's baseline run
        if (auto* figure_set = qobject_cast<FigureSetView*>(v)) {
            const QPair<QString, QString> baseline = figure_set->baselineChoice();
            if (const auto other = runs_by_path_.find(baseline.first); other != runs_by_path_.end() && other->second.file) {
                request.baseline_file = other->second.file;
                request.baseline_snapshot = baseline.second;
            }
        }
    // Only the newest analysis is shown: stop the one running before it.
    if (analysis_progress_) analysis_progress_->cancel = true;
    analysis_progress_ = request.progress = std::make_shared<AnalysisProgress>();
    cancel_->show();
    beginWork(tr("Analysing %1…").arg(request.snapshot));
    auto* watcher = new QFutureWatcher<AnalysisOutcome>(this);
    connect(watcher, &QFutureWatcher<AnalysisOutcome>::finished, this,
            [this, watcher, progress = request.progress, compare_note] {
        AnalysisOutcome out = watcher->result();
        if (!compare_note.isEmpty()) out.warning += (out.warning.isEmpty() ? "" : "; ") + compare_note;
        watcher->deleteLater();
        const bool newest = progress == analysis_progress_;
        if (newest) analysis_progress_.reset();
        if (out.cancelled) {
            if (newest) statusBar()->showMessage(tr("Analysis of %1 cancelled").arg(out.snapshot));
            endWork();
            return;
        }
        // Only the selected snapshot's result is shown; older ones are dropped.
        QTreeWidgetItem* current = runs_->currentItem();
        const bool still_selected = current && current->data(0, kPathRole).toString() == out.path &&
                                    current->data(0, kSnapshotRole).toString() == out.snapshot;
        const auto run = runs_by_path_.find(out.path);
        if (still_selected && run != runs_by_path_.end() && run->second.file) {
            if (out.error.isEmpty()) {
                ViewData data = viewDataFor(out, run->second.history);
                for (const auto& [path, other] : runs_by_path_)
                    if (path != out.path && other.history)
                        data.other_histories.emplace_back(QFileInfo(path).fileName(), *other.history);
                data.layer_results = layerResults();
                view_data_ = std::make_shared<const ViewData>(std::move(data));
                stale_ = {views_.begin(), views_.end()};
                deliver(qobject_cast<AnalysisView*>(tabs_->currentWidget()));
                shown_ = std::make_shared<const AnalysisOutcome>(out); // reused when only the 3D options or the overlay change
                // A train split smaller than the training set is ltlab train's capped sample: say so.
                QString split = tr("%1 split").arg(out.split);
                std::int64_t training_set = 0;
                for (auto n : out.file->classes().train_counts) training_set += n;
                if (out.split == "train" && out.analysis && out.analysis->num_samples > 0 &&
                    out.analysis->num_samples < training_set)
                    split = tr("train split, a sample of %1 of the %2 training images")
                                .arg(out.analysis->num_samples)
                                .arg(training_set);
                statusBar()->showMessage(out.warning.isEmpty() ? tr("Analysed %1 (%2)").arg(out.snapshot, split)
                                                               : tr("Analysed %1 (%2), but %3").arg(out.snapshot, split, out.warning));
            } else {
                stale_.erase(report_); // the error, not an older analysis, when it is shown
                report_->showMessage(out.error);
                showView(report_);
                statusBar()->showMessage(out.error);
            }
        }
        endWork();
    });
    watcher->setFuture(analyzeAsync(it->second.file, request, shown_));
}

void MainWindow::reanalyzeCurrent() { analyzeItem(runs_->currentItem()); }

void MainWindow::updateCompareChoices() {
    QList<QPair<QString, QString>> choices;
    QStringList labels;
    for (const auto& [path, run] : runs_by_path_) {
        if (!run.file) continue;
        for (const SnapshotInfo& snap : run.file->snapshots()) {
            choices.append({path, QString::fromStdString(snap.name)});
            labels << QStringLiteral("%1: %2").arg(QFileInfo(path).fileName(), QString::fromStdString(snap.name));
        }
    }
    weight_norms_->setCompareChoices(choices, labels);
    for (AnalysisView* v : views_)
        if (auto* figure_set = qobject_cast<FigureSetView*>(v)) figure_set->setBaselineChoices(choices, labels);
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
    start_->setRecentFiles(recent);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
    if (event->mimeData()->hasUrls()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
    // Run files open; checkpoints (and folders of them) go to the import
    // dialog; anything else is named with what ltlab can open.
    QStringList runs, checkpoints, others;
    for (const QUrl& url : event->mimeData()->urls()) {
        if (!url.isLocalFile()) continue;
        const QString path = url.toLocalFile();
        if (QFileInfo(path).isDir()) {
            checkpoints << path;
            continue;
        }
        switch (ckpt::sniffFile(path.toStdString())) {
        case ckpt::FileKind::RunFile: runs << path; break;
        case ckpt::FileKind::Checkpoint: checkpoints << path; break;
        case ckpt::FileKind::Unreadable:
        case ckpt::FileKind::Other: others << path; break;
        }
    }
    event->acceptProposedAction();
    openFiles(runs);
    if (!others.isEmpty()) {
        const QString message =
            tr("ltlab opens run files (HDF5, .h5) and imports checkpoints (PyTorch torch.save files such as .pt, .pth, "
               ".ckpt, .paramOnly, .bin; TorchScript modules; safetensors). Not one of these: %1")
                .arg(others.join(", "));
        statusBar()->showMessage(message, 15000);
        report_->showMessage(message);
        stale_.erase(report_);
        showView(report_);
    }
    // After the drop has returned: a dialog opened inside it would run during the drag.
    if (!checkpoints.isEmpty()) QTimer::singleShot(0, this, [this, checkpoints] { showImportDialog(checkpoints); });
}

// ---- importing checkpoints ---------------------------------------------------------------

void MainWindow::setExecutable(const QString& path) {
    executable_ = path;
    training_->setExecutable(path);
    for (AnalysisView* v : views_)
        if (auto* layers = qobject_cast<LayersView*>(v)) layers->setExecutable(path);
}

bool MainWindow::importRunning() const { return import_ && import_->state() != QProcess::NotRunning; }

void MainWindow::importDialog() {
    const QStringList paths = QFileDialog::getOpenFileNames(
        this, tr("Import checkpoints"), QString(),
        tr("Checkpoints (*.pt *.pth *.ckpt *.paramOnly *.bin *.tar *.safetensors);;All files (*)"));
    if (!paths.isEmpty()) showImportDialog(paths);
}

ImportDialog* MainWindow::showImportDialog(const QStringList& checkpoints) {
    auto* dialog = new ImportDialog(checkpoints, this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog] { startImport(dialog->request()); });
    dialog->open();
    return dialog;
}

void MainWindow::startImport(const ImportRequest& request) {
    if (importRunning()) {
        QMessageBox::information(this, tr("Import"), tr("An import is running; start the next one when it is done."));
        return;
    }
    import_request_ = request;
    import_cancelled_ = false;
    preview_data_.reset();
    delete preview_item_;
    // The Runs item that stands for the run until its file is there.
    preview_item_ = new QTreeWidgetItem(runs_, {tr("%1 — importing…").arg(QFileInfo(request.out).fileName()), QString()});
    preview_item_->setToolTip(0, request.checkpoints.join("\n"));
    preview_item_->setData(0, kPreviewRole, true);
    auto* weights = new QTreeWidgetItem(preview_item_, {tr("weights (before evaluation)"), QString()});
    weights->setData(0, kPreviewRole, true);
    weights->setToolTip(0, tr("The classifier of the checkpoint, with the class counts of the train split; "
                              "the features follow when the evaluation is done"));
    preview_item_->setExpanded(true);
    runs_->setCurrentItem(weights);

    auto* watcher = new QFutureWatcher<ImportPreview>(this);
    connect(watcher, &QFutureWatcher<ImportPreview>::finished, this, [this, watcher] {
        showPreview(watcher->result());
        watcher->deleteLater();
    });
    watcher->setFuture(importPreviewAsync(request));

    delete import_;
    import_ = new QProcess(this);
    import_->setProcessChannelMode(QProcess::SeparateChannels);
    connect(import_, &QProcess::readyReadStandardOutput, this, &MainWindow::readImportOutput);
    connect(import_, &QProcess::finished, this, [this](int code, QProcess::ExitStatus status) {
        finishImport(code, status != QProcess::NormalExit);
    });
    connect(import_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError error) {
        if (error == QProcess::FailedToStart) finishImport(-2, true);
    });
    import_progress_->setValue(0);
    import_progress_->show();
    import_cancel_->show();
    import_clock_.start();
    statusBar()->showMessage(tr("Importing %1…").arg(request.checkpoints.join(", ")));
    import_->start(executable_.isEmpty() ? QCoreApplication::applicationFilePath() : executable_, importArguments(request));
}

void MainWindow::showPreview(const ImportPreview& preview) {
    if (!preview_item_) return; // the import has finished and its run file is open
    QTreeWidgetItem* weights = preview_item_->child(0);
    if (!preview.analysis) {
        weights->setText(0, tr("weights (shown when evaluated)"));
        weights->setToolTip(0, preview.error);
        statusBar()->showMessage(preview.error, 10000);
        return;
    }
    weights->setToolTip(0, tr("%1: the classifier, class counts from the %2").arg(preview.checkpoint, preview.counts_source));
    ViewData data;
    data.run_name = QFileInfo(preview.checkpoint).fileName() + tr(" (weights)");
    data.analysis = preview.analysis;
    data.classes = preview.classes;
    preview_data_ = std::make_shared<const ViewData>(std::move(data));
    QTreeWidgetItem* current = runs_->currentItem();
    if (current && current->data(0, kPreviewRole).toBool()) {
        analyzeItem(current);
        // The views that the weights fill, rather than an empty 3D view.
        AnalysisView* shown = qobject_cast<AnalysisView*>(tabs_->currentWidget());
        if (startPageShown() || (shown != weight_norms_ && shown != view("logit_adjustment"))) showView(weight_norms_);
    }
}

void MainWindow::readImportOutput() {
    while (import_ && import_->canReadLine()) {
        const QJsonObject event = QJsonDocument::fromJson(import_->readLine()).object();
        const QString kind = event.value("event").toString();
        if (kind == "progress") {
            const double f = event.value("fraction").toDouble();
            import_progress_->setValue(static_cast<int>(f * 1000));
            const QJsonValue eta = event.value("eta_seconds");
            statusBar()->showMessage(tr("Importing: %1%2")
                                         .arg(event.value("what").toString(),
                                              eta.isDouble() ? tr(", about %1 s left").arg(qRound(eta.toDouble())) : QString()));
        } else if (kind == "snapshot") {
            statusBar()->showMessage(tr("Imported %1 (balanced accuracy %2 on %3)")
                                         .arg(event.value("snapshot").toString())
                                         .arg(event.value("accuracy").toDouble() * 100, 0, 'f', 1)
                                         .arg(event.value("split").toString()));
        } else if (kind == "log") {
            statusBar()->showMessage(event.value("message").toString());
        }
    }
}

void MainWindow::cancelImport() {
    if (!importRunning()) return;
    import_cancelled_ = true;
    statusBar()->showMessage(tr("Stopping the import…"));
    import_->terminate();
}

void MainWindow::finishImport(int exit_code, bool crashed) {
    if (!import_) return;
    readImportOutput();
    const QString err = QString::fromLocal8Bit(import_->readAllStandardError()).trimmed();
    import_progress_->hide();
    import_cancel_->hide();
    const QString out = import_request_.out;
    const bool done = !crashed && exit_code == 0;
    QString message;
    if (done) {
        message = tr("Imported into %1 (%2 s)").arg(out).arg(import_clock_.elapsed() / 1000.0, 0, 'f', 1);
    } else if (import_cancelled_) {
        message = tr("Import cancelled; the checkpoints already evaluated are in %1").arg(out);
        exit_code = 130;
    } else if (exit_code == -2) {
        message = tr("Could not start %1: %2").arg(import_->program(), import_->errorString());
    } else {
        message = crashed ? tr("The import crashed. %1").arg(err.section('\n', -1))
                          : tr("Import failed: %1").arg(err.isEmpty() ? tr("exit code %1").arg(exit_code) : err);
    }
    if (crashed && !import_cancelled_ && exit_code != -2) exit_code = -1;
    statusBar()->showMessage(message, 15000);
    if (done || import_cancelled_) {
        delete preview_item_; // the run file, with its snapshots, stands for the run now
        preview_item_ = nullptr;
        preview_data_.reset();
        if (QFileInfo::exists(out)) {
            if (runs_by_path_.count(out)) refreshRun(out);
            else openFiles({out});
        }
    } else {
        if (preview_item_) preview_item_->setText(0, tr("%1 — import failed").arg(QFileInfo(out).fileName()));
        // The reason in full, without blocking the window (nor a test).
        auto* box = new QMessageBox(QMessageBox::Warning, tr("Import failed"), message, QMessageBox::Ok, this);
        box->setAttribute(Qt::WA_DeleteOnClose);
        box->open();
    }
    import_->deleteLater();
    import_ = nullptr;
    emit importFinished(out, exit_code, message);
}

void MainWindow::closeEvent(QCloseEvent* event) {
    QSettings settings;
    // Presenting: the layout it will give back is the one to keep.
    settings.setValue("window/geometry", presenting_ ? saved_geometry_ : saveGeometry());
    settings.setValue("window/state", presenting_ ? saved_state_ : saveState());
    settings.setValue("window/presentation", presentation_->isChecked());
    session_->save();
    player_->saveSettings();
    training_->saveSettings();
    event->accept();
}

} // namespace ltlab::ui
