#pragma once
// The workbench window: a Runs dock (files and their snapshots), the views
// of the selected snapshot as tabs, and an epoch timeline over the run's
// snapshots. Files open and analyses run on worker threads; results arrive
// through QFutureWatcher signals and the views only draw them.

#include <QElapsedTimer>
#include <QMainWindow>
#include <QPointer>
#include <QSet>
#include <QStringList>

#include <map>
#include <memory>
#include <optional>
#include <set>

#include "analysis_view.h"
#include "import_dialog.h"
#include "ltlab/run_file.h"

class QAction;
class QDockWidget;
class QLabel;
class QProcess;
class QProgressBar;
class QSlider;
class QStackedWidget;
class QTabWidget;
class QTimer;
class QToolButton;
class QTreeWidget;
class QTreeWidgetItem;

namespace ltlab::ui {

struct AnalysisOutcome;
struct AnalysisProgress;
class EpochPlayer;
class GeometryView;
class RunsFilter;
class Session;
class ReportView;
class StartPage;
class WeightNormView;
class TrainingDock;

// The file an export writes: `path` as typed when it has a suffix ltlab
// writes, else with the chosen filter's extension ("PDF (*.pdf)": ".pdf").
QString exportPathFor(const QString& path, const QString& chosen_filter);

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);

    void openFiles(const QStringList& paths);
    // Number of analyses and file opens still running (for --screenshot and tests).
    int pendingWork() const { return pending_; }
    // Shows every tab once (each view draws its data), ending on the 3D view
    // when a run is open: for --screenshot.
    void showEveryView();
    // Stops the running analysis (the status bar's Cancel button).
    void cancelAnalysis();
    QTreeWidget* runsTree() const { return runs_; }
    // The Runs tree's filter field (Ctrl+F), above the tree.
    RunsFilter* runsFilter() const { return filter_; }
    // The open runs (absolute paths) in the tree's order; the selected run and snapshot.
    QStringList openRuns() const;
    QPair<QString, QString> selectedSnapshot() const;
    // Selects a snapshot of an open run (its last when the name is gone); false if not there.
    bool selectSnapshot(const QString& path, const QString& snapshot);
    // The current tab's file stem ("weight_norms"), and the tab of a stem brought forward.
    QString currentViewStem() const;
    bool showViewNamed(const QString& file_stem);
    // The epoch timeline and its player (speed, loop or stop at the end).
    EpochPlayer* player() const { return player_; }
    // The last session (runs, selection, tab, overlay, tau), saved on quit:
    // reopened by ltlab when no files are given. Returns the runs it opens.
    QStringList restoreSession();
    Session* session() const { return session_; }
    QString reportText() const;
    QSlider* timeline() const { return timeline_; }
    // Every view, each showing the newest analysis.
    const std::vector<AnalysisView*>& views() const;
    GeometryView* geometryView() const;
    WeightNormView* weightNormView() const;
    AnalysisView* view(const QString& file_stem) const;
    TrainingDock* trainingDock() const { return training_; }
    // The first screen, in front of the tabs while no run is open (and again
    // when the last run is closed); opening a run from it goes to the weight
    // norms, the view that tells a long-tailed run's story.
    StartPage* startPage() const { return start_; }
    bool startPageShown() const;
    // The demo runs: demo/*.h5 as tools/run-demo.sh writes them (LTLAB_DEMO_DIR,
    // ./demo, beside the build), else a synthetic run that `ltlab synth` writes
    // once into the application's data folder (in a child process).
    void openDemo();
    // Re-reads a run that grows (training): new snapshots join the tree, and
    // the timeline follows the newest unless the user has moved away from it.
    void refreshRun(const QString& path);
    // Takes a run out of the window (File > Close run, the Runs tree's menu).
    void closeRun(const QString& path);
    // Large fonts everywhere, for a lecture hall.
    void setPresentationMode(bool on);

    // Checkpoints: the import dialog (non-modal; File > Import checkpoint…
    // and dropped files), and the import it starts. The import runs
    // `ltlab import` in a child process; the weight views show the first
    // checkpoint's classifier at once (a "weights" item in the Runs tree),
    // and the run file opens when the evaluation is done.
    ImportDialog* showImportDialog(const QStringList& checkpoints);
    void startImport(const ImportRequest& request);
    void cancelImport();
    bool importRunning() const;
    // Writes a view's figure (pdf, svg, png at `dpi`) or data (csv, json, txt)
    // to `path`; on failure a dialog and the status bar say why.
    bool exportView(AnalysisView* view, const QString& path, int dpi = 300);
    // The ltlab executable that imports and trains (default: this process's own).
    void setExecutable(const QString& path);

signals:
    void workFinished();
    // exit_code 0: done; 130 or -1: cancelled or crashed; else failed (message says why).
    void importFinished(const QString& out_path, int exit_code, const QString& message);
    // A run file given to openFiles could not be read (message: the file, the object, the problem).
    void openFailed(const QString& path, const QString& message);

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;
    void closeEvent(QCloseEvent* event) override;

private:
    struct Run {
        std::shared_ptr<const RunFile> file;
        std::optional<History> history;
        QTreeWidgetItem* item = nullptr;
        std::shared_ptr<const std::vector<LayerRun>> layers; // /layers, read with the file (OpenedRun)
        QString layers_error;
    };
    // Every open run's /layers results, in the Runs tree's order.
    std::vector<ViewData::LayerResults> layerResults() const;
    // The Layers tab follows a run re-read or closed without a new analysis.
    void updateLayerResults();

    void openDialog();
    void importDialog();
    void readImportOutput();
    void finishImport(int exit_code, bool crashed);
    void showPreview(const ImportPreview& preview);
    void exportCurrentView();
    void addRun(const QString& path, Run run);
    void updateRun(const QString& path, Run run);
    void analyzeItem(QTreeWidgetItem* item);
    void syncTimeline(QTreeWidgetItem* item);
    // The Training dock's "open run" (la, resume) follows the selection.
    void showRunInDock(QTreeWidgetItem* item);
    void updateRecentMenu();
    void updateCompareChoices();
    void reanalyzeCurrent();
    void rememberRecent(const QString& path);
    void beginWork(const QString& message);
    void endWork();
    // Brings the tabs in front of the start page, on `view`.
    void showView(QWidget* view);
    void showStartPage();
    // A classroom preset from the start page: the Training dock, raised, with it chosen.
    void choosePreset(int index);

    QTreeWidget* runs_ = nullptr;
    QTabWidget* tabs_ = nullptr;
    QStackedWidget* stack_ = nullptr; // the start page, or the tabs
    StartPage* start_ = nullptr;
    QProcess* demo_ = nullptr;        // `ltlab synth` writing the demo run
    ReportView* report_ = nullptr;
    GeometryView* geometry_ = nullptr;
    WeightNormView* weight_norms_ = nullptr;
    std::vector<AnalysisView*> views_;
    // The newest analysis goes to the visible view at once and to each other
    // view when it is next shown or asked for (view(), views()): redrawing
    // every hidden plot and the 3D scene on each epoch cost the UI thread
    // up to 35 ms (0.2 s with 1000 classes).
    void deliver(AnalysisView* view) const;
    mutable std::shared_ptr<const ViewData> view_data_;
    mutable std::set<AnalysisView*> stale_;
    EpochPlayer* player_ = nullptr;
    QSlider* timeline_ = nullptr;      // the player's
    QLabel* timeline_label_ = nullptr; // the player's
    RunsFilter* filter_ = nullptr;
    Session* session_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QToolButton* cancel_ = nullptr;
    QAction* presentation_ = nullptr;
    QTimer* progress_timer_ = nullptr;
    std::shared_ptr<AnalysisProgress> analysis_progress_; // of the analysis whose result will be shown
    std::shared_ptr<const AnalysisOutcome> shown_;        // what the views show now
    TrainingDock* training_ = nullptr;
    QFont normal_font_;
    QMenu* recent_menu_ = nullptr;
    std::map<QString, Run> runs_by_path_;
    int pending_ = 0;
    // The running import: its process, request, progress, and the Runs item
    // that shows the weights until the run file is there.
    QProcess* import_ = nullptr;
    ImportRequest import_request_;
    QElapsedTimer import_clock_;
    bool import_cancelled_ = false;
    QProgressBar* import_progress_ = nullptr;
    QToolButton* import_cancel_ = nullptr;
    QTreeWidgetItem* preview_item_ = nullptr;
    std::shared_ptr<const ViewData> preview_data_;
    QString executable_;
    std::map<QString, int> open_order_;  // the order files were given in
    int next_order_ = 0;
    QSet<QString> opening_;               // absolute paths being opened
    bool presenting_ = false;
    QByteArray saved_geometry_, saved_state_; // the layout before presentation mode
    QRect saved_rect_;
    QList<QPair<QPointer<QDockWidget>, QSize>> saved_dock_sizes_;
    bool saved_maximized_ = false;
};

} // namespace ltlab::ui
