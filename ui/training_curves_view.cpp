#include "training_curves_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QSvgGenerator>
#include <QToolTip>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

#include <qcustomplot.h>

namespace ltlab::ui {

namespace {

// One /history series: its key, a panel title short enough for a panel at a
// column's width (with the unit), what it measures (the title's tooltip), and
// whether it is a fraction shown in %.
struct Metric {
    const char* key;
    const char* title;
    const char* what;
    bool percent = false;
};

struct Group {
    const char* title;
    std::vector<Metric> metrics;
};

const std::vector<Group>& groups() {
    static const std::vector<Group> list{
        {"Loss and accuracy",
         {{"train_loss", "train loss", "mean training loss of the epoch's batches (cross-entropy)"},
          {"train_accuracy", "train accuracy (%)", "share of the epoch's training samples classified correctly", true},
          {"test_accuracy", "balanced test accuracy (%)", "mean per-class accuracy on the test split", true},
          {"accuracy_many", "many-shot accuracy (%)", "mean test accuracy of the many-shot classes", true},
          {"accuracy_medium", "medium-shot accuracy (%)", "mean test accuracy of the medium-shot classes", true},
          {"accuracy_few", "few-shot accuracy (%)", "mean test accuracy of the few-shot classes", true}}},
        {"Neural collapse",
         {{"nc1", "NC1: tr(\u03a3_W \u03a3_B\u207a)/C", "within-class variability against between-class (0 at collapse)"},
          {"nc2_equinorm_means", "NC2 equinorm: means", "std/mean of the centred class-mean norms ||\u03bc_c - \u03bc_G||"},
          {"nc2_equinorm_weights", "NC2 equinorm: classifier", "std/mean of the classifier norms ||w_c||"},
          {"nc2_equiangular_means", "NC2 equiangular: means", "std of the cosines between centred class means"},
          {"nc2_equiangular_weights", "NC2 equiangular: classifier", "std of the cosines between classifier rows"},
          {"nc3", "NC3: self-duality", "||W/||W|| - M/||M||||\u00b2 of the classifier against the centred class means"},
          {"nc4", "NC4: NCC mismatch (%)",
           "share of samples whose prediction is not their nearest class mean", true}}},
        {"Fisher's discriminant ratio",
         {{"fdr", "FDR: tr(S_W\u207b\u00b9 S_B)", "Fisher's discriminant ratio of the train features"},
          {"trace_sw", "tr(S_W): within-class", "trace of the within-class scatter"},
          {"trace_sb", "tr(S_B): between-class", "trace of the between-class scatter"}}},
        {"Cone effect",
         {{"cone_mean_cos", "mean cosine, all pairs", "mean cosine over all pairs of train features"},
          {"cone_std_cos", "std of cosine, all pairs", "std of the cosine over all pairs of train features"},
          {"cone_mean_cos_same_class", "mean cosine, same class", "mean cosine over pairs of the same class"},
          {"cone_mean_cos_diff_class", "mean cosine, other classes", "mean cosine over pairs of different classes"},
          {"class_means_mean_cos", "mean cosine of class means", "mean cosine over pairs of class means"}}},
        {"Logit adjustment and learning rate",
         {{"implicit_la_tau", "implicit LA \u03c4",
           "slope of log ||w_c|| against -log \u03c0_c (negative: the head classes are favoured)"},
          {"lr", "learning rate", "the learning rate of the epoch"}}},
    };
    return list;
}

// Okabe & Ito's colour-blind-safe palette (yellow last: faint on white).
const QColor kRunColours[] = {QColor(0x00, 0x72, 0xb2), QColor(0xe6, 0x9f, 0x00), QColor(0x00, 0x9e, 0x73),
                              QColor(0xd5, 0x5e, 0x00), QColor(0xcc, 0x79, 0xa7), QColor(0x56, 0xb4, 0xe9),
                              QColor(0x00, 0x00, 0x00), QColor(0xf0, 0xe4, 0x42)};

QFont sized(QFont font, double points) {
    font.setPointSizeF(points);
    font.setHintingPreference(QFont::PreferNoHinting);
    return font;
}

// `text` in at most two lines of `width`, the rest elided.
QString fitted(const QString& text, const QFont& font, double width) {
    const QFontMetricsF metrics(font);
    if (width <= 0 || metrics.horizontalAdvance(text) <= width) return text;
    const QStringList words = text.split(' ');
    QString first;
    int i = 0;
    for (; i < words.size(); ++i) {
        const QString next = first.isEmpty() ? words[i] : first + ' ' + words[i];
        if (!first.isEmpty() && metrics.horizontalAdvance(next) > width) break;
        first = next;
    }
    const QString rest = words.mid(i).join(' ');
    if (rest.isEmpty()) return metrics.elidedText(first, Qt::ElideRight, width);
    return metrics.elidedText(first, Qt::ElideRight, width) + "\n" + metrics.elidedText(rest, Qt::ElideRight, width);
}

// A legend entry for a run: the icon of one of its graphs (its colour and
// line style), the run's name as text.
class RunLegendItem : public QCPPlottableLegendItem {
public:
    RunLegendItem(QCPLegend* legend, QCPAbstractPlottable* graph, const QString& text)
        : QCPPlottableLegendItem(legend, graph), text_(text) {
        setProperty("run", text);
    }

protected:
    void draw(QCPPainter* painter) override {
        painter->setFont(getFont());
        painter->setPen(QPen(getTextColor()));
        const QSize icon = mParentLegend->iconSize();
        const QRect text = painter->fontMetrics().boundingRect(0, 0, 0, icon.height(), Qt::TextDontClip, text_);
        const QRect icon_rect(mRect.topLeft(), icon);
        painter->drawText(mRect.x() + icon.width() + mParentLegend->iconTextPadding(), mRect.y(), text.width(),
                          std::max(text.height(), icon.height()), Qt::TextDontClip, text_);
        // The graph's line and marker, as QCPGraph draws its own icon.
        if (auto* graph = qobject_cast<QCPGraph*>(mPlottable)) {
            painter->save();
            painter->setClipRect(icon_rect, Qt::IntersectClip);
            painter->setAntialiasing(true);
            painter->setPen(graph->pen());
            painter->setBrush(Qt::NoBrush);
            const double middle = icon_rect.top() + icon_rect.height() / 2.0;
            painter->drawLine(QLineF(icon_rect.left(), middle, icon_rect.right() + 1, middle));
            if (!graph->scatterStyle().isNone()) {
                QCPScatterStyle marker = graph->scatterStyle();
                marker.applyTo(painter, graph->pen());
                marker.drawShape(painter, QRectF(icon_rect).center());
            }
            painter->restore();
        }
    }

public:
    QSize minimumOuterSizeHint() const override {
        const QFontMetrics metrics(getFont());
        const QSize icon = mParentLegend->iconSize();
        const QRect text = metrics.boundingRect(0, 0, 0, icon.height(), Qt::TextDontClip, text_);
        return {icon.width() + mParentLegend->iconTextPadding() + text.width() + mMargins.left() + mMargins.right(),
                std::max(text.height(), icon.height()) + mMargins.top() + mMargins.bottom()};
    }

private:
    QString text_;
};

} // namespace

QColor TrainingCurvesView::runColour(int i) { return kRunColours[static_cast<std::size_t>(std::max(0, i)) % 8]; }

TrainingCurvesView::TrainingCurvesView(QWidget* parent) : AnalysisView(parent) {
    plot_ = makePlot(this, "Training curves");
    plot_->setProperty("own_legend", true); // one legend of runs, fitted to the grid (build)
    plot_->setAutoAddPlottableToLegend(false);
    tick_font_ = plot_->axisRect()->axis(QCPAxis::atLeft)->tickLabelFont();
    label_font_ = plot_->axisRect()->axis(QCPAxis::atBottom)->labelFont();
    legend_font_ = plot_->legend->font();
    installHoverValues(plot_, [](const QCPAbstractPlottable* p, double key, double value, double) {
        return QStringLiteral("%1\n%2 \u00b7 %3\nepoch %4: %5")
            .arg(p->property("metric_title").toString(), p->property("run").toString(), p->property("key").toString())
            .arg(key, 0, 'g', 6)
            .arg(value, 0, 'g', 5);
    });
    // A panel's title names its /history key (after the points' handler, which hides the tip elsewhere).
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* event) {
        if (auto* title = qobject_cast<QCPTextElement*>(plot_->layoutElementAt(event->position())))
            if (title->property("tip").isValid())
                QToolTip::showText(event->globalPosition().toPoint(), title->property("tip").toString(), plot_);
    });
    connect(plot_, &QCustomPlot::beforeReplot, this, [this] { syncFonts(); });
    plot_->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(plot_, &QWidget::customContextMenuRequested, this, [this](const QPoint& pos) { showPanelMenu(pos); });

    group_ = new QComboBox(this);
    for (const auto& g : groups()) group_->addItem(tr(g.title));
    group_->setToolTip(tr("The metrics shown, one panel each"));
    overlay_ = new QCheckBox(tr("Overlay the other open runs"), this);
    overlay_->setChecked(true);
    overlay_->setToolTip(tr("Draw every open run's history in the same panels, one colour per run"));
    log_ = new QCheckBox(tr("Log scale"), this);
    log_->setToolTip(tr("Logarithmic y axes for the panels whose values are all positive (right-click a panel to "
                        "switch it alone)"));
    auto* controls = new QHBoxLayout;
    controls->addWidget(group_);
    controls->addWidget(overlay_);
    controls->addWidget(log_);
    controls->addStretch(1);
    note_ = new QLabel(this);
    note_->setWordWrap(true);
    note_->setVisible(false);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addWidget(note_);
    layout->addWidget(plot_, 1);
    connect(group_, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
    connect(overlay_, &QCheckBox::toggled, this, [this] { redraw(); });
    connect(log_, &QCheckBox::toggled, this, [this] {
        panel_log_.clear(); // the checkbox sets every panel
        redraw();
    });
}

void TrainingCurvesView::showData(const ViewData& data) {
    data_ = data;
    redraw();
}

QCPAxisRect* TrainingCurvesView::panel(int i) const {
    return i >= 0 && i < panelCount() ? panels_[static_cast<std::size_t>(i)].rect : nullptr;
}
QString TrainingCurvesView::panelKey(int i) const {
    return i >= 0 && i < panelCount() ? panels_[static_cast<std::size_t>(i)].key : QString();
}
QString TrainingCurvesView::panelTitle(int i) const {
    return i >= 0 && i < panelCount() ? panels_[static_cast<std::size_t>(i)].title : QString();
}

void TrainingCurvesView::setPanelLogScale(const QString& key, bool on) {
    panel_log_[key] = on;
    redraw();
}

int TrainingCurvesView::screenColumns() const {
    // The column count (at most four) whose panels come nearest 3:2 at their
    // smaller side, so that a narrow window gets two short columns rather
    // than one column of slivers.
    const int n = std::max(1, static_cast<int>(groups()[static_cast<std::size_t>(std::max(0, group_->currentIndex()))].metrics.size()));
    const double width = std::max(1, plot_->width()), height = std::max(1, plot_->height());
    int best = 1;
    double best_score = -1;
    for (int c = 1; c <= std::min(4, n); ++c) {
        const int rows = (n + c - 1) / c;
        const double score = std::min(width / c / 1.5, height / rows);
        if (score > best_score + 1e-9) {
            best = c;
            best_score = score;
        }
    }
    return best;
}

void TrainingCurvesView::resizeEvent(QResizeEvent* event) {
    AnalysisView::resizeEvent(event);
    // Lay the grid out again when its column count or the titles' room changes.
    if (screenColumns() != layout_columns_ || std::abs(plot_->width() - layout_width_) > 40 ||
        std::abs(plot_->height() - layout_height_) > 40)
        redraw();
}

void TrainingCurvesView::redraw() {
    build({screenColumns(), false, plot_->width()});
    replot(plot_);
    // The geometry series are of the train rows each epoch evaluated.
    const QString note = group_->currentIndex() > 0 ? sampleNote() : QString();
    note_->setText(note);
    note_->setVisible(!note.isEmpty());
}

void TrainingCurvesView::build(const Layout& layout) {
    paper_ = layout.paper;
    layout_columns_ = layout.columns;
    layout_width_ = layout.width;
    layout_height_ = plot_->height();
    plot_->clearItems();
    plot_->clearPlottables();
    plot_->legend->clearItems();
    panels_.clear();
    stage_boundary_.reset();
    current_epoch_.reset();
    if (grid_)
        plot_->plotLayout()->remove(grid_); // and its panels
    else if (QCPLayoutElement* first = plot_->plotLayout()->element(0, 0))
        plot_->plotLayout()->remove(first); // makePlot's axis rect
    for (QCPMarginGroup* group : margin_groups_) delete group;
    margin_groups_.clear();
    grid_ = new QCPLayoutGrid;
    plot_->plotLayout()->addElement(0, 0, grid_);
    plot_->plotLayout()->setRowStretchFactor(0, 1);
    grid_->setColumnSpacing(layout.paper ? 6 : 12);
    grid_->setRowSpacing(layout.paper ? 2 : 6);

    const QFont ticks = layout.paper ? sized(tick_font_, 7) : tick_font_;
    const QFont labels = layout.paper ? sized(label_font_, 7.5) : label_font_;
    const QFont titles = layout.paper ? sized(tick_font_, 7.5) : sized(tick_font_, tick_font_.pointSizeF() * 1.1);
    const QFont marks = sized(ticks, ticks.pointSizeF() * 0.9);
    const QFont legend = layout.paper ? sized(legend_font_, 7) : legend_font_;

    // The runs: the selected one (graphs named by the key), then the others ("RUN: key").
    struct Run {
        QString name;
        const History* history;
    };
    std::vector<Run> runs;
    const bool selected = data_.history.has_value();
    if (selected) runs.push_back({data_.run_name.isEmpty() ? tr("this run") : data_.run_name, &*data_.history});
    if (overlay_->isChecked())
        for (const auto& [name, history] : data_.other_histories) runs.push_back({name, &history});
    auto finiteValues = [](const History& history, const char* key) {
        const auto it = history.series.find(key);
        return history.series.count("epoch") && it != history.series.end() &&
               std::any_of(it->second.begin(), it->second.end(), [](double v) { return std::isfinite(v); });
    };
    const Group& group = groups()[static_cast<std::size_t>(std::max(0, group_->currentIndex()))];
    std::vector<const Metric*> metrics;
    for (const Metric& m : group.metrics)
        if (std::any_of(runs.begin(), runs.end(), [&](const Run& r) { return finiteValues(*r.history, m.key); }))
            metrics.push_back(&m);

    const int n = static_cast<int>(metrics.size());
    const int columns = std::clamp(layout.columns, 1, std::max(1, n));
    columns_ = columns;
    const int rows = (std::max(n, 1) + columns - 1) / columns;
    std::vector<QCPMarginGroup*> column_groups, row_groups;
    for (int c = 0; c < columns; ++c) column_groups.push_back(new QCPMarginGroup(plot_));
    for (int r = 0; r < rows; ++r) row_groups.push_back(new QCPMarginGroup(plot_));
    margin_groups_.insert(margin_groups_.end(), column_groups.begin(), column_groups.end());
    margin_groups_.insert(margin_groups_.end(), row_groups.begin(), row_groups.end());
    const double title_width = double(layout.width) / columns - (layout.paper ? 8 : 16);
    // Fewer value ticks in short panels (about one per 55 px on screen).
    const int value_ticks = layout.paper ? 3 : std::clamp(plot_->height() / rows / 55, 2, 5);

    // The epochs every shown run spans (one x range for all panels).
    double first_epoch = INFINITY, last_epoch = -INFINITY;
    for (const Run& run : runs)
        if (const auto it = run.history->series.find("epoch"); it != run.history->series.end())
            for (double e : it->second)
                if (std::isfinite(e)) {
                    first_epoch = std::min(first_epoch, e);
                    last_epoch = std::max(last_epoch, e);
                }
    if (std::isfinite(first_epoch)) {
        // Where stage goes from 1 to 2 in the selected run, and the snapshot shown.
        if (selected && data_.history->series.count("stage")) {
            const auto& stage = data_.history->series.at("stage");
            const auto& epochs = data_.history->series.at("epoch");
            bool before = false;
            for (std::size_t e = 0; e < stage.size() && e < epochs.size(); ++e) {
                if (stage[e] == 2 && before) {
                    stage_boundary_ = epochs[e];
                    break;
                }
                before = before || stage[e] == 1;
            }
        }
        if (data_.analysis && data_.analysis->epoch) current_epoch_ = double(*data_.analysis->epoch);
    }

    static const Qt::PenStyle dashes[] = {Qt::DashLine, Qt::DotLine, Qt::DashDotLine, Qt::DashDotDotLine};
    std::vector<QCPGraph*> legend_graph(runs.size(), nullptr);
    for (int i = 0; i < std::max(n, 1); ++i) {
        const int row = i / columns, column = i % columns;
        auto* rect = new QCPAxisRect(plot_);
        QCPAxis* x = rect->axis(QCPAxis::atBottom);
        QCPAxis* y = rect->axis(QCPAxis::atLeft);
        auto* title = new QCPTextElement(plot_, QString(), titles);
        title->setMinimumSize(1, 0); // the title wraps into its cell instead of widening it
        title->setMargins(QMargins(2, layout.paper ? 1 : 3, 2, 0));
        grid_->addElement(2 * row, column, title);
        grid_->addElement(2 * row + 1, column, rect);
        grid_->setRowStretchFactor(2 * row, 0.001);
        grid_->setRowStretchFactor(2 * row + 1, 1);
        rect->setMarginGroup(QCP::msLeft | QCP::msRight, column_groups[static_cast<std::size_t>(column)]);
        rect->setMarginGroup(QCP::msTop | QCP::msBottom, row_groups[static_cast<std::size_t>(row)]);
        rect->setMinimumMargins(QMargins(0, layout.paper ? 2 : 4, layout.paper ? 5 : 8, 0)); // the last marker off the edge
        for (QCPAxis* axis : rect->axes()) {
            axis->setTickLabelFont(ticks);
            axis->setLabelFont(labels);
        }
        // The epoch axis: whole epochs; numbered and labelled below a column's last panel.
        QSharedPointer<QCPAxisTickerFixed> epoch_ticks(new QCPAxisTickerFixed);
        epoch_ticks->setTickStep(1);
        epoch_ticks->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
        epoch_ticks->setTickCount(layout.paper ? 4 : 6);
        x->setTicker(epoch_ticks);
        const bool bottom = i + columns >= std::max(n, 1);
        x->setTickLabels(bottom);
        x->setLabel(bottom ? tr("epoch") : QString());
        x->setPadding(layout.paper ? 1 : 3);
        y->setPadding(layout.paper ? 2 : 5);
        x->setTickLengthIn(layout.paper ? 3 : 5);
        y->setTickLengthIn(layout.paper ? 3 : 5);
        x->setSubTickLengthIn(layout.paper ? 1 : 2);
        y->setSubTickLengthIn(layout.paper ? 1 : 2);
        if (i == 0) { // plot()->xAxis and yAxis stay usable
            plot_->xAxis = x;
            plot_->yAxis = y;
            plot_->xAxis2 = rect->axis(QCPAxis::atTop);
            plot_->yAxis2 = rect->axis(QCPAxis::atRight);
        }
        if (n == 0) {
            auto* text = new QCPItemText(plot_);
            text->setClipAxisRect(rect);
            text->position->setType(QCPItemPosition::ptAxisRectRatio);
            text->position->setAxisRect(rect);
            text->position->setCoords(0.5, 0.5);
            text->setFont(labels);
            text->setColor(Qt::darkGray);
            text->setText(runs.empty() ? tr("This run has no training history (/history).")
                                       : tr("The history has none of these metrics."));
            x->setRange(0, 1);
            y->setRange(0, 1);
            x->setTickLabels(false);
            y->setTickLabels(false);
            break;
        }

        const Metric& metric = *metrics[static_cast<std::size_t>(i)];
        Panel panel{metric.key, tr(metric.title), rect, true};
        title->setText(fitted(panel.title, titles, title_width));
        title->setProperty("key", panel.key);
        title->setProperty("tip", QStringLiteral("%1\n%2\n/history key: %3").arg(panel.title, tr(metric.what), panel.key));
        double lo = INFINITY, hi = -INFINITY;
        for (std::size_t r = 0; r < runs.size(); ++r) {
            const History& history = *runs[r].history;
            const auto it = history.series.find(metric.key);
            if (!history.series.count("epoch") || it == history.series.end()) continue;
            const auto& epochs = history.series.at("epoch");
            // A fraction in %; a series that is in % already (an import) as it is.
            double largest = 0;
            for (double v : it->second)
                if (std::isfinite(v)) largest = std::max(largest, std::abs(v));
            const double scale = metric.percent && largest <= 1 ? 100 : 1;
            QVector<double> keys, values;
            for (std::size_t e = 0; e < it->second.size() && e < epochs.size(); ++e)
                if (std::isfinite(it->second[e]) && std::isfinite(epochs[e])) {
                    keys << epochs[e];
                    values << scale * it->second[e];
                    lo = std::min(lo, values.back());
                    hi = std::max(hi, values.back());
                    panel.positive = panel.positive && values.back() > 0;
                }
            if (keys.isEmpty()) continue;
            QCPGraph* g = plot_->addGraph(x, y);
            const bool mine = r == 0 && selected;
            g->setName(mine ? panel.key : runs[r].name + ": " + panel.key);
            g->setProperty("metric_title", panel.title);
            g->setProperty("run", runs[r].name);
            g->setProperty("key", panel.key);
            g->setData(keys, values, true);
            const QColor colour = runColour(static_cast<int>(r));
            if (mine) {
                g->setPen(QPen(colour, layout.paper ? 1.2 : 2));
                if (keys.size() <= 60)
                    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, layout.paper ? 2.5 : 4));
            } else {
                g->setPen(QPen(colour, layout.paper ? 1 : 1.5, dashes[(r - (selected ? 1 : 0)) % 4]));
            }
            if (!legend_graph[r]) legend_graph[r] = g;
            // The value at the snapshot shown, on the selected run.
            if (mine && current_epoch_ && std::find(keys.begin(), keys.end(), *current_epoch_) != keys.end()) {
                auto* tracer = new QCPItemTracer(plot_);
                tracer->setClipAxisRect(rect);
                tracer->setGraph(g);
                tracer->setGraphKey(*current_epoch_);
                tracer->setStyle(QCPItemTracer::tsCircle);
                tracer->setSize(layout.paper ? 5 : 8);
                tracer->setPen(QPen(colour, layout.paper ? 1 : 1.5));
                tracer->setBrush(Qt::white);
                tracer->setObjectName("current value");
            }
        }

        // The y axis: its own range, logarithmic where asked and possible.
        const auto choice = panel_log_.find(panel.key);
        const bool log_scale = panel.positive && (choice != panel_log_.end() ? choice->second : log_->isChecked());
        y->setScaleType(log_scale ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
        if (log_scale) {
            QSharedPointer<QCPAxisTickerLog> log_ticks(new QCPAxisTickerLog);
            log_ticks->setTickCount(std::min(value_ticks, 4));
            y->setTicker(log_ticks);
            y->setNumberFormat("gb");
            const double f = hi > lo ? std::pow(hi / lo, 0.08) : 1.5;
            y->setRange(lo / f, hi * f);
        } else {
            QSharedPointer<QCPAxisTicker> linear(new QCPAxisTicker);
            linear->setTickCount(value_ticks);
            y->setTicker(linear);
            y->setNumberFormat("gb");
            if (hi > lo) {
                const double pad = 0.08 * (hi - lo);
                y->setRange(lo - pad, hi + pad);
            } else if (hi != 0) { // a constant
                y->setRange(hi - 0.1 * std::abs(hi), hi + 0.1 * std::abs(hi));
            } else { // zero throughout (a few-shot accuracy): 0 at the bottom, no negative ticks
                const double top = metric.percent ? 10 : 1;
                y->setRange(-0.06 * top, top);
            }
        }
        const double margin = std::max(0.5, 0.05 * (last_epoch - first_epoch)); // no marker on the frame
        x->setRange(first_epoch - margin, last_epoch + margin);

        // The stage boundary (dashed, labelled) and the snapshot shown (solid), behind the curves.
        auto vertical = [&](double at, const QPen& pen, const QString& name) {
            auto* line = new QCPItemStraightLine(plot_);
            line->setLayer("grid");
            line->setClipAxisRect(rect);
            for (QCPItemPosition* p : {line->point1, line->point2}) {
                p->setAxes(x, y);
                p->setAxisRect(rect);
                p->setTypeX(QCPItemPosition::ptPlotCoords);
                p->setTypeY(QCPItemPosition::ptAxisRectRatio);
            }
            line->point1->setCoords(at, 0);
            line->point2->setCoords(at, 1);
            line->setPen(pen);
            line->setObjectName(name);
        };
        if (stage_boundary_) {
            vertical(*stage_boundary_, QPen(QColor(90, 90, 90), layout.paper ? 0.8 : 1.2, Qt::DashLine), "stage boundary");
            auto* label = new QCPItemText(plot_);
            label->setClipAxisRect(rect);
            label->position->setAxes(x, y);
            label->position->setAxisRect(rect);
            label->position->setTypeX(QCPItemPosition::ptPlotCoords);
            label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
            // Along the line, on its stage-2 side, at the top or the bottom,
            // whichever the curves leave free there (else on a light ground).
            bool top_free = true, bottom_free = true;
            for (QCPGraph* g : rect->graphs())
                for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it)
                    if (it->key >= *stage_boundary_ - 0.01 && it->key <= *stage_boundary_ + 1.01) {
                        const QCPRange range = y->range();
                        const double fraction = log_scale ? std::log(it->value / range.lower) / std::log(range.upper / range.lower)
                                                          : (it->value - range.lower) / range.size();
                        // The label covers about half a small exported panel's height, a quarter on screen.
                        top_free = top_free && fraction < (layout.paper ? 0.4 : 0.62);
                        bottom_free = bottom_free && fraction > (layout.paper ? 0.6 : 0.38);
                    }
            const bool at_top = top_free || !bottom_free;
            label->position->setCoords(*stage_boundary_, at_top ? 0.02 : 0.98);
            label->setRotation(-90);
            label->setPositionAlignment(at_top ? Qt::AlignRight | Qt::AlignTop : Qt::AlignLeft | Qt::AlignTop);
            label->setBrush(QColor(255, 255, 255, top_free || bottom_free ? 150 : 210)); // legible over a grid line or a curve
            label->setPadding(QMargins(2, 1, 2, 1));
            label->setFont(marks);
            label->setColor(QColor(70, 70, 70));
            label->setText(tr("stage 2"));
            label->setObjectName("stage label");
        }
        if (current_epoch_)
            vertical(*current_epoch_, QPen(QColor(0, 0, 0, 70), layout.paper ? 2 : 3), "current epoch"); // wide and light
        panels_.push_back(panel);
    }

    // One legend for the figure, below the grid: a row of runs, wrapped to the width.
    plot_->legend->setFont(legend);
    plot_->legend->setIconSize(layout.paper ? QSize(16, 9) : QSize(28, 12));
    plot_->legend->setColumnSpacing(layout.paper ? 8 : 16);
    std::vector<int> widths;
    for (std::size_t r = 0; r < runs.size(); ++r)
        if (legend_graph[r]) {
            auto* item = new RunLegendItem(plot_->legend, legend_graph[r], runs[r].name);
            item->setFont(legend);
            plot_->legend->addItem(item);
            widths.push_back(item->minimumOuterSizeHint().width());
        }
    // As many entries a row as fit the width, each column as wide as its widest entry.
    int per_row = 1;
    for (int k = static_cast<int>(widths.size()); k > 1 && per_row == 1; --k) {
        int total = (k - 1) * plot_->legend->columnSpacing() + plot_->legend->margins().left() + plot_->legend->margins().right();
        for (int c = 0; c < k; ++c) {
            int column = 0;
            for (std::size_t i = static_cast<std::size_t>(c); i < widths.size(); i += static_cast<std::size_t>(k))
                column = std::max(column, widths[i]);
            total += column;
        }
        if (total <= layout.width) per_row = k;
    }
    plot_->legend->setWrap(per_row);
    plot_->legend->setFillOrder(QCPLegend::foColumnsFirst, true);
    plot_->legend->setVisible(plot_->legend->itemCount() > 1);
}

void TrainingCurvesView::syncFonts() {
    // Presentation mode scales the first panel's fonts (setPlotFontScale): every panel follows.
    if (paper_ || !plot_->axisRect()) return;
    const QFont tick = plot_->axisRect()->axis(QCPAxis::atLeft)->tickLabelFont();
    const QFont label = plot_->axisRect()->axis(QCPAxis::atBottom)->labelFont();
    const QFont legend = plot_->legend->font();
    if (tick == tick_font_ && label == label_font_ && legend == legend_font_) return;
    tick_font_ = tick;
    label_font_ = label;
    legend_font_ = legend;
    const QFont title = sized(tick, tick.pointSizeF() * 1.1);
    for (QCPAxisRect* rect : plot_->axisRects())
        for (QCPAxis* axis : rect->axes()) {
            axis->setTickLabelFont(tick);
            axis->setLabelFont(label);
        }
    for (QCPLayoutElement* element : grid_ ? grid_->elements(false) : QList<QCPLayoutElement*>{})
        if (auto* text = qobject_cast<QCPTextElement*>(element)) text->setFont(title);
    for (int i = 0; i < plot_->itemCount(); ++i)
        if (auto* text = qobject_cast<QCPItemText*>(plot_->item(i))) text->setFont(sized(tick, tick.pointSizeF() * 0.9));
    for (int i = 0; i < plot_->legend->itemCount(); ++i) plot_->legend->item(i)->setFont(legend);
}

void TrainingCurvesView::showPanelMenu(const QPoint& pos) {
    QCPAxisRect* rect = plot_->axisRectAt(pos);
    const auto it = std::find_if(panels_.begin(), panels_.end(), [&](const Panel& p) { return p.rect == rect; });
    if (it == panels_.end()) return;
    const QString key = it->key;
    QMenu menu(this);
    QAction* log = menu.addAction(tr("Log scale for \"%1\"").arg(it->title));
    log->setCheckable(true);
    log->setChecked(rect->axis(QCPAxis::atLeft)->scaleType() == QCPAxis::stLogarithmic);
    log->setEnabled(it->positive);
    if (!it->positive) log->setToolTip(tr("A value is zero or negative"));
    if (menu.exec(plot_->mapToGlobal(pos)) == log) setPanelLogScale(key, log->isChecked());
}

QString TrainingCurvesView::sampleNote() const {
    if (!data_.history) return {};
    const auto it = data_.history->series.find("train_rows");
    if (it == data_.history->series.end() || it->second.empty()) return {};
    double training_set = 0, fewest = INFINITY;
    for (auto n : data_.classes.train_counts) training_set += double(n);
    for (double rows : it->second)
        if (std::isfinite(rows)) fewest = std::min(fewest, rows);
    if (!(fewest < training_set)) return {};
    return tr("Train metrics are of the train rows each epoch evaluated: a seeded sample of %1 of the %2 training "
              "images (ltlab train's train_feature_cap), and every image in the last epoch of each stage.")
        .arg(fewest, 0, 'f', 0)
        .arg(training_set, 0, 'f', 0);
}

QString TrainingCurvesView::csv() const {
    if (!data_.history) return "epoch\n";
    QStringList names;
    for (const auto& [name, values] : data_.history->series) names << QString::fromStdString(name);
    QString out = names.join(',') + "\n";
    for (std::int64_t e = 0; e < data_.history->numEpochs(); ++e) {
        QStringList row;
        for (const auto& [name, values] : data_.history->series)
            row << (std::isfinite(values[static_cast<std::size_t>(e)]) ? QString::number(values[static_cast<std::size_t>(e)], 'g', 17)
                                                                       : QString());
        out += row.join(',') + "\n";
    }
    return out;
}

bool TrainingCurvesView::exportFigure(const QString& path, double dpi) const {
    // The grid at the figure's width (figureSize): two panels a row at a
    // column's width, three or four at the page's, each row a fixed height.
    auto* self = const_cast<TrainingCurvesView*>(this);
    const bool page = figureSize() == FigureSize::Page;
    const int width = figureSizePoints(FigureShape::Wide).width();
    const int n = std::max(1, panelCount());
    const int columns = page ? (n <= 3 ? n : n == 4 ? 2 : n <= 6 ? 3 : 4) : std::min(n, 2);
    self->build({columns, true, width});
    const int rows = (n + columns - 1) / columns;
    int height = rows * (page ? 125 : 100) + 6;
    if (plot_->legend->visible()) height += plot_->legend->minimumOuterSizeHint().height();
    height = std::max(height, page ? 190 : 170);
    const QString suffix = QFileInfo(path).suffix().toLower();
    bool ok = false;
    if (suffix == "pdf") {
        ok = plot_->savePdf(path, width, height, QCP::epNoCosmetic, "ltlab", plot_->objectName());
    } else if (suffix == "png") {
        ok = plot_->savePng(path, width, height, dpi / 72.0, -1, static_cast<int>(dpi));
    } else if (suffix == "svg") {
        QSvgGenerator generator;
        generator.setFileName(path);
        generator.setSize(QSize(width, height));
        generator.setViewBox(QRect(0, 0, width, height));
        generator.setTitle(plot_->objectName());
        QCPPainter painter;
        if (painter.begin(&generator)) {
            plot_->toPainter(&painter, width, height);
            painter.end();
            ok = QFileInfo(path).size() > 0;
        }
    }
    self->redraw(); // the screen's grid again
    return ok;
}

} // namespace ltlab::ui
