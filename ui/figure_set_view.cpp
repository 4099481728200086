#include "figure_set_view.h"

#include <QComboBox>
#include <QDoubleValidator>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QSignalBlocker>
#include <QStackedWidget>
#include <QVBoxLayout>

#include <cmath>

#include <qcustomplot.h>

namespace ltlab::ui {

namespace {

// Okabe & Ito's colour-blind-safe palette.
const QColor kBlue(0x00, 0x72, 0xb2), kOrange(0xe6, 0x9f, 0x00), kVermillion(0xd5, 0x5e, 0x00), kBlack(0, 0, 0);

// viridis (sequential) and RdBu reversed (diverging, white at 0): both read in grey and for colour-blind readers.
QCPColorGradient viridis() {
    QCPColorGradient g;
    g.setColorStops({{0.0, QColor(0x44, 0x01, 0x54)},
                     {0.125, QColor(0x47, 0x2d, 0x7b)},
                     {0.25, QColor(0x3b, 0x52, 0x8b)},
                     {0.375, QColor(0x2c, 0x72, 0x8e)},
                     {0.5, QColor(0x21, 0x91, 0x8c)},
                     {0.625, QColor(0x28, 0xae, 0x80)},
                     {0.75, QColor(0x5e, 0xc9, 0x62)},
                     {0.875, QColor(0xad, 0xdc, 0x30)},
                     {1.0, QColor(0xfd, 0xe7, 0x25)}});
    g.setNanHandling(QCPColorGradient::nhNanColor);
    g.setNanColor(QColor(0xdd, 0xdd, 0xdd));
    return g;
}
QCPColorGradient diverging() {
    QCPColorGradient g;
    g.setColorStops({{0.0, QColor(0x21, 0x66, 0xac)},
                     {0.25, QColor(0x67, 0xa9, 0xcf)},
                     {0.5, QColor(0xf7, 0xf7, 0xf7)},
                     {0.75, QColor(0xef, 0x8a, 0x62)},
                     {1.0, QColor(0xb2, 0x18, 0x2b)}});
    g.setNanHandling(QCPColorGradient::nhNanColor);
    g.setNanColor(QColor(0xdd, 0xdd, 0xdd));
    return g;
}

// Tick labels without the sign: the penalty bars point down from the loss bars.
class AbsoluteTicker : public QCPAxisTicker {
protected:
    QString getTickLabel(double tick, const QLocale& locale, QChar format, int precision) override {
        return QCPAxisTicker::getTickLabel(std::abs(tick), locale, format, precision);
    }
};

QString number(const Nullable& v) { return v ? QString::number(*v, 'g', 17) : QString(); }

double nanOr(const Nullable& v) { return v ? *v : std::nan(""); }

} // namespace

std::vector<FigureSetView::Figure> FigureSetView::allFigures() {
    return {Figure::WeightNormEvolution, Figure::FeatureCosine, Figure::FeatureWeightCosine, Figure::FeatureWeightNorm,
            Figure::WeightCosine,        Figure::FeatureNorms,  Figure::PerClassLoss,        Figure::AccuracyVsBaseline,
            Figure::ConfusionGrouped};
}

QString FigureSetView::stemOf(Figure f) {
    switch (f) {
    case Figure::WeightNormEvolution: return "weight_norm_evolution";
    case Figure::FeatureCosine: return "features_cos_sim";
    case Figure::FeatureWeightCosine: return "features_weights_cos_sim";
    case Figure::FeatureWeightNorm: return "features_weights_norm";
    case Figure::WeightCosine: return "weights_cos_sim";
    case Figure::FeatureNorms: return "features_norms";
    case Figure::PerClassLoss: return "per_class_loss";
    case Figure::AccuracyVsBaseline: return "per_class_vs_baseline";
    case Figure::ConfusionGrouped: return "confusion_grouped";
    }
    return {};
}

QString FigureSetView::nameOf(Figure f) {
    switch (f) {
    case Figure::WeightNormEvolution: return tr("Weight-norm evolution (epochs x classes)");
    case Figure::FeatureCosine: return tr("Feature cosine, class x class");
    case Figure::FeatureWeightCosine: return tr("Feature-weight cosine, class x class");
    case Figure::FeatureWeightNorm: return tr("||h|| ||w||, class x class");
    case Figure::WeightCosine: return tr("Weight cosine, class x class");
    case Figure::FeatureNorms: return tr("Per-class mean feature norm");
    case Figure::PerClassLoss: return tr("Per-class loss and weight decay (composition of losses)");
    case Figure::AccuracyVsBaseline: return tr("Per-class accuracy against a baseline run");
    case Figure::ConfusionGrouped: return tr("Confusion matrix, many / medium / few");
    }
    return {};
}

FigureSetView::FigureSetView(QWidget* parent) : AnalysisView(parent) {
    heat_ = makePlot(this, "Heatmap");
    bars_ = makePlot(this, "Per-class figure");
    scale_ = new QCPColorScale(heat_);
    placeColorScale(heat_, scale_);
    caption_ = new QCPTextElement(bars_, QString(), QFont(bars_->font().family(), int(bars_->font().pointSizeF() * 0.85)));
    installHoverValues(heat_);
    installHoverValues(bars_, [this](const QCPAbstractPlottable* p, double rank, double value, double) {
        const auto r = static_cast<std::size_t>(std::lround(rank));
        if (!data_.analysis || r >= order_.size() || figure_ == Figure::ConfusionGrouped) return QString();
        return QStringLiteral("%1\n%2: %3")
            .arg(classSummary(*data_.analysis, data_.classes, order_[r]), p->name())
            .arg(std::abs(value), 0, 'g', 5);
    });
    stack_ = new QStackedWidget(this);
    stack_->addWidget(heat_);
    stack_->addWidget(bars_);

    chooser_ = new QComboBox(this);
    chooser_->setToolTip(tr("Which of the papers' figures to draw for the selected snapshot"));
    for (Figure f : allFigures()) chooser_->addItem(nameOf(f), static_cast<int>(f));
    baseline_ = new QComboBox(this);
    baseline_->addItem(tr("none"));
    baseline_->setToolTip(tr("The run whose per-class accuracy is drawn beside this one's (same classes)"));
    baseline_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    weight_decay_ = new QLineEdit(this);
    weight_decay_->setPlaceholderText(tr("recorded"));
    weight_decay_->setValidator(new QDoubleValidator(0, 1e9, 12, weight_decay_));
    weight_decay_->setToolTip(tr("lambda of the penalty (lambda/2)(||w_c||^2 + b_c^2); empty: the run's recorded weight decay"));
    weight_decay_->setMaximumWidth(110);
    note_ = new QLabel(this);
    note_->setWordWrap(true);
    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Figure:"), this));
    controls->addWidget(chooser_);
    controls->addSpacing(12);
    controls->addWidget(new QLabel(tr("Baseline:"), this));
    controls->addWidget(baseline_);
    controls->addSpacing(12);
    controls->addWidget(new QLabel(tr("Weight decay:"), this));
    controls->addWidget(weight_decay_);
    controls->addStretch(1);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addWidget(stack_, 1);
    layout->addWidget(note_);
    connect(chooser_, &QComboBox::currentIndexChanged, this, [this] {
        figure_ = static_cast<Figure>(chooser_->currentData().toInt());
        redraw();
    });
    connect(baseline_, &QComboBox::currentIndexChanged, this, [this] { emit baselineChanged(); });
    connect(weight_decay_, &QLineEdit::editingFinished, this, [this] {
        bool ok = false;
        const double v = weight_decay_->text().toDouble(&ok);
        weight_decay_override_ = ok && v >= 0 ? std::optional<double>(v) : std::nullopt;
        redraw();
    });
}

FigureSetView::~FigureSetView() {
    if (!caption_shown_) delete caption_; // not in the plot's layout, so not the plot's to delete
}

void FigureSetView::setFigure(Figure f) {
    chooser_->setCurrentIndex(chooser_->findData(static_cast<int>(f))); // redraws
    figure_ = f;
    redraw();
}

bool FigureSetView::available(Figure f) const {
    if (!data_.analysis) return false;
    if (f == Figure::AccuracyVsBaseline) return data_.baseline != nullptr;
    if (f == Figure::WeightNormEvolution) return data_.evolution && data_.evolution->norms.rows() > 0;
    return true;
}

void FigureSetView::setWeightDecayOverride(std::optional<double> lambda) {
    weight_decay_override_ = lambda;
    const QSignalBlocker block(weight_decay_);
    weight_decay_->setText(lambda ? QString::number(*lambda, 'g', 12) : QString());
    redraw();
}

std::pair<double, QString> FigureSetView::weightDecay() const {
    if (weight_decay_override_) return {*weight_decay_override_, tr("given")};
    if (data_.weight_decay) return {data_.weight_decay->lambda, QString::fromStdString(data_.weight_decay->source)};
    return {0.0, tr("the run records no weight decay; give one")};
}

void FigureSetView::setBaselineChoices(const QList<QPair<QString, QString>>& choices, const QStringList& labels) {
    const QPair<QString, QString> current = baselineChoice();
    const QSignalBlocker block(baseline_);
    while (baseline_->count() > 1) baseline_->removeItem(1);
    for (int i = 0; i < choices.size(); ++i)
        baseline_->addItem(labels.value(i), QStringList{choices[i].first, choices[i].second});
    const int index = baseline_->findData(QStringList{current.first, current.second});
    baseline_->setCurrentIndex(std::max(index, 0));
    if (index < 0 && !current.first.isEmpty()) emit baselineChanged(); // the chosen run was closed
}

QPair<QString, QString> FigureSetView::baselineChoice() const {
    const QStringList key = baseline_->currentData().toStringList();
    return key.size() == 2 ? qMakePair(key[0], key[1]) : QPair<QString, QString>();
}

void FigureSetView::setBaselineChoice(const QString& path, const QString& snapshot) {
    baseline_->setCurrentIndex(std::max(0, baseline_->findData(QStringList{path, snapshot})));
}

QCPColorMap* FigureSetView::colorMap() const {
    for (int i = 0; i < heat_->plottableCount(); ++i)
        if (auto* map = qobject_cast<QCPColorMap*>(heat_->plottable(i))) return map;
    return nullptr;
}

void FigureSetView::showData(const ViewData& data) {
    data_ = data;
    redraw();
}

QCustomPlot* FigureSetView::shownPlot() const {
    switch (figure_) {
    case Figure::FeatureNorms:
    case Figure::PerClassLoss:
    case Figure::AccuracyVsBaseline: return bars_;
    default: return heat_;
    }
}

void FigureSetView::redraw() {
    heat_->clearPlottables();
    heat_->clearItems();
    resetBars();
    stack_->setCurrentWidget(shownPlot());
    shownPlot()->setObjectName(nameOf(figure_)); // the PDF's and SVG's title
    order_ = data_.analysis ? classesByCount(data_.analysis->per_class.train_count) : std::vector<int>{};
    note_->clear();
    if (data_.analysis) {
        switch (figure_) {
        case Figure::WeightNormEvolution: drawEvolution(); break;
        case Figure::FeatureCosine: drawClassHeatmap(ClassHeatmap::FeatureCosine); break;
        case Figure::FeatureWeightCosine: drawClassHeatmap(ClassHeatmap::FeatureWeightCosine); break;
        case Figure::FeatureWeightNorm: drawClassHeatmap(ClassHeatmap::FeatureWeightNorm); break;
        case Figure::WeightCosine: drawClassHeatmap(ClassHeatmap::WeightCosine); break;
        case Figure::FeatureNorms: drawFeatureNorms(); break;
        case Figure::PerClassLoss: drawLoss(); break;
        case Figure::AccuracyVsBaseline: drawBaseline(); break;
        case Figure::ConfusionGrouped: drawGroupedConfusion(); break;
        }
    }
    replot(heat_);
    replot(bars_);
}

QCPColorMap* FigureSetView::newColorMap(int columns, int rows, bool divergent, double low, double high,
                                        const QString& label) {
    auto* map = new QCPColorMap(heat_->xAxis, heat_->yAxis);
    map->data()->setSize(columns, rows);
    map->data()->setRange(QCPRange(0, std::max(columns - 1, 0)), QCPRange(0, std::max(rows - 1, 0)));
    map->setInterpolate(false);
    map->setColorScale(scale_);
    map->setGradient(divergent ? diverging() : viridis());
    scale_->setGradient(divergent ? diverging() : viridis());
    scale_->setDataRange(QCPRange(low, high > low ? high : low + 1));
    scale_->setLabel(label);
    heat_->xAxis->setRange(-0.5, columns - 0.5); // whole cells at the edges
    heat_->yAxis->setRange(-0.5, rows - 0.5);
    heat_->yAxis->setRangeReversed(true);        // the first row on top, as the papers' imshow
    heat_->legend->setVisible(false);
    return map;
}

void FigureSetView::drawClassHeatmap(ClassHeatmap kind) {
    const ClassMatrix m = classHeatmap(*data_.analysis, kind);
    const int C = static_cast<int>(m.rows);
    const bool divergent = kind != ClassHeatmap::FeatureWeightNorm;
    double high = 0;
    for (const Nullable& v : m.values)
        if (v) high = std::max(high, *v);
    const QString label = kind == ClassHeatmap::FeatureWeightNorm ? tr("mean ||h|| ||w||") : tr("cosine");
    QCPColorMap* map = newColorMap(C, C, divergent, divergent ? -1.0 : 0.0, divergent ? 1.0 : high, label);
    map->setName(nameOf(figure_));
    for (int r = 0; r < C; ++r)
        for (int c = 0; c < C; ++c)
            map->data()->setCell(c, r, nanOr(m.at(order_[static_cast<std::size_t>(r)], order_[static_cast<std::size_t>(c)])));
    setClassTicks(heat_->xAxis, order_, data_.classes, -90); // one name per narrow column
    setClassTicks(heat_->yAxis, order_, data_.classes);
    const bool rows_are_features = kind != ClassHeatmap::WeightCosine;
    const bool columns_are_weights = kind != ClassHeatmap::FeatureCosine;
    const QString order = std::size_t(C) > kMaxNamedClasses ? tr(" (rank by training count)") : QString();
    heat_->xAxis->setLabel((columns_are_weights ? tr("weights' class") : tr("features' class")) + order);
    heat_->yAxis->setLabel((rows_are_features ? tr("features' class") : tr("weights' class")) + order);
    note_->setText(tr("%1 split; classes ordered by training count, head first. Uncentred, as in the papers' code "
                      "(docs/analysis.md, Figure set).")
                       .arg(QString::fromStdString(data_.analysis->split)));
}

void FigureSetView::drawEvolution() {
    if (!data_.evolution || data_.evolution->norms.rows() == 0) return;
    const WeightNormEvolution& e = *data_.evolution;
    const int rows = static_cast<int>(e.norms.rows()), C = static_cast<int>(e.norms.cols());
    QCPColorMap* map = newColorMap(C, rows, false, 0.0, e.norms.maxCoeff(), tr("||w_c||"));
    map->setName(nameOf(figure_));
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < C; ++c) map->data()->setCell(c, r, e.norms(r, order_[static_cast<std::size_t>(c)]));
    setClassTicks(heat_->xAxis, order_, data_.classes);
    heat_->xAxis->setLabel(C > 20 ? tr("class (rank by training count)") : tr("class, by training count"));
    // Rows: epochs where known, at most about eight labels.
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    const int step = std::max(1, (rows + 7) / 8);
    bool epochs = true;
    for (const auto& epoch : e.epochs) epochs = epochs && epoch.has_value();
    for (int r = 0; r < rows; r += step)
        ticker->addTick(r, epochs ? QString::number(*e.epochs[static_cast<std::size_t>(r)])
                                  : QString::fromStdString(e.row_labels[static_cast<std::size_t>(r)]));
    heat_->yAxis->setTicker(ticker);
    heat_->yAxis->setTickLabelRotation(0);
    heat_->yAxis->setLabel(epochs ? tr("epoch") : tr("snapshot"));
    note_->setText(e.source == "history" ? tr("From /history (per-epoch weight_norm_<c> series).")
                                         : tr("From the classifier of each of the run's %1 snapshots.").arg(rows));
}

void FigureSetView::drawGroupedConfusion() {
    const GroupedConfusion g = groupedConfusion(*data_.analysis);
    QCPColorMap* map = newColorMap(3, 3, false, 0.0, 1.0, tr("fraction of the true group"));
    map->setName(nameOf(figure_));
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    for (int i = 0; i < 3; ++i) {
        const auto group = static_cast<ShotGroup>(i);
        ticker->addTick(i, QStringLiteral("%1\n(%2)").arg(shotGroupName(group)).arg(g.classes[static_cast<std::size_t>(i)]));
        for (int j = 0; j < 3; ++j) {
            const Nullable& v = g.fraction[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
            map->data()->setCell(j, i, nanOr(v));
            auto* text = new QCPItemText(heat_);
            text->position->setCoords(j, i);
            text->setText(v ? QString::number(*v, 'f', 2) : tr("n/a"));
            text->setColor(v && *v > 0.6 ? kBlack : Qt::white); // dark cells of viridis: white text
            text->setClipToAxisRect(true);
        }
    }
    heat_->xAxis->setTicker(ticker);
    heat_->yAxis->setTicker(ticker);
    heat_->xAxis->setTickLabelRotation(0);
    heat_->yAxis->setTickLabelRotation(0);
    heat_->xAxis->setLabel(tr("predicted group (classes)"));
    heat_->yAxis->setLabel(tr("true group (classes)"));
    note_->setText(tr("%1 split; block sums of the confusion counts, each row divided by its total. Groups by training "
                      "count: many n > %2, few n < %3.")
                       .arg(QString::fromStdString(data_.analysis->split))
                       .arg(data_.analysis->many_threshold)
                       .arg(data_.analysis->few_threshold));
}

void FigureSetView::resetBars() {
    bars_->clearPlottables();
    bars_->clearItems();
    bars_->yAxis2->setVisible(false);
    bars_->yAxis2->setScaleType(QCPAxis::stLinear);
    bars_->yAxis2->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    bars_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    bars_->legend->setVisible(false);
    setCaption(QString());
}

void FigureSetView::setCaption(const QString& text) {
    caption_->setText(text);
    if (!text.isEmpty() && !caption_shown_) {
        bars_->plotLayout()->insertRow(0);
        bars_->plotLayout()->addElement(0, 0, caption_);
        bars_->plotLayout()->setRowStretchFactor(0, 0.001); // its text's height, the axes keep the rest
        caption_shown_ = true;
    } else if (text.isEmpty() && caption_shown_) {
        bars_->plotLayout()->take(caption_);
        bars_->plotLayout()->simplify();
        caption_shown_ = false;
    }
}

namespace {

QCPBars* addBars(QCustomPlot* plot, const QString& name, const QColor& colour, double width) {
    auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
    bars->setName(name);
    bars->setPen(Qt::NoPen);
    bars->setBrush(colour);
    bars->setWidth(width);
    return bars;
}

} // namespace

void FigureSetView::drawFeatureNorms() {
    const auto& pc = data_.analysis->per_class;
    QVector<double> keys, values;
    for (std::size_t rank = 0; rank < order_.size(); ++rank)
        if (const Nullable& v = pc.feature_norm[static_cast<std::size_t>(order_[rank])]) {
            keys << double(rank);
            values << *v;
        }
    addBars(bars_, tr("mean ||h|| (%1 split)").arg(QString::fromStdString(data_.analysis->split)), kBlue, 0.8)
        ->setData(keys, values, true);
    bars_->xAxis->setRange(-0.5, double(order_.size()) - 0.5);
    setClassTicks(bars_->xAxis, order_, data_.classes);
    bars_->xAxis->setLabel(classAxisTitle());
    bars_->yAxis->setLabel(tr("mean ||h||")); // short enough for a column-wide figure's axis
    bars_->yAxis->rescale();
    bars_->yAxis->setRange(0, bars_->yAxis->range().upper * 1.05);
}

void FigureSetView::drawLoss() {
    const auto [lambda, source] = weightDecay();
    const LossComposition lc = lossComposition(*data_.analysis, lambda);
    QVector<double> keys, loss, pkeys, penalty;
    double high = 0, low = 0;
    for (std::size_t rank = 0; rank < order_.size(); ++rank) {
        const auto c = static_cast<std::size_t>(order_[rank]);
        if (lc.loss[c]) {
            keys << double(rank);
            loss << *lc.loss[c];
            high = std::max(high, *lc.loss[c]);
        }
        pkeys << double(rank);
        penalty << -lc.penalty[c];
        low = std::min(low, -lc.penalty[c]);
    }
    addBars(bars_, tr("mean cross-entropy (%1 split)").arg(QString::fromStdString(data_.analysis->split)), kBlue, 0.8)
        ->setData(keys, loss, true);
    addBars(bars_, tr("(\u03bb/2)(||w||\u00b2 + b\u00b2)"), kVermillion, 0.8)->setData(pkeys, penalty, true);
    bars_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new AbsoluteTicker));
    bars_->xAxis->setRange(-0.5, double(order_.size()) - 0.5);
    setClassTicks(bars_->xAxis, order_, data_.classes);
    bars_->xAxis->setLabel(classAxisTitle());
    bars_->yAxis->setLabel(tr("magnitude"));
    const double pad = 0.05 * std::max(high - low, 1e-12);
    bars_->yAxis->setRange(low - pad, high + pad);
    auto* zero = new QCPItemStraightLine(bars_);
    zero->point1->setCoords(0, 0);
    zero->point2->setCoords(1, 0);
    zero->setPen(QPen(QColor(0x55, 0x55, 0x55), 0.8));
    bars_->legend->setVisible(true);
    setCaption(tr("\u03bb = %1 (%2); largest penalty %3").arg(lambda, 0, 'g', 4).arg(source).arg(-low, 0, 'g', 3));
}

void FigureSetView::drawBaseline() {
    if (!data_.baseline) {
        note_->setText(tr("Choose a baseline run above (ltlab figures: --baseline OTHER.h5)."));
        return;
    }
    const auto& pc = data_.analysis->per_class;
    const auto& bc = data_.baseline->per_class;
    QVector<double> keys[2], values[2], count_keys, counts;
    for (std::size_t rank = 0; rank < order_.size(); ++rank) {
        const auto c = static_cast<std::size_t>(order_[rank]);
        if (pc.accuracy[c]) {
            keys[0] << double(rank) - 0.2;
            values[0] << 100 * *pc.accuracy[c];
        }
        if (c < bc.accuracy.size() && bc.accuracy[c]) {
            keys[1] << double(rank) + 0.2;
            values[1] << 100 * *bc.accuracy[c];
        }
        count_keys << double(rank);
        counts << double(std::max<std::int64_t>(pc.train_count[c], 1));
    }
    addBars(bars_, QStringLiteral("%1: %2").arg(data_.run_name, QString::fromStdString(data_.analysis->snapshot)), kBlue, 0.4)
        ->setData(keys[0], values[0], true);
    addBars(bars_, data_.baseline_label, kOrange, 0.4)->setData(keys[1], values[1], true);
    QCPGraph* count = bars_->addGraph(bars_->xAxis, bars_->yAxis2);
    count->setName(tr("training count (right)"));
    count->setData(count_keys, counts, true);
    count->setPen(QPen(kBlack, 1.5));
    bars_->yAxis2->setVisible(true);
    bars_->yAxis2->setScaleType(QCPAxis::stLogarithmic);
    bars_->yAxis2->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog));
    bars_->yAxis2->setLabel(tr("training count"));
    bars_->yAxis2->rescale();
    const QCPRange r = bars_->yAxis2->range();
    bars_->yAxis2->setRange(r.lower / 1.5, r.upper * 1.5);
    bars_->xAxis->setRange(-0.5, double(order_.size()) - 0.5);
    setClassTicks(bars_->xAxis, order_, data_.classes);
    bars_->xAxis->setLabel(classAxisTitle());
    bars_->yAxis->setLabel(tr("accuracy (%)"));
    bars_->yAxis->setRange(0, 100);
    bars_->legend->setVisible(true);
}

QString FigureSetView::csv() const {
    if (!data_.analysis) return {};
    const Analysis& a = *data_.analysis;
    const auto& pc = a.per_class;
    const auto name = [&](int c) { return csvQuoted(data_.classes.names[static_cast<std::size_t>(c)]); };
    QString out;
    auto heatmap = [&](ClassHeatmap kind, const QString& corner) {
        const ClassMatrix m = classHeatmap(a, kind);
        return classMatrixCsv(data_.classes, corner, [&](std::size_t r, std::size_t c) {
            return number(m.at(static_cast<std::int64_t>(r), static_cast<std::int64_t>(c)));
        });
    };
    switch (figure_) {
    case Figure::FeatureCosine: return heatmap(ClassHeatmap::FeatureCosine, "features\\features");
    case Figure::FeatureWeightCosine: return heatmap(ClassHeatmap::FeatureWeightCosine, "features\\weights");
    case Figure::FeatureWeightNorm: return heatmap(ClassHeatmap::FeatureWeightNorm, "features\\weights");
    case Figure::WeightCosine: return heatmap(ClassHeatmap::WeightCosine, "weights\\weights");
    case Figure::WeightNormEvolution: {
        if (!data_.evolution) return {};
        const WeightNormEvolution& e = *data_.evolution;
        out = "row,epoch,stage";
        for (std::size_t c = 0; c < data_.classes.names.size(); ++c) out += "," + name(static_cast<int>(c));
        out += "\n";
        for (Eigen::Index r = 0; r < e.norms.rows(); ++r) {
            const auto k = static_cast<std::size_t>(r);
            out += csvQuoted(e.row_labels[k]) + "," + (e.epochs[k] ? QString::number(*e.epochs[k]) : QString()) + "," +
                   (e.stages[k] ? QString::number(*e.stages[k]) : QString());
            for (Eigen::Index c = 0; c < e.norms.cols(); ++c) out += "," + QString::number(e.norms(r, c), 'g', 17);
            out += "\n";
        }
        return out;
    }
    case Figure::FeatureNorms:
        out = "class,name,train_count,count,feature_norm\n";
        for (int c : order_)
            out += QString("%1,%2,%3,%4,%5\n")
                       .arg(c)
                       .arg(name(c))
                       .arg(pc.train_count[static_cast<std::size_t>(c)])
                       .arg(pc.count[static_cast<std::size_t>(c)])
                       .arg(number(pc.feature_norm[static_cast<std::size_t>(c)]));
        return out;
    case Figure::PerClassLoss: {
        const auto [lambda, source] = weightDecay();
        const LossComposition lc = lossComposition(a, lambda);
        out = "class,name,train_count,count,loss,penalty,weight_decay,weight_decay_source\n";
        for (int c : order_) {
            const auto k = static_cast<std::size_t>(c);
            out += QString("%1,%2,%3,%4,%5,%6,%7,%8\n")
                       .arg(c)
                       .arg(name(c))
                       .arg(pc.train_count[k])
                       .arg(pc.count[k])
                       .arg(number(lc.loss[k]))
                       .arg(QString::number(lc.penalty[k], 'g', 17))
                       .arg(QString::number(lambda, 'g', 17))
                       .arg(csvQuoted(source.toStdString()));
        }
        return out;
    }
    case Figure::AccuracyVsBaseline: {
        out = "class,name,train_count,accuracy,baseline_accuracy\n";
        for (int c : order_) {
            const auto k = static_cast<std::size_t>(c);
            const Nullable base = data_.baseline && k < data_.baseline->per_class.accuracy.size()
                                      ? data_.baseline->per_class.accuracy[k]
                                      : Nullable();
            out += QString("%1,%2,%3,%4,%5\n").arg(c).arg(name(c)).arg(pc.train_count[k]).arg(number(pc.accuracy[k])).arg(number(base));
        }
        return out;
    }
    case Figure::ConfusionGrouped: {
        const GroupedConfusion g = groupedConfusion(a);
        out = "true_group,classes,many,medium,few,many_count,medium_count,few_count\n";
        for (std::size_t i = 0; i < 3; ++i) {
            out += shotGroupName(static_cast<ShotGroup>(i)) + "," + QString::number(g.classes[i]);
            for (std::size_t j = 0; j < 3; ++j) out += "," + number(g.fraction[i][j]);
            for (std::size_t j = 0; j < 3; ++j) out += "," + QString::number(g.count[i][j]);
            out += "\n";
        }
        return out;
    }
    }
    return out;
}

bool FigureSetView::exportFigure(const QString& path, double dpi) const {
    const bool square = shownPlot() == heat_ && figure_ != Figure::WeightNormEvolution;
    return exportPlot(shownPlot(), path, dpi, square ? FigureShape::Square : FigureShape::Wide);
}

} // namespace ltlab::ui
