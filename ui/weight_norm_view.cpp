#include "weight_norm_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QVBoxLayout>

#include <cmath>

#include <qcustomplot.h>

namespace ltlab::ui {

WeightNormView::WeightNormView(QWidget* parent) : AnalysisView(parent) {
    plot_ = makePlot(this, "Per-class weight norms");
    show_bias_ = new QCheckBox(tr("Show biases instead of norms"), this);
    show_bias_->setToolTip(tr("Plot each class's classifier bias instead of its weight norm"));
    compare_ = new QComboBox(this);
    compare_->addItem(tr("automatic (a wb stage-2 snapshot: the end of stage 1)"));
    compare_->addItem(tr("none"), QStringList{QStringLiteral("none")});
    compare_->setToolTip(tr("A snapshot of any open run to overlay as markers; automatic overlays, on a weight-balancing "
                            "stage-2 snapshot, the end of stage 1 (nothing for other runs)"));
    compare_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    auto* controls = new QHBoxLayout;
    controls->addWidget(show_bias_);
    controls->addSpacing(16);
    controls->addWidget(new QLabel(tr("Overlay:"), this));
    controls->addWidget(compare_);
    controls->addStretch(1);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(plot_, 1);
    layout->addLayout(controls);
    connect(compare_, &QComboBox::currentIndexChanged, this, [this] {
        redraw(); // "none" hides the overlay at once
        emit compareChanged();
    });
    connect(show_bias_, &QCheckBox::toggled, this, [this] { redraw(); });
    // Hover: the class under the cursor (bars, count curve, overlay markers are all by rank).
    installHoverValues(plot_, [this](const QCPAbstractPlottable*, double rank, double, double) {
        const auto r = static_cast<std::size_t>(std::lround(rank));
        return data_.analysis && r < order_.size() ? classSummary(*data_.analysis, data_.classes, order_[r]) : QString();
    });
}

void WeightNormView::setCompareChoices(const QList<QPair<QString, QString>>& choices, const QStringList& labels) {
    const QPair<QString, QString> current = compareChoice();
    const QSignalBlocker block(compare_);
    while (compare_->count() > 2) compare_->removeItem(2); // automatic, none, then the snapshots
    for (int i = 0; i < choices.size(); ++i)
        compare_->addItem(labels.value(i), QStringList{choices[i].first, choices[i].second});
    const int index = compare_->findData(QStringList{current.first, current.second});
    compare_->setCurrentIndex(std::max(index, 0));
    if (index < 0 && !current.first.isEmpty()) emit compareChanged(); // the chosen run was closed
}

bool WeightNormView::overlayHidden() const { return compare_->currentData().toStringList() == QStringList{"none"}; }

QPair<QString, QString> WeightNormView::compareChoice() const {
    const QStringList key = compare_->currentData().toStringList(); // automatic and none: empty
    return key.size() == 2 ? qMakePair(key[0], key[1]) : QPair<QString, QString>();
}

void WeightNormView::setOverlayHidden() { compare_->setCurrentIndex(compare_->findData(QStringList{"none"})); }

void WeightNormView::setCompareChoice(const QString& path, const QString& snapshot) {
    compare_->setCurrentIndex(std::max(0, compare_->findData(QStringList{path, snapshot})));
}

std::vector<double> WeightNormView::overlayValues() const {
    std::vector<double> values;
    for (int i = 0; i < plot_->graphCount(); ++i)
        if (plot_->graph(i)->property("overlay").toBool())
            for (auto it = plot_->graph(i)->data()->constBegin(); it != plot_->graph(i)->data()->constEnd(); ++it)
                values.push_back(it->value);
    return values;
}

void WeightNormView::showData(const ViewData& data) {
    data_ = data;
    redraw();
}

std::vector<double> WeightNormView::barValues() const {
    std::vector<double> values(order_.size(), 0.0);
    for (int i = 0; i < plot_->plottableCount(); ++i)
        if (auto* bars = qobject_cast<QCPBars*>(plot_->plottable(i)))
            for (auto it = bars->data()->constBegin(); it != bars->data()->constEnd(); ++it)
                values[static_cast<std::size_t>(it->key)] = it->value;
    return values;
}

void WeightNormView::redraw() {
    plot_->clearPlottables();
    if (!data_.analysis) {
        replot(plot_);
        return;
    }
    const auto& pc = data_.analysis->per_class;
    const bool bias = show_bias_->isChecked();
    order_ = classesByCount(pc.train_count);
    QVector<double> keys[3], values[3], count_keys, counts;
    for (std::size_t rank = 0; rank < order_.size(); ++rank) {
        const auto c = static_cast<std::size_t>(order_[rank]);
        const int g = static_cast<int>(pc.group[c]);
        keys[g] << double(rank);
        values[g] << (bias ? pc.bias[c] : pc.weight_norm[c]);
        count_keys << double(rank);
        counts << double(std::max<std::int64_t>(pc.train_count[c], 1));
    }
    for (int g = 0; g < 3; ++g) {
        if (keys[g].isEmpty()) continue;
        auto* bars = new QCPBars(plot_->xAxis, plot_->yAxis);
        bars->setName(QString("%1-shot").arg(shotGroupName(static_cast<ShotGroup>(g))));
        bars->setData(keys[g], values[g], true);
        bars->setWidth(0.8);
        bars->setPen(Qt::NoPen);
        bars->setBrush(shotGroupColour(static_cast<ShotGroup>(g)));
    }
    if (data_.compare && !overlayHidden()) { // e.g. weight balancing: stage-1 norms behind the stage-2 bars
        const auto& other = data_.compare->per_class;
        QVector<double> ck, cv;
        for (std::size_t rank = 0; rank < order_.size(); ++rank) {
            ck << double(rank);
            cv << (bias ? other.bias[static_cast<std::size_t>(order_[rank])] : other.weight_norm[static_cast<std::size_t>(order_[rank])]);
        }
        QCPGraph* compare = plot_->addGraph();
        compare->setName(data_.compare_label);
        compare->setProperty("overlay", true);
        compare->setData(ck, cv, true);
        compare->setLineStyle(QCPGraph::lsNone);
        compare->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDiamond, Qt::black, Qt::white, 8));
    }
    QCPGraph* count_graph = plot_->addGraph(plot_->xAxis, plot_->yAxis2);
    count_graph->setName(tr("training count"));
    count_graph->setData(count_keys, counts, true);
    count_graph->setPen(QPen(Qt::black, 1.5));

    plot_->xAxis->setLabel(classAxisTitle());
    plot_->yAxis->setLabel(bias ? tr("bias b_c") : tr("||w_c||"));
    plot_->yAxis2->setVisible(true);
    plot_->yAxis2->setLabel(tr("n_c"));
    plot_->yAxis2->setScaleType(QCPAxis::stLogarithmic);
    plot_->yAxis2->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    setClassTicks(plot_->xAxis, order_, data_.classes);
    plot_->legend->setVisible(true);
    plot_->rescaleAxes();
    plot_->xAxis->setRange(-0.6, double(order_.size()) - 0.4);
    // No marker on the frame, and the count line below the top.
    if (bias)
        addRoom(plot_->yAxis, 0.08, 0.08);
    else
        plot_->yAxis->setRange(0, plot_->yAxis->range().upper * 1.08);
    addRoom(plot_->yAxis2, 0.04, 0.08);
    replot(plot_);
}

QString WeightNormView::csv() const {
    QString out = "rank,class,name,train_count,weight_norm,bias\n";
    if (!data_.analysis) return out;
    const auto& pc = data_.analysis->per_class;
    for (std::size_t rank = 0; rank < order_.size(); ++rank) {
        const auto c = static_cast<std::size_t>(order_[rank]);
        out += QString("%1,%2,%3,%4,%5,%6\n")
                   .arg(rank)
                   .arg(c)
                   .arg(csvQuoted(data_.classes.names[c]))
                   .arg(pc.train_count[c])
                   .arg(pc.weight_norm[c], 0, 'g', 17)
                   .arg(pc.bias[c], 0, 'g', 17);
    }
    return out;
}

bool WeightNormView::exportFigure(const QString& path, double dpi) const { return exportPlot(plot_, path, dpi); }

} // namespace ltlab::ui
