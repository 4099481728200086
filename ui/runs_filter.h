#pragma once
// The Runs tree's filter field: shows the snapshots whose name contains the
// typed text (case-insensitive), and keeps a run visible when one of its
// snapshots matches or its file name does (a run whose name matches shows
// all its snapshots). Snapshots that arrive later (a run that trains) follow
// the filter; an empty field shows everything.

#include <QLineEdit>

class QTreeWidget;
class QTreeWidgetItem;

namespace ltlab::ui {

class RunsFilter : public QLineEdit {
    Q_OBJECT
public:
    explicit RunsFilter(QTreeWidget* tree, QWidget* parent = nullptr);
    // Snapshots shown now, over every run (for tests and the tooltip).
    int shownSnapshots() const;

private:
    void applyToAll();
    void applyToRun(QTreeWidgetItem* run);
    void applyToNewRows(QTreeWidgetItem* parent, int first, int last);
    bool matches(const QTreeWidgetItem* item) const;

    QTreeWidget* tree_;
};

} // namespace ltlab::ui
