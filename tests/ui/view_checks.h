#pragma once
// Checks that every view test can use (issue 11, "Plots clip their data"):
// nothing a plot draws is cut, hidden or left out, and an image equals its
// committed baseline within a tolerance (F3D's testing/baselines style).

#include <QImage>
#include <QString>
#include <QStringList>

#include <functional>

class QCustomPlot;
class QWidget;

namespace ltlab::test {

// What a plot, as laid out now (after a replot, or inside an export's
// afterLayout), cuts or hides; one line per problem, empty when none:
// - data (graphs, bars, colour maps) outside its axes' ranges, scatter
//   markers not wholly inside the axis rect, a line's peak on the frame;
// - layout elements (axis rects with their axis titles, the legend, its
//   entries, text elements) outside the plot or smaller than their text;
// - tick labels outside the plot (QCustomPlot leaves those out), or
//   overlapping each other;
// - text items outside the plot or their clip rect, or overlapping a bar.
QStringList clipProblems(QCustomPlot* plot);

// clipProblems of every visible plot in `view` (replotted at its size), and
// every visible combo box whose entries do not fit its width.
QStringList viewProblems(QWidget* view);

// Runs clipProblems on each plot of `view` every time it is laid out while
// `render` runs (an export lays a plot out at the figure's size and fonts).
QStringList problemsWhile(QWidget* view, const std::function<void()>& render);

// Non-background pixels on the outermost ring of an image: something cut by its edge.
QStringList edgeProblems(const QImage& image, const QString& what);

// Compares `actual` with the baseline NAME.png in the baselines folder.
// Pixels differ when a channel differs by more than `pixel_tolerance`; at
// most `max_fraction` of them may. On a mismatch NAME.actual.png and
// NAME.diff.png (differing pixels red) are written to the output folder and
// the message says where. LTLAB_UPDATE_BASELINES=1 writes `actual` as the
// new baseline instead. Returns an empty string when it passes.
struct Tolerance {
    int pixel = 24;            // of 255, per channel
    double max_fraction = 0.003;
};
QString compareWithBaseline(const QImage& actual, const QString& name, Tolerance tolerance = {});
// The committed baseline NAME.png.
QString baselinePath(const QString& name);

} // namespace ltlab::test
