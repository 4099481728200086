#include "runs_filter.h"

#include <QTreeWidget>

namespace ltlab::ui {

RunsFilter::RunsFilter(QTreeWidget* tree, QWidget* parent) : QLineEdit(parent), tree_(tree) {
    setObjectName("runs_filter");
    setPlaceholderText(tr("Filter snapshots (Ctrl+F)"));
    setClearButtonEnabled(true);
    setToolTip(tr("Shows the snapshots whose name contains this text (e.g. stage2, _la, epoch_01), and the runs "
                  "that have one; a run whose file name matches shows all of its snapshots"));
    connect(this, &QLineEdit::textChanged, this, &RunsFilter::applyToAll);
    connect(tree_->model(), &QAbstractItemModel::rowsInserted, this, [this](const QModelIndex& parent, int first, int last) {
        applyToNewRows(tree_->itemFromIndex(parent), first, last);
    });
}

bool RunsFilter::matches(const QTreeWidgetItem* item) const {
    return text().isEmpty() || item->text(0).contains(text(), Qt::CaseInsensitive);
}

void RunsFilter::applyToRun(QTreeWidgetItem* run) {
    const bool whole_run = matches(run);
    bool any = false;
    for (int i = 0; i < run->childCount(); ++i) {
        const bool shown = whole_run || matches(run->child(i));
        run->child(i)->setHidden(!shown);
        any = any || shown;
    }
    run->setHidden(!whole_run && !any);
}

void RunsFilter::applyToAll() {
    for (int i = 0; i < tree_->topLevelItemCount(); ++i) applyToRun(tree_->topLevelItem(i));
}

// Only the rows that arrived: a run of hundreds of snapshots is read in one at a time.
void RunsFilter::applyToNewRows(QTreeWidgetItem* parent, int first, int last) {
    for (int row = first; row <= last; ++row) {
        if (!parent) {
            if (QTreeWidgetItem* run = tree_->topLevelItem(row)) applyToRun(run);
            continue;
        }
        QTreeWidgetItem* snapshot = parent->child(row);
        if (!snapshot) continue;
        const bool shown = matches(parent) || matches(snapshot);
        snapshot->setHidden(!shown);
        if (shown) parent->setHidden(false);
    }
}

int RunsFilter::shownSnapshots() const {
    int n = 0;
    for (int i = 0; i < tree_->topLevelItemCount(); ++i) {
        const QTreeWidgetItem* run = tree_->topLevelItem(i);
        if (run->isHidden()) continue;
        for (int j = 0; j < run->childCount(); ++j) n += run->child(j)->isHidden() ? 0 : 1;
    }
    return n;
}

} // namespace ltlab::ui
