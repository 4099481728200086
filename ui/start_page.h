#pragma once
// The first screen, shown while no run is open: what ltlab shows and why
// (three sentences and a drawn picture), the ways in (open a run, import a
// checkpoint, train a classroom preset, open the demo) and the recent files.
// The page only asks; MainWindow does the work.

#include <QStringList>
#include <QWidget>

class QLabel;
class QListWidget;
class QListWidgetItem;
class QMenu;
class QPushButton;
class QToolButton;

namespace ltlab::ui {

class StartPage : public QWidget {
    Q_OBJECT
public:
    explicit StartPage(QWidget* parent = nullptr);

    // The recent run files, newest first (QSettings "recentFiles").
    void setRecentFiles(const QStringList& paths);
    // The Training dock's classroom presets, as its preset combo lists them
    // (index 0, "Custom settings", is left out of the menu).
    void setPresets(const QStringList& titles);
    // While the demo run is being written: the button waits, the line says so.
    void setDemoBusy(bool busy, const QString& message = QString());

    QPushButton* openButton() const { return open_; }
    QPushButton* importButton() const { return import_; }
    QToolButton* trainButton() const { return train_; }
    QPushButton* demoButton() const { return demo_; }
    QListWidget* recentList() const { return recent_; }

signals:
    void openRequested();
    void importRequested();
    void presetRequested(int index); // the Training dock's preset index (1: the first preset)
    void demoRequested();
    void recentRequested(const QString& path);

private:
    QPushButton *open_, *import_, *demo_;
    QToolButton* train_;
    QMenu* presets_;
    QListWidget* recent_;
    QLabel* recent_title_;
    QLabel* demo_status_;
};

} // namespace ltlab::ui
