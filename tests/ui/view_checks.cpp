#include "view_checks.h"

#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QStyleOptionComboBox>
#include <QTransform>

#include <algorithm>
#include <cmath>
#include <vector>

#include <qcustomplot.h>

namespace ltlab::test {

namespace {

constexpr double kSlack = 1.0; // pixels: rounding of QCustomPlot's own layout

// QCustomPlot computes the margin an axis needs (ticks, tick labels, title) in a protected method.
struct AxisAccess : QCPAxis {
    using QCPAxis::calculateMargin;
};

bool inside(const QRectF& outer, const QRectF& inner) { return outer.adjusted(-kSlack, -kSlack, kSlack, kSlack).contains(inner); }

QString describe(const QRectF& r) {
    return QStringLiteral("(%1, %2, %3 x %4)").arg(r.x(), 0, 'f', 1).arg(r.y(), 0, 'f', 1).arg(r.width(), 0, 'f', 1).arg(r.height(), 0, 'f', 1);
}

bool withinRange(const QCPRange& range, double v) {
    const double eps = 1e-9 * std::max(std::abs(range.upper - range.lower), 1e-300);
    return v >= range.lower - eps && v <= range.upper + eps;
}

QString plottableName(const QCPAbstractPlottable* p) {
    return QStringLiteral("'%1' (%2)").arg(p->name(), QString::fromLatin1(p->metaObject()->className()));
}

// Data outside the axis ranges, markers cut by the axis rect, a line's peak on the frame.
void checkPlottables(QCustomPlot* plot, QStringList& out) {
    for (int i = 0; i < plot->plottableCount(); ++i) {
        QCPAbstractPlottable* p = plot->plottable(i);
        if (!p->visible() || !p->keyAxis() || !p->valueAxis()) continue;
        const QCPRange keys = p->keyAxis()->range(), values = p->valueAxis()->range();
        const QCP::SignDomain domain = p->valueAxis()->scaleType() == QCPAxis::stLogarithmic ? QCP::sdPositive : QCP::sdBoth;
        bool found = false;
        const QCPRange data_keys = p->getKeyRange(found, QCP::sdBoth);
        if (found && (!withinRange(keys, data_keys.lower) || !withinRange(keys, data_keys.upper)))
            out << QStringLiteral("%1: keys %2..%3 outside the axis range %4..%5")
                       .arg(plottableName(p)).arg(data_keys.lower).arg(data_keys.upper).arg(keys.lower).arg(keys.upper);
        const QCPRange data_values = p->getValueRange(found, domain);
        if (found && (!withinRange(values, data_values.lower) || !withinRange(values, data_values.upper)))
            out << QStringLiteral("%1: values %2..%3 outside the axis range %4..%5")
                       .arg(plottableName(p)).arg(data_values.lower).arg(data_values.upper).arg(values.lower).arg(values.upper);
        auto* graph = qobject_cast<QCPGraph*>(p);
        if (!graph) continue;
        const QRectF rect = p->keyAxis()->axisRect()->rect();
        const double radius = graph->scatterStyle().isNone() ? 0.0 : graph->scatterStyle().size() / 2.0;
        const bool line = graph->lineStyle() != QCPGraph::lsNone && graph->pen().style() != Qt::NoPen;
        const double top = p->valueAxis()->coordToPixel(values.upper);
        int cut = 0, on_frame = 0;
        for (auto it = graph->data()->constBegin(); it != graph->data()->constEnd(); ++it) {
            if (!std::isfinite(it->value) || !std::isfinite(it->key)) continue;
            const QPointF at = graph->coordsToPixels(it->key, it->value);
            if (radius > 0 && !inside(rect, QRectF(at.x() - radius, at.y() - radius, 2 * radius, 2 * radius))) ++cut;
            const double pixel = p->valueAxis()->orientation() == Qt::Vertical ? at.y() : at.x();
            if (line && std::abs(pixel - top) < 1.0) ++on_frame;
        }
        if (cut > 0) out << QStringLiteral("%1: %2 markers cut by the axis rect").arg(plottableName(p)).arg(cut);
        if (on_frame > 0) out << QStringLiteral("%1: the line's peak lies on the frame (no room above it)").arg(plottableName(p));
    }
}

// The bounding box of a tick label as QCustomPlot places it (QCPAxisPainterPrivate::placeTickLabel).
QRectF tickLabelRect(QCPAxis* axis, double tick, const QString& text) {
    const QFontMetricsF metrics(axis->tickLabelFont());
    const QRectF bounds = metrics.boundingRect(QRectF(0, 0, 0, 0), Qt::TextDontClip, text);
    const double w = bounds.width(), h = bounds.height();
    const double rotation = axis->tickLabelRotation(), radians = rotation / 180.0 * M_PI;
    const QRect rect = axis->axisRect()->rect();
    const double distance = axis->offset() + std::max({0, axis->tickLengthOut(), axis->subTickLengthOut()}) + axis->tickLabelPadding();
    const double position = axis->coordToPixel(tick);
    QPointF anchor, offset;
    switch (axis->axisType()) {
    case QCPAxis::atLeft: anchor = {rect.left() - distance, position}; offset = {-w, -h / 2}; break;
    case QCPAxis::atRight: anchor = {rect.right() + distance, position}; offset = {0, -h / 2}; break;
    case QCPAxis::atTop: anchor = {position, rect.top() - distance}; offset = {-w / 2, -h}; break;
    case QCPAxis::atBottom:
        anchor = {position, rect.bottom() + distance};
        if (rotation == 0) offset = {-w / 2, 0};
        else if (rotation < 0) offset = {-std::cos(-radians) * w, std::sin(-radians) * w};
        break;
    }
    QTransform transform;
    transform.translate(anchor.x() + offset.x(), anchor.y() + offset.y());
    if (axis->orientation() == Qt::Horizontal) transform.rotate(rotation);
    return transform.mapRect(QRectF(0, 0, w, h));
}

// An axis title longer than the plot is cut at both ends (it is centred on the axis).
void checkAxisTitle(QCPAxis* axis, const QRectF& viewport, QStringList& out, const QString& name) {
    if (!axis->visible() || axis->label().isEmpty()) return;
    const double length = QFontMetricsF(axis->labelFont()).horizontalAdvance(axis->label());
    const QRect rect = axis->axisRect()->rect();
    const bool horizontal = axis->orientation() == Qt::Horizontal;
    const double centre = horizontal ? rect.center().x() : rect.center().y();
    const double low = horizontal ? viewport.left() : viewport.top(), high = horizontal ? viewport.right() : viewport.bottom();
    if (centre - length / 2 < low - kSlack || centre + length / 2 > high + kSlack)
        out << QStringLiteral("%1: the title (%2 px long) runs past the plot's edges").arg(name).arg(length, 0, 'f', 0);
}

// Tick labels QCustomPlot leaves out (they would cross the plot's edge) or that overlap.
void checkTickLabels(QCPAxis* axis, const QRectF& viewport, QStringList& out, const QString& where) {
    const QString name = QStringLiteral("%1 axis '%2'").arg(where, axis->label());
    checkAxisTitle(axis, viewport, out, name);
    if (!axis->visible() || !axis->tickLabels() || axis->tickLabelSide() != QCPAxis::lsOutside) return;
    const QVector<double> ticks = axis->tickVector();
    const QVector<QString> labels = axis->tickVectorLabels();
    std::vector<QRectF> rects;
    std::vector<double> positions;
    for (int i = 0; i < std::min(ticks.size(), labels.size()); ++i) {
        if (labels[i].isEmpty()) continue;
        const QRectF r = tickLabelRect(axis, ticks[i], labels[i]);
        if (!inside(viewport, r)) out << QStringLiteral("%1: tick label '%2' %3 outside the plot").arg(name, labels[i], describe(r));
        rects.push_back(r);
        positions.push_back(axis->coordToPixel(ticks[i]));
    }
    const double rotation = std::abs(axis->tickLabelRotation());
    const double height = QFontMetricsF(axis->tickLabelFont()).ascent(); // capitals and digits
    for (std::size_t i = 1; i < rects.size(); ++i) {
        bool overlap;
        if (rotation > 0 && axis->orientation() == Qt::Horizontal) // parallel slanted lines of text
            overlap = std::abs(positions[i] - positions[i - 1]) * std::sin(rotation / 180.0 * M_PI) < height;
        else
            overlap = rects[i].adjusted(1, 1, -1, -1).intersects(rects[i - 1].adjusted(1, 1, -1, -1));
        if (overlap) {
            out << QStringLiteral("%1: tick labels overlap (%2 of them)").arg(name).arg(rects.size());
            break;
        }
    }
}

std::vector<QCPAxis*> axesOf(QCPLayoutElement* element) {
    std::vector<QCPAxis*> axes;
    if (auto* rect = qobject_cast<QCPAxisRect*>(element))
        for (QCPAxis* axis : rect->axes()) axes.push_back(axis);
    if (auto* scale = qobject_cast<QCPColorScale*>(element)) axes.push_back(scale->axis());
    return axes;
}

// An axis rect's margin on each side holds its axes (ticks, labels, title).
void checkMargins(QCPAxisRect* rect, QStringList& out, const QString& where) {
    const QMargins margins = rect->margins();
    for (QCPAxis* axis : rect->axes()) {
        if (!axis->visible()) continue;
        const int needed = (axis->*(&AxisAccess::calculateMargin))();
        int have = 0;
        switch (axis->axisType()) {
        case QCPAxis::atLeft: have = margins.left(); break;
        case QCPAxis::atRight: have = margins.right(); break;
        case QCPAxis::atTop: have = margins.top(); break;
        case QCPAxis::atBottom: have = margins.bottom(); break;
        }
        if (have + kSlack < needed)
            out << QStringLiteral("%1 axis '%2': margin %3 px, its ticks and title need %4").arg(where, axis->label()).arg(have).arg(needed);
    }
}

// Every visible layout element inside the plot and as large as its text needs.
void checkElement(QCPLayoutElement* element, const QRectF& viewport, QStringList& out, const QString& where) {
    if (!element || !element->visible()) return;
    const QString kind = QString::fromLatin1(element->metaObject()->className());
    QString text;
    if (auto* item = qobject_cast<QCPPlottableLegendItem*>(element)) text = item->plottable()->name();
    if (auto* title = qobject_cast<QCPTextElement*>(element)) text = title->text();
    const QString name = QStringLiteral("%1: %2 '%3'").arg(where, kind, text);
    if (!inside(viewport, element->outerRect()))
        out << QStringLiteral("%1 %2 is not inside the plot %3").arg(name, describe(element->outerRect()), describe(viewport));
    const QSize hint = element->minimumOuterSizeHint();
    if (!text.isEmpty() && (element->outerRect().width() + kSlack < hint.width() || element->outerRect().height() + kSlack < hint.height()))
        out << QStringLiteral("%1 is %2 x %3 px, its text needs %4 x %5")
                   .arg(name).arg(element->outerRect().width()).arg(element->outerRect().height()).arg(hint.width()).arg(hint.height());
    if (auto* rect = qobject_cast<QCPAxisRect*>(element)) checkMargins(rect, out, where);
    for (QCPAxis* axis : axesOf(element)) checkTickLabels(axis, viewport, out, where);
    if (qobject_cast<QCPAxisRect*>(element)) return; // its inset layout holds nothing of ours
    for (QCPLayoutElement* child : element->elements(false)) checkElement(child, viewport, out, where);
}

QRectF textItemRect(QCPItemText* text) {
    QPolygonF corners;
    for (QCPItemAnchor* a : {text->topLeft, text->topRight, text->bottomLeft, text->bottomRight}) corners << a->pixelPosition();
    return corners.boundingRect();
}

// Text items inside the plot and their clip rect, not over or under a bar.
void checkTextItems(QCustomPlot* plot, const QRectF& viewport, QStringList& out, const QString& where) {
    for (int i = 0; i < plot->itemCount(); ++i) {
        auto* text = qobject_cast<QCPItemText*>(plot->item(i));
        if (!text || !text->visible() || text->text().isEmpty()) continue;
        const QRectF r = textItemRect(text);
        const QString name = QStringLiteral("%1: text '%2' %3").arg(where, text->text(), describe(r));
        if (!inside(viewport, r)) out << name + " is not inside the plot";
        if (text->clipToAxisRect() && text->clipAxisRect() && !inside(text->clipAxisRect()->rect(), r))
            out << name + " is cut by its axis rect " + describe(text->clipAxisRect()->rect());
        for (int j = 0; j < plot->plottableCount(); ++j) {
            auto* bars = qobject_cast<QCPBars*>(plot->plottable(j));
            if (!bars || !bars->visible()) continue;
            for (auto it = bars->data()->constBegin(); it != bars->data()->constEnd(); ++it) {
                const QRectF bar = QRectF(bars->coordsToPixels(it->key - bars->width() / 2, bars->baseValue()),
                                          bars->coordsToPixels(it->key + bars->width() / 2, it->value)).normalized();
                if (bar.intersects(r.adjusted(1, 1, -1, -1))) {
                    out << QStringLiteral("%1 overlaps a bar of %2").arg(name, plottableName(bars));
                    break;
                }
            }
        }
    }
}

} // namespace

QStringList clipProblems(QCustomPlot* plot) {
    QStringList out;
    const QRectF viewport = plot->viewport();
    const QString where = QStringLiteral("%1 [%2 x %3]")
                              .arg(plot->objectName().isEmpty() ? QStringLiteral("plot") : plot->objectName())
                              .arg(viewport.width()).arg(viewport.height());
    checkPlottables(plot, out);
    checkElement(plot->plotLayout(), viewport, out, where);
    checkTextItems(plot, viewport, out, where);
    for (QString& line : out)
        if (!line.startsWith(where)) line = where + ": " + line;
    return out;
}

QStringList viewProblems(QWidget* view) {
    QStringList out;
    for (QCustomPlot* plot : view->findChildren<QCustomPlot*>()) {
        if (!plot->isVisibleTo(view) || plot->size().isEmpty()) continue;
        plot->replot();
        out << clipProblems(plot);
    }
    for (QComboBox* combo : view->findChildren<QComboBox*>()) {
        if (!combo->isVisibleTo(view)) continue;
        QStyleOptionComboBox option;
        option.initFrom(combo);
        option.editable = combo->isEditable();
        option.frame = combo->hasFrame();
        const QRect field = combo->style()->subControlRect(QStyle::CC_ComboBox, &option, QStyle::SC_ComboBoxEditField, combo);
        for (int i = 0; i < combo->count(); ++i) {
            const int needed = combo->fontMetrics().horizontalAdvance(combo->itemText(i)) +
                               (combo->itemIcon(i).isNull() ? 0 : combo->iconSize().width() + 4);
            if (needed > field.width()) {
                out << QStringLiteral("combo box '%1': '%2' needs %3 px, it shows %4")
                           .arg(combo->objectName(), combo->itemText(i)).arg(needed).arg(field.width());
                break;
            }
        }
    }
    return out;
}

QStringList problemsWhile(QWidget* view, const std::function<void()>& render) {
    QStringList out;
    std::vector<QMetaObject::Connection> connections;
    for (QCustomPlot* plot : view->findChildren<QCustomPlot*>())
        connections.push_back(QObject::connect(plot, &QCustomPlot::afterLayout, plot, [plot, &out] {
            if (!plot->viewport().isEmpty()) out << clipProblems(plot);
        }));
    render();
    for (const auto& c : connections) QObject::disconnect(c);
    out.removeDuplicates();
    return out;
}

QStringList edgeProblems(const QImage& image, const QString& what) {
    const QImage rgb = image.convertToFormat(QImage::Format_RGB32);
    const QColor background(Qt::white);
    int count = 0;
    QPoint first;
    auto visit = [&](int x, int y) {
        const QColor c = rgb.pixelColor(x, y);
        if (std::max({std::abs(c.red() - background.red()), std::abs(c.green() - background.green()),
                      std::abs(c.blue() - background.blue())}) > 60 && count++ == 0)
            first = QPoint(x, y);
    };
    for (int x = 0; x < rgb.width(); ++x) {
        visit(x, 0);
        visit(x, rgb.height() - 1);
    }
    for (int y = 1; y + 1 < rgb.height(); ++y) {
        visit(0, y);
        visit(rgb.width() - 1, y);
    }
    if (count == 0) return {};
    return {QStringLiteral("%1: %2 pixels drawn on the image's edge (cut off), the first at (%3, %4)")
                .arg(what).arg(count).arg(first.x()).arg(first.y())};
}

namespace {

QString outputDir() {
    const QString dir = qEnvironmentVariable("LTLAB_BASELINE_OUT", QDir::current().filePath("baseline-diffs"));
    QDir().mkpath(dir);
    return dir;
}

// Differing pixels red on a faded copy of the baseline.
QImage diffImage(const QImage& actual, const QImage& baseline, int tolerance, int* differing) {
    QImage diff(actual.size(), QImage::Format_RGB32);
    *differing = 0;
    for (int y = 0; y < actual.height(); ++y) {
        const auto* a = reinterpret_cast<const QRgb*>(actual.constScanLine(y));
        const auto* b = reinterpret_cast<const QRgb*>(baseline.constScanLine(y));
        auto* d = reinterpret_cast<QRgb*>(diff.scanLine(y));
        for (int x = 0; x < actual.width(); ++x) {
            const int delta = std::max({std::abs(qRed(a[x]) - qRed(b[x])), std::abs(qGreen(a[x]) - qGreen(b[x])),
                                        std::abs(qBlue(a[x]) - qBlue(b[x]))});
            const int faded = 255 - (255 - qGray(b[x])) / 4;
            d[x] = delta > tolerance ? qRgb(255, 0, 0) : qRgb(faded, faded, faded);
            if (delta > tolerance) ++*differing;
        }
    }
    return diff;
}

} // namespace

QString baselinePath(const QString& name) { return QDir(QStringLiteral(LTLAB_BASELINE_DIR)).filePath(name + ".png"); }

QString compareWithBaseline(const QImage& image, const QString& name, Tolerance tolerance) {
    const QImage actual = image.convertToFormat(QImage::Format_RGB32);
    const QString path = baselinePath(name);
    if (qEnvironmentVariableIntValue("LTLAB_UPDATE_BASELINES") == 1) {
        QDir().mkpath(QStringLiteral(LTLAB_BASELINE_DIR));
        return actual.save(path, "PNG", 0) ? QString() : "cannot write the baseline " + path; // 0: smallest file
    }
    const QImage baseline = QImage(path).convertToFormat(QImage::Format_RGB32);
    const QString actual_path = QDir(outputDir()).filePath(name + ".actual.png");
    if (baseline.isNull() || baseline.size() != actual.size()) {
        actual.save(actual_path);
        return QStringLiteral("%1: the baseline %2 is %3x%4, the image %5x%6 (written to %7; LTLAB_UPDATE_BASELINES=1 "
                              "makes it the baseline)")
            .arg(name, path).arg(baseline.width()).arg(baseline.height()).arg(actual.width()).arg(actual.height()).arg(actual_path);
    }
    int differing = 0;
    const QImage diff = diffImage(actual, baseline, tolerance.pixel, &differing);
    const double fraction = double(differing) / double(actual.width() * actual.height());
    if (fraction <= tolerance.max_fraction) return {};
    const QString diff_path = QDir(outputDir()).filePath(name + ".diff.png");
    actual.save(actual_path);
    diff.save(diff_path);
    return QStringLiteral("%1: %2 of %3 pixels (%4 %) differ from %5 by more than %6 (at most %7 % may); "
                          "the image is %8, the differences %9")
        .arg(name).arg(differing).arg(actual.width() * actual.height()).arg(100 * fraction, 0, 'f', 2)
        .arg(path).arg(tolerance.pixel).arg(100 * tolerance.max_fraction, 0, 'f', 2).arg(actual_path, diff_path);
}

} // namespace ltlab::test
