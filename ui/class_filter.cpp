#include "class_filter.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMenu>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QToolButton>
#include <QWidgetAction>

#include <algorithm>

#include "analysis_view.h"

namespace ltlab::ui {

std::vector<int> ClassFilter::apply(const Analysis& analysis, const std::vector<int>& present) const {
    const auto& pc = analysis.per_class;
    std::set<int> top;
    if (kind == Kind::TopK) { // by training count among the present classes, ties by class id
        std::vector<std::int64_t> counts(pc.train_count.size(), -1);
        for (int c : present) counts[static_cast<std::size_t>(c)] = pc.train_count[static_cast<std::size_t>(c)];
        const auto order = classesByCount(counts);
        top.insert(order.begin(), order.begin() + std::min<std::ptrdiff_t>(std::max(k, 0),
                                                                           static_cast<std::ptrdiff_t>(present.size())));
    }
    std::vector<int> out;
    for (int c : present) {
        const ShotGroup g = pc.group[static_cast<std::size_t>(c)];
        const bool keep = kind == Kind::All || (kind == Kind::Many && g == ShotGroup::Many) ||
                          (kind == Kind::Medium && g == ShotGroup::Medium) || (kind == Kind::Few && g == ShotGroup::Few) ||
                          (kind == Kind::TopK && top.count(c)) || (kind == Kind::Chosen && chosen.count(c));
        if (keep) out.push_back(c);
    }
    return out;
}

QString ClassFilter::describe(const Analysis& a, std::size_t shown, std::size_t total) const {
    const QString many = QString::number(a.many_threshold), few = QString::number(a.few_threshold);
    QString what;
    switch (kind) {
    case Kind::All: return QObject::tr("all %1 classes").arg(total);
    case Kind::Many: what = QObject::tr("many-shot (> %1 training samples)").arg(many); break;
    case Kind::Medium: what = QObject::tr("medium-shot (%1-%2 training samples)").arg(few, many); break;
    case Kind::Few: what = QObject::tr("few-shot (< %1 training samples)").arg(few); break;
    case Kind::TopK: what = QObject::tr("the %1 with the most training samples").arg(k); break;
    case Kind::Chosen: what = QObject::tr("chosen"); break;
    }
    return QObject::tr("%1 of %2 classes: %3").arg(shown).arg(total).arg(what);
}

ClassFilterBar::ClassFilterBar(QWidget* parent) : QWidget(parent) {
    kind_ = new QComboBox(this);
    kind_->addItems({tr("all classes"), tr("many-shot"), tr("medium-shot"), tr("few-shot"),
                     tr("top k by training count"), tr("chosen classes")});
    kind_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    kind_->setMinimumContentsLength(10);
    kind_->setToolTip(tr("Draw only some classes (means, classifier rows, ETF vertices and samples): a shot group "
                         "(the analysis' thresholds), the k classes with the most training samples, or a list"));
    k_ = new QSpinBox(this);
    k_->setRange(1, 100000);
    k_->setValue(filter_.k);
    k_->setPrefix(tr("k = "));
    k_->setToolTip(tr("How many of the classes with the most training samples to draw"));
    list_ = new QListWidget;
    list_->setMinimumSize(220, 300);
    choose_ = new QToolButton(this);
    choose_->setText(tr("Classes…"));
    choose_->setToolTip(tr("Tick the classes to draw (largest training count first)"));
    choose_->setPopupMode(QToolButton::InstantPopup);
    auto* menu = new QMenu(choose_);
    auto* action = new QWidgetAction(menu);
    action->setDefaultWidget(list_);
    menu->addAction(action);
    choose_->setMenu(menu);
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(new QLabel(tr("Show:"), this));
    layout->addWidget(kind_);
    layout->addWidget(k_);
    layout->addWidget(choose_);
    connect(kind_, &QComboBox::currentIndexChanged, this, [this](int index) {
        ClassFilter f = filter_;
        f.kind = static_cast<ClassFilter::Kind>(index);
        if (f.kind == ClassFilter::Kind::Chosen) f.chosen = {shown_.begin(), shown_.end()}; // start from what is drawn
        setFilter(f);
    });
    connect(k_, &QSpinBox::valueChanged, this, [this](int k) {
        ClassFilter f = filter_;
        f.k = k;
        setFilter(f);
    });
    connect(list_, &QListWidget::itemChanged, this, [this] {
        ClassFilter f = filter_;
        f.kind = ClassFilter::Kind::Chosen;
        f.chosen.clear();
        for (int i = 0; i < list_->count(); ++i)
            if (list_->item(i)->checkState() == Qt::Checked) f.chosen.insert(list_->item(i)->data(Qt::UserRole).toInt());
        setFilter(f);
    });
    syncControls();
}

void ClassFilterBar::setFilter(const ClassFilter& filter) {
    if (filter == filter_) return;
    filter_ = filter;
    syncControls();
    emit changed();
}

void ClassFilterBar::setClasses(const ClassInfo& classes) {
    if (static_cast<std::size_t>(list_->count()) == classes.train_counts.size()) return;
    const QSignalBlocker block(list_);
    list_->clear();
    for (int c : classesByCount(classes.train_counts)) {
        auto* item = new QListWidgetItem(QStringLiteral("%1 (%2)").arg(className(classes, c)).arg(classes.train_counts[c]),
                                         list_);
        item->setData(Qt::UserRole, c);
        item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable);
        item->setCheckState(Qt::Checked);
    }
}

void ClassFilterBar::syncControls() {
    const QSignalBlocker b0(kind_), b1(k_);
    kind_->setCurrentIndex(static_cast<int>(filter_.kind));
    k_->setValue(filter_.k);
    k_->setVisible(filter_.kind == ClassFilter::Kind::TopK);
}

void ClassFilterBar::setShown(const std::vector<int>& shown) {
    shown_ = shown;
    syncList();
}

void ClassFilterBar::syncList() {
    const QSignalBlocker block(list_);
    const std::set<int> shown(shown_.begin(), shown_.end());
    for (int i = 0; i < list_->count(); ++i)
        list_->item(i)->setCheckState(shown.count(list_->item(i)->data(Qt::UserRole).toInt()) ? Qt::Checked
                                                                                                : Qt::Unchecked);
}

} // namespace ltlab::ui
