#include "analysis_view.h"

#include <QFile>
#include <QFileInfo>
#include <QSvgGenerator>
#include <QToolTip>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>
#include <numeric>

#include <qcustomplot.h>

namespace ltlab::ui {

namespace {
void fitLegendColumns(QCustomPlot* plot, int width);
void fitTickCounts(QCustomPlot* plot);
}

QCustomPlot* makePlot(QWidget* parent, const QString& title) {
    auto* plot = new QCustomPlot(parent);
    plot->setObjectName(title);
    // An explicit minimum, so that a plot's layout (its legend, its labels
    // at presentation size) never forces the window past a small screen.
    plot->setMinimumSize(160, 120);
    // Tick labels are measured afresh for every size (exports lay out again at 5 x 3.2 in).
    plot->setPlottingHint(QCP::phCacheLabels, false);
    plot->axisRect()->insetLayout()->take(plot->legend);
    plot->plotLayout()->addElement(1, 0, plot->legend);
    plot->plotLayout()->setRowStretchFactor(1, 0.001);
    plot->plotLayout()->setRowSpacing(0);
    plot->legend->setFillOrder(QCPLegend::foColumnsFirst);
    plot->legend->setWrap(3);
    plot->legend->setBorderPen(Qt::NoPen);
    plot->legend->setMargins(QMargins(4, 0, 4, 2));
    QFont font = plot->font();
    font.setPointSizeF(font.pointSizeF() * 0.85);
    // Unhinted outlines scale linearly, so the legend laid out on screen still
    // fits its text in a 300 dpi PNG or a PDF.
    font.setHintingPreference(QFont::PreferNoHinting);
    font.setStyleStrategy(QFont::ForceOutline);
    plot->legend->setFont(font);
    // As many legend columns as the plot's width holds, at every size (a view
    // that lays its legend out itself sets the property "own_legend").
    QObject::connect(plot, &QCustomPlot::beforeReplot, plot, [plot] {
        if (!plot->property("own_legend").toBool()) fitLegendColumns(plot, plot->viewport().width());
        fitTickCounts(plot);
    });
    return plot;
}

namespace {

FigureSize g_figure_size = FigureSize::Column;

// As many legend columns (up to 4) as the figure's width holds: entries fill
// rows, and each column is as wide as its widest entry.
void fitLegendColumns(QCustomPlot* plot, int width) {
    QCPLegend* legend = plot->legend;
    std::vector<int> entries;
    for (int i = 0; i < legend->itemCount(); ++i)
        if (QCPAbstractLegendItem* item = legend->item(i)) entries.push_back(item->minimumOuterSizeHint().width());
    const int available = width - legend->margins().left() - legend->margins().right();
    int columns = std::clamp(static_cast<int>(entries.size()), 1, 4);
    for (; columns > 1; --columns) {
        std::vector<int> widths(static_cast<std::size_t>(columns), 0);
        for (std::size_t i = 0; i < entries.size(); ++i) widths[i % widths.size()] = std::max(widths[i % widths.size()], entries[i]);
        if (std::accumulate(widths.begin(), widths.end(), (columns - 1) * legend->columnSpacing()) <= available) break;
    }
    legend->setWrap(columns);
    legend->setFillOrder(QCPLegend::foColumnsFirst, true); // re-flow the existing entries
}

// As many ticks as an axis' length holds with room between their labels (the
// ticker's default of 5 overlaps on a column-wide figure's short axes).
void fitTickCounts(QCustomPlot* plot) {
    for (QCPAxisRect* rect : plot->axisRects())
        for (QCPAxis* axis : rect->axes()) {
            const QFontMetrics metrics(axis->tickLabelFont());
            const bool vertical = axis->orientation() == Qt::Vertical;
            const int length = vertical ? rect->height() : rect->width();
            const int label = vertical ? 2 * metrics.height() : metrics.horizontalAdvance(QStringLiteral("0.000")) + metrics.height();
            if (length > 0) axis->ticker()->setTickCount(std::clamp(length / std::max(label, 1), 2, 5));
        }
}

} // namespace

void setFigureSize(FigureSize size) { g_figure_size = size; }
FigureSize figureSize() { return g_figure_size; }

QSize figureSizePoints(FigureShape shape) {
    const bool page = g_figure_size == FigureSize::Page;
    if (shape == FigureShape::Square) return page ? QSize(504, 432) : QSize(252, 230);
    return page ? QSize(504, 259) : QSize(252, 187);
}

void setPlotFontScale(QCustomPlot* plot, double scale) {
    // The base sizes are kept on the plot, so scaling twice never compounds.
    if (!plot->property("base_point_size").isValid()) plot->setProperty("base_point_size", plot->font().pointSizeF());
    const double base = plot->property("base_point_size").toDouble();
    auto scaled = [&](QFont font, double factor) {
        font.setPointSizeF(base * factor * scale);
        return font;
    };
    for (QCPAxis* axis : plot->axisRect()->axes()) {
        axis->setLabelFont(scaled(axis->labelFont(), 1.0));
        axis->setTickLabelFont(scaled(axis->tickLabelFont(), 1.0));
    }
    plot->legend->setFont(scaled(plot->legend->font(), 0.85));
    for (int i = 0; i < plot->legend->itemCount(); ++i)
        if (QCPAbstractLegendItem* item = plot->legend->item(i)) item->setFont(scaled(item->font(), 0.85));
    replot(plot);
}

void setClassTicks(QCPAxis* axis, const std::vector<int>& order, const ClassInfo& classes, double rotation) {
    if (order.size() <= kMaxNamedClasses && classes.names.size() >= order.size()) {
        QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
        for (std::size_t rank = 0; rank < order.size(); ++rank)
            ticker->addTick(double(rank), QString::fromStdString(classes.names[static_cast<std::size_t>(order[rank])]));
        axis->setTicker(ticker);
        // Each name ends at its tick, and the axis rect keeps room on its right
        // for the last one's slant. A vertical axis reads across.
        const bool horizontal = axis->orientation() == Qt::Horizontal;
        axis->setTickLabelRotation(horizontal ? rotation : 0);
        QMargins margins = axis->axisRect()->minimumMargins();
        if (horizontal && rotation > -90) margins.setRight(std::max(margins.right(), QFontMetrics(axis->tickLabelFont()).height()));
        axis->axisRect()->setMinimumMargins(margins);
    } else {
        axis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
        axis->setTickLabelRotation(0);
    }
}

QString classAxisTitle() { return QObject::tr("class, by training count"); }

void addRoom(QCPAxis* axis, double below, double above) {
    const QCPRange r = axis->range();
    if (axis->scaleType() == QCPAxis::stLogarithmic && r.lower > 0) {
        const double decades = std::max(std::log10(r.upper / r.lower), 0.3);
        axis->setRange(r.lower / std::pow(10.0, below * decades), r.upper * std::pow(10.0, above * decades));
        return;
    }
    const double size = r.size() > 0 ? r.size() : std::max(std::abs(r.upper), 1.0);
    axis->setRange(r.lower - below * size, r.upper + above * size);
}

void setPercentRange(QCPAxis* axis, double room) {
    QSharedPointer<QCPAxisTickerFixed> ticks(new QCPAxisTickerFixed);
    ticks->setTickStep(20);
    ticks->setScaleStrategy(QCPAxisTickerFixed::ssNone);
    axis->setTicker(ticks);
    axis->setRange(-room, 100 + room);
}

void placeColorScale(QCustomPlot* plot, QCPColorScale* scale) {
    plot->plotLayout()->addElement(0, 1, scale);
    plot->plotLayout()->take(plot->legend);
    plot->plotLayout()->simplify();
    plot->plotLayout()->setColumnStretchFactor(1, 0.01);
    scale->setBarWidth(12); // the map gets the width
    auto* aligned = new QCPMarginGroup(plot);
    plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, aligned);
    scale->setMarginGroup(QCP::msBottom | QCP::msTop, aligned);
}

void replot(QCustomPlot* plot) {
    if (!plot->size().isEmpty()) plot->replot();
}

namespace {

// A paper's type sizes while a plot is exported (tick labels and legend 7 pt,
// axis labels 8 pt: readable at a column's width, the same at the page's),
// and a smaller legend icon; the screen's fonts come back afterwards.
class PaperStyle {
public:
    explicit PaperStyle(QCustomPlot* plot) : plot_(plot), icon_(plot->legend->iconSize()) {
        for (QCPLayoutElement* element : plot->plotLayout()->elements(true)) {
            if (!element) continue; // an empty cell of the grid
            std::vector<QCPAxis*> axes;
            if (auto* rect = qobject_cast<QCPAxisRect*>(element))
                for (QCPAxis* axis : rect->axes()) axes.push_back(axis);
            if (auto* scale = qobject_cast<QCPColorScale*>(element)) axes.push_back(scale->axis());
            for (QCPAxis* axis : axes) {
                if (!axis) continue;
                axes_.push_back({axis, axis->labelFont(), axis->tickLabelFont()});
                axis->setLabelFont(sized(axis->labelFont(), 8));
                axis->setTickLabelFont(sized(axis->tickLabelFont(), 7));
            }
            if (auto* text = qobject_cast<QCPTextElement*>(element)) {
                texts_.push_back({text, text->font()});
                text->setFont(sized(text->font(), 7.5));
            }
        }
        legend_ = plot->legend->font();
        plot->legend->setFont(sized(legend_, 7));
        for (int i = 0; i < plot->legend->itemCount(); ++i)
            if (QCPAbstractLegendItem* item = plot->legend->item(i)) {
                items_.push_back({item, item->font()});
                item->setFont(sized(item->font(), 7));
            }
        for (int i = 0; i < plot->itemCount(); ++i)
            if (auto* text = qobject_cast<QCPItemText*>(plot->item(i))) {
                item_texts_.push_back({text, text->font()});
                text->setFont(sized(text->font(), 7));
            }
        plot->legend->setIconSize(16, 9);
    }
    ~PaperStyle() {
        for (const auto& [axis, label, ticks] : axes_) {
            axis->setLabelFont(label);
            axis->setTickLabelFont(ticks);
        }
        for (const auto& [text, font] : texts_) text->setFont(font);
        for (const auto& [item, font] : items_) item->setFont(font);
        for (const auto& [text, font] : item_texts_) text->setFont(font);
        plot_->legend->setFont(legend_);
        plot_->legend->setIconSize(icon_);
        replot(plot_);
    }

private:
    static QFont sized(QFont font, double points) {
        font.setPointSizeF(points);
        font.setHintingPreference(QFont::PreferNoHinting);
        return font;
    }
    QCustomPlot* plot_;
    QSize icon_;
    QFont legend_;
    std::vector<std::tuple<QCPAxis*, QFont, QFont>> axes_;
    std::vector<std::pair<QCPTextElement*, QFont>> texts_;
    std::vector<std::pair<QCPAbstractLegendItem*, QFont>> items_;
    std::vector<std::pair<QCPItemText*, QFont>> item_texts_;
};

} // namespace

bool exportPlot(QCustomPlot* plot, const QString& path, double dpi, FigureShape shape) {
    const QSize size = figureSizePoints(shape);
    const int kWidthPt = size.width(), kHeightPt = size.height();
    const PaperStyle style(plot);
    if (!plot->property("own_legend").toBool()) fitLegendColumns(plot, kWidthPt);
    plot->toPixmap(kWidthPt, kHeightPt); // lays the plot out at the figure's size, to fit its ticks to it
    fitTickCounts(plot);
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (suffix == "pdf") return plot->savePdf(path, kWidthPt, kHeightPt, QCP::epNoCosmetic, "ltlab", plot->objectName());
    if (suffix == "png") return plot->savePng(path, kWidthPt, kHeightPt, dpi / 72.0, -1, static_cast<int>(dpi));
    if (suffix == "svg") {
        QSvgGenerator generator;
        generator.setFileName(path);
        generator.setSize(QSize(kWidthPt, kHeightPt));
        generator.setViewBox(QRect(0, 0, kWidthPt, kHeightPt));
        generator.setTitle(plot->objectName());
        QCPPainter painter;
        if (!painter.begin(&generator)) return false;
        plot->toPainter(&painter, kWidthPt, kHeightPt);
        painter.end();
        return QFileInfo(path).size() > 0;
    }
    return false;
}

std::vector<int> classesByCount(const std::vector<std::int64_t>& train_counts) {
    std::vector<int> order(train_counts.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return train_counts[a] > train_counts[b]; });
    return order;
}

namespace {

// Holds a plot's describe function (a child of the plot, found again by hoverTextAt).
class HoverHelper : public QObject {
public:
    HoverHelper(QCustomPlot* plot, HoverText describe) : QObject(plot), describe(std::move(describe)) {}
    HoverText describe;
};

// The axis' tick label at a coordinate when the axis has text ticks (class names).
QString tickName(QCPAxis* axis, double coord) {
    if (auto text = axis->ticker().dynamicCast<QCPAxisTickerText>()) {
        const auto it = text->ticks().find(std::round(coord));
        if (it != text->ticks().end() && std::abs(it.key() - coord) < 0.5) return it.value();
    }
    return QString::number(coord, 'g', 4);
}

QString axisName(QCPAxis* axis) { return axis->label().isEmpty() ? QStringLiteral("x") : axis->label(); }

} // namespace

QString siblingPath(const QString& path, const QString& stem_suffix) {
    const QFileInfo info(path);
    return info.path() + "/" + info.completeBaseName() + stem_suffix + "." + info.suffix();
}

QStringList writeViewData(const AnalysisView& view, const QString& path, QString* failed) {
    std::vector<std::pair<QString, QString>> tables{{path, view.csv()}};
    for (const auto& [suffix, table] : view.extraCsv()) tables.emplace_back(siblingPath(path, suffix), table);
    QStringList written;
    for (const auto& [target, table] : tables) {
        QFile file(target);
        if (!file.open(QIODevice::WriteOnly | QIODevice::Text) || file.write(table.toUtf8()) < 0) {
            if (failed) *failed = target;
            break;
        }
        written << target;
    }
    return written;
}

QString className(const ClassInfo& classes, int c) {
    return c >= 0 && static_cast<std::size_t>(c) < classes.names.size() ? QString::fromStdString(classes.names[c])
                                                                        : QString::number(c);
}

QString classSummary(const Analysis& a, const ClassInfo& classes, int c) {
    const auto& pc = a.per_class;
    const auto k = static_cast<std::size_t>(c);
    auto number = [](const Nullable& v) { return v ? QString::number(*v, 'g', 5) : QStringLiteral("n/a"); };
    return QObject::tr("%1 (class %2), %3-shot\nn = %4 train, %5 in %6\naccuracy %7\n||w|| = %8, b = %9\n||mean|| = %10")
        .arg(className(classes, c))
        .arg(c)
        .arg(shotGroupName(pc.group[k]))
        .arg(pc.train_count[k])
        .arg(pc.count[k])
        .arg(QString::fromStdString(a.split))
        .arg(pc.accuracy[k] ? QString::number(100 * *pc.accuracy[k], 'f', 1) + " %" : QObject::tr("n/a"))
        .arg(pc.weight_norm[k], 0, 'g', 5)
        .arg(pc.bias[k], 0, 'g', 5)
        .arg(number(pc.mean_norm[k]));
}

QString shotGroupName(ShotGroup group) {
    static const char* names[] = {"many", "medium", "few"};
    return names[static_cast<int>(group)];
}

QColor shotGroupColour(ShotGroup group, int alpha) {
    static const QColor colours[] = {QColor(0x1f, 0x77, 0xb4), QColor(0xff, 0x7f, 0x0e), QColor(0xd6, 0x27, 0x28)};
    QColor c = colours[static_cast<int>(group)];
    c.setAlpha(alpha);
    return c;
}

QString csvQuoted(const std::string& name) { return "\"" + QString::fromStdString(name).replace('"', "\"\"") + "\""; }

QString classMatrixCsv(const ClassInfo& classes, const QString& corner,
                       const std::function<QString(std::size_t, std::size_t)>& cell) {
    const std::size_t C = classes.names.size();
    QString out = corner;
    for (const auto& name : classes.names) out += "," + csvQuoted(name);
    out += "\n";
    for (std::size_t i = 0; i < C; ++i) {
        out += csvQuoted(classes.names[i]);
        for (std::size_t j = 0; j < C; ++j) out += "," + cell(i, j);
        out += "\n";
    }
    return out;
}

QString hoverTextAt(QCustomPlot* plot, const QPointF& pos) {
    HoverText describe; // (no Q_OBJECT on the helper, so no findChild: qobject_cast would match any child)
    for (QObject* child : plot->children())
        if (const auto* helper = dynamic_cast<const HoverHelper*>(child)) describe = helper->describe;
    double best = 8.0; // pixels
    QString text;
    for (int i = 0; i < plot->plottableCount(); ++i) {
        QCPAbstractPlottable* p = plot->plottable(i);
        if (!p->visible() || !p->keyAxis() || !p->valueAxis()) continue;
        if (auto* map = qobject_cast<QCPColorMap*>(p)) {
            double key = 0, value = 0;
            map->pixelsToCoords(pos, key, value);
            int ki = -1, vi = -1;
            map->data()->coordToCell(key, value, &ki, &vi);
            if (ki < 0 || vi < 0 || ki >= map->data()->keySize() || vi >= map->data()->valueSize()) continue;
            double ck = 0, cv = 0;
            map->data()->cellToCoord(ki, vi, &ck, &cv);
            const double z = map->data()->cell(ki, vi);
            QString t = describe ? describe(p, ck, cv, z) : QString();
            if (t.isEmpty())
                t = QStringLiteral("%1: %2\n%3: %4\n%5")
                        .arg(axisName(map->keyAxis()), tickName(map->keyAxis(), ck), axisName(map->valueAxis()),
                             tickName(map->valueAxis(), cv))
                        .arg(z, 0, 'g', 4);
            return t; // the map covers its whole rectangle
        }
        QVariant details;
        const double distance = p->selectTest(pos, false, &details);
        if (distance < 0 || distance >= best) continue;
        const QCPDataSelection selection = details.value<QCPDataSelection>();
        if (selection.isEmpty()) continue;
        const int index = selection.dataRange().begin();
        double key = 0, value = 0;
        if (auto* graph = qobject_cast<QCPGraph*>(p)) {
            if (index >= graph->dataCount()) continue;
            key = (graph->data()->constBegin() + index)->key;
            value = (graph->data()->constBegin() + index)->value;
        } else if (auto* bars = qobject_cast<QCPBars*>(p)) {
            if (index >= bars->dataCount()) continue;
            key = (bars->data()->constBegin() + index)->key;
            value = (bars->data()->constBegin() + index)->value;
        } else {
            continue;
        }
        QString t = describe ? describe(p, key, value, std::nan("")) : QString();
        if (t.isEmpty())
            t = QStringLiteral("%1\n%2: %3\n%4: %5")
                    .arg(p->name(), axisName(p->keyAxis()), tickName(p->keyAxis(), key), axisName(p->valueAxis()))
                    .arg(value, 0, 'g', 5);
        best = distance;
        text = t;
    }
    return text;
}

void installHoverValues(QCustomPlot* plot, HoverText describe) {
    new HoverHelper(plot, std::move(describe));
    QObject::connect(plot, &QCustomPlot::mouseMove, plot, [plot](QMouseEvent* event) {
        const QString text = hoverTextAt(plot, event->position());
        if (text.isEmpty())
            QToolTip::hideText();
        else
            QToolTip::showText(event->globalPosition().toPoint(), text, plot);
    });
}

} // namespace ltlab::ui
