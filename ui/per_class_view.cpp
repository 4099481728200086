#include "per_class_view.h"

#include <QCheckBox>
#include <QGridLayout>

#include <cmath>

#include <qcustomplot.h>

namespace ltlab::ui {


PerClassView::PerClassView(QWidget* parent) : AnalysisView(parent) {
    accuracy_ = makePlot(this, "Per-class accuracy");
    installHoverValues(accuracy_);
    confusion_ = makePlot(this, "Confusion matrix");
    installHoverValues(confusion_);
    scale_ = new QCPColorScale(confusion_);
    scale_->setLabel(tr("fraction of the true class"));
    scale_->setDataRange(QCPRange(0, 1));
    scale_->setGradient(QCPColorGradient::gpThermal);
    placeColorScale(confusion_, scale_);
    grouped_ = new QCheckBox(tr("Group the confusion matrix by many / medium / few"), this);
    grouped_->setToolTip(tr("Sum the confusion matrix over the shot groups: how often a many-shot class takes a few-shot sample"));
    auto* layout = new QGridLayout(this);
    layout->addWidget(accuracy_, 0, 0);
    layout->addWidget(confusion_, 0, 1);
    layout->addWidget(grouped_, 1, 1);
    layout->setColumnStretch(0, 3);
    layout->setColumnStretch(1, 2);
    connect(grouped_, &QCheckBox::toggled, this, [this] { drawConfusion(); });
}

void PerClassView::showData(const ViewData& data) {
    data_ = data;
    accuracy_->clearPlottables();
    accuracy_->clearItems();
    if (data_.analysis) {
        const auto& pc = data_.analysis->per_class;
        const auto order = classesByCount(pc.train_count);
        QVector<double> keys, values;
        for (std::size_t rank = 0; rank < order.size(); ++rank) {
            const auto c = static_cast<std::size_t>(order[rank]);
            if (!pc.accuracy[c]) continue;
            keys << double(rank);
            values << 100.0 * *pc.accuracy[c];
        }
        // Shot-group bands behind the bars, named above the axis rect, where no bar reaches.
        int label_height = 0;
        for (std::size_t rank = 0; rank < order.size();) {
            const ShotGroup g = pc.group[static_cast<std::size_t>(order[rank])];
            std::size_t end = rank;
            while (end < order.size() && pc.group[static_cast<std::size_t>(order[end])] == g) ++end;
            auto* band = new QCPItemRect(accuracy_);
            band->topLeft->setCoords(double(rank) - 0.5, 200);
            band->bottomRight->setCoords(double(end) - 0.5, -100);
            band->setPen(Qt::NoPen);
            band->setBrush(shotGroupColour(g, 40));
            band->setLayer("background");
            auto* label = new QCPItemText(accuracy_);
            label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
            label->position->setCoords((double(rank) + double(end) - 1) / 2.0, 0); // the top of the axis rect
            label->setPositionAlignment(Qt::AlignBottom | Qt::AlignHCenter);
            label->setClipToAxisRect(false);
            label->setColor(shotGroupColour(g));
            label->setText(shotGroupName(g));
            label_height = QFontMetrics(label->font()).height();
            rank = end;
        }
        QMargins margins = accuracy_->axisRect()->minimumMargins();
        margins.setTop(label_height + 6);
        accuracy_->axisRect()->setMinimumMargins(margins);
        auto* bars = new QCPBars(accuracy_->xAxis, accuracy_->yAxis);
        bars->setName(tr("accuracy (%1 split)").arg(QString::fromStdString(data_.analysis->split)));
        bars->setData(keys, values, true);
        bars->setPen(Qt::NoPen);
        bars->setBrush(QColor(0x44, 0x44, 0x44));
        bars->setWidth(0.8);
        accuracy_->xAxis->setRange(-0.5, double(order.size()) - 0.5);
        setClassTicks(accuracy_->xAxis, order, data_.classes); // names, as the weight-norm view
    }
    drawAdjusted();
    accuracy_->xAxis->setLabel(classAxisTitle());
    accuracy_->yAxis->setLabel(tr("accuracy (%)"));
    setPercentRange(accuracy_->yAxis, 8); // room for the diamonds at 0 and 100 % on a column-wide figure's short axis
    accuracy_->legend->setVisible(true);
    replot(accuracy_);
    drawConfusion();
}

void PerClassView::setLogitAdjustment(int sweep_index, bool multiplicative) {
    la_index_ = sweep_index;
    la_multiplicative_ = multiplicative;
    for (int i = accuracy_->graphCount() - 1; i >= 0; --i)
        if (accuracy_->graph(i)->property("adjusted").toBool()) accuracy_->removeGraph(i);
    drawAdjusted();
    replot(accuracy_);
}

void PerClassView::drawAdjusted() {
    if (!data_.analysis || la_index_ <= 0) return;
    const auto& sweep = la_multiplicative_ ? data_.analysis->la_multiplicative : data_.analysis->la_additive;
    const auto k = static_cast<std::size_t>(la_index_);
    if (k >= sweep.per_class_accuracy.size()) return;
    const auto order = classesByCount(data_.analysis->per_class.train_count);
    QVector<double> keys, values;
    for (std::size_t rank = 0; rank < order.size(); ++rank)
        if (const auto& v = sweep.per_class_accuracy[k][static_cast<std::size_t>(order[rank])]) {
            keys << double(rank);
            values << 100.0 * *v;
        }
    QCPGraph* adjusted = accuracy_->addGraph();
    adjusted->setProperty("adjusted", true);
    adjusted->setName(tr("after %1 logit adjustment, tau = %2")
                          .arg(la_multiplicative_ ? tr("multiplicative") : tr("additive"))
                          .arg(sweep.tau[k], 0, 'f', 1));
    adjusted->setData(keys, values, true);
    adjusted->setLineStyle(QCPGraph::lsNone);
    adjusted->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDiamond, QColor(0xd6, 0x27, 0x28), Qt::white, 8));
}

std::vector<double> PerClassView::adjustedValues() const {
    std::vector<double> values;
    for (int i = 0; i < accuracy_->graphCount(); ++i)
        if (accuracy_->graph(i)->property("adjusted").toBool())
            for (auto it = accuracy_->graph(i)->data()->constBegin(); it != accuracy_->graph(i)->data()->constEnd(); ++it)
                values.push_back(it->value);
    return values;
}

void PerClassView::drawConfusion() {
    confusion_->clearPlottables();
    if (!data_.analysis) return replot(confusion_);
    const auto& pc = data_.analysis->per_class;
    const auto C = static_cast<std::size_t>(data_.analysis->num_classes);
    const bool grouped = grouped_->isChecked();
    const auto order = classesByCount(pc.train_count);
    // Cells: sums of the engine's confusion counts, normalised per true class (group).
    const std::size_t n = grouped ? 3 : C;
    auto cell_of = [&](std::size_t c) { return grouped ? static_cast<std::size_t>(pc.group[c]) : c; };
    std::vector<std::size_t> rank_of(C);
    for (std::size_t r = 0; r < C; ++r) rank_of[static_cast<std::size_t>(order[r])] = r;
    std::vector<double> counts(n * n, 0.0), row_totals(n, 0.0);
    for (std::size_t t = 0; t < C; ++t)
        for (std::size_t p = 0; p < C; ++p) {
            const double v = double(data_.analysis->confusion[t * C + p]);
            const std::size_t i = grouped ? cell_of(t) : rank_of[t], j = grouped ? cell_of(p) : rank_of[p];
            counts[i * n + j] += v;
            row_totals[i] += v;
        }
    auto* map = new QCPColorMap(confusion_->xAxis, confusion_->yAxis);
    map->data()->setSize(static_cast<int>(n), static_cast<int>(n));
    map->data()->setRange(QCPRange(0, double(n) - 1), QCPRange(0, double(n) - 1));
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            map->data()->setCell(static_cast<int>(j), static_cast<int>(i),
                                 row_totals[i] > 0 ? counts[i * n + j] / row_totals[i] : std::nan(""));
    map->setColorScale(scale_);
    map->setInterpolate(false);
    if (grouped) {
        QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
        for (int g = 0; g < 3; ++g) ticker->addTick(g, shotGroupName(static_cast<ShotGroup>(g)));
        confusion_->xAxis->setTicker(ticker);
        confusion_->yAxis->setTicker(ticker);
        confusion_->xAxis->setTickLabelRotation(0);
    } else { // class names, as on the accuracy bars
        setClassTicks(confusion_->xAxis, order, data_.classes, -90); // one name per narrow column
        setClassTicks(confusion_->yAxis, order, data_.classes);
    }
    confusion_->xAxis->setLabel(tr("predicted"));
    confusion_->yAxis->setLabel(tr("true"));
    confusion_->yAxis->setRangeReversed(true);
    confusion_->legend->setVisible(false);
    confusion_->xAxis->setRange(-0.5, double(n) - 0.5); // whole cells at the edges
    confusion_->yAxis->setRange(-0.5, double(n) - 0.5);
    replot(confusion_);
}

QString PerClassView::csv() const {
    QString out = "class,name,train_count,count,accuracy\n";
    if (!data_.analysis) return out;
    const auto& pc = data_.analysis->per_class;
    for (int c : classesByCount(pc.train_count)) {
        const auto k = static_cast<std::size_t>(c);
        out += QString("%1,%2,%3,%4,%5\n")
                   .arg(c)
                   .arg(csvQuoted(data_.classes.names[k]))
                   .arg(pc.train_count[k])
                   .arg(pc.count[k])
                   .arg(pc.accuracy[k] ? QString::number(*pc.accuracy[k], 'g', 17) : QString());
    }
    return out;
}

std::vector<std::pair<QString, QString>> PerClassView::extraCsv() const {
    if (!data_.analysis) return {};
    // The engine's confusion counts: rows true class, columns predicted class.
    const auto C = static_cast<std::size_t>(data_.analysis->num_classes);
    const QString out = classMatrixCsv(data_.classes, "true\\predicted", [&](std::size_t i, std::size_t j) {
        return QString::number(data_.analysis->confusion[i * C + j]);
    });
    return {{"_confusion", out}};
}

bool PerClassView::exportFigure(const QString& path, double dpi) const {
    return exportPlot(accuracy_, path, dpi) && exportPlot(confusion_, siblingPath(path, "_confusion"), dpi, FigureShape::Square);
}

} // namespace ltlab::ui
