#pragma once
// The workbench window: a Runs dock (files and their snapshots) and the
// analysis of the selected snapshot. Files open and analyses run on worker
// threads; results arrive through QFutureWatcher signals.

#include <QMainWindow>
#include <QStringList>

#include <map>
#include <memory>

#include "ltlab/run_file.h"

class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QTreeWidget;
class QTreeWidgetItem;

namespace ltlab::ui {

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);

    void openFiles(const QStringList& paths);
    // Number of analyses and file opens still running (for --screenshot and tests).
    int pendingWork() const { return pending_; }
    QTreeWidget* runsTree() const { return runs_; }
    QString reportText() const;

signals:
    void workFinished();

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;
    void closeEvent(QCloseEvent* event) override;

private:
    void openDialog();
    void addRun(const QString& path, std::shared_ptr<const RunFile> file);
    void analyzeItem(QTreeWidgetItem* item);
    void updateRecentMenu();
    void rememberRecent(const QString& path);
    void beginWork(const QString& message);
    void endWork();

    QTreeWidget* runs_ = nullptr;
    QPlainTextEdit* report_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QMenu* recent_menu_ = nullptr;
    std::map<QString, std::shared_ptr<const RunFile>> files_;
    int pending_ = 0;
};

} // namespace ltlab::ui
