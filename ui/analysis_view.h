#pragma once
// A view of one analysed snapshot. Views draw what ltlab_core computed and
// never compute metrics themselves, so every number on screen is the number
// `ltlab analyze` prints. Each view can export its figure (PDF and SVG as
// vectors, PNG at a chosen DPI) and the data behind it (CSV).

#include <QColor>
#include <QString>
#include <QWidget>

#include <functional>
#include <memory>
#include <optional>

#include "ltlab/analysis.h"
#include "ltlab/cone.h"
#include "ltlab/figure_data.h"
#include "ltlab/geometry.h"
#include "ltlab/layer_stats.h"
#include "ltlab/run_file.h"

class QCPAbstractPlottable;
class QCPAxis;
class QCPColorScale;
class QCustomPlot;

namespace ltlab::ui {

struct ViewData {
    QString run_name;                            // for titles
    std::shared_ptr<const Analysis> analysis;    // null: nothing to show
    ClassInfo classes;
    std::optional<History> history;
    std::shared_ptr<const ConeHistograms> cone; // pairwise cosines of the same split
    std::shared_ptr<const ClassGeometry3D> geometry;
    std::shared_ptr<const Analysis> compare;     // another snapshot to overlay (WB: the end of stage 1)
    QString compare_label;
    // The other open runs' histories (file name, history), for the training curves.
    std::vector<std::pair<QString, History>> other_histories;
    // Where it comes from (empty for a checkpoint's weights before import): for
    // views that read more of the snapshot themselves (the stage-2 sandbox).
    QString path, snapshot;
    // The papers' figure set (figure_data.h): the run's weight-norm evolution,
    // a baseline run's analysis of the same split (per-class accuracy against
    // it), and the weight decay the run recorded for this snapshot.
    std::shared_ptr<const WeightNormEvolution> evolution;
    std::shared_ptr<const Analysis> baseline;
    QString baseline_label;
    std::optional<WeightDecayChoice> weight_decay;
    // The layer-wise results (/layers, readLayerResults) of every open run,
    // in the Runs tree's order, for the Layers tab: read where the run is opened.
    struct LayerResults {
        QString name, path;                               // file name, path
        std::shared_ptr<const std::vector<LayerRun>> runs; // never null; empty without /layers
        QString error;                                    // /layers could not be read (the rest of the run is shown)
    };
    std::vector<LayerResults> layer_results;
};

class AnalysisView : public QWidget {
    Q_OBJECT
public:
    using QWidget::QWidget;
    virtual QString title() const = 0;
    virtual QString fileStem() const = 0;        // e.g. "weight_norms" for figures
    virtual void showData(const ViewData& data) = 0;
    virtual QString csv() const = 0;
    // The data behind a view's other figures, as (file-stem suffix, CSV): e.g.
    // ("_confusion", ...) beside per_class.csv. Written next to csv().
    virtual std::vector<std::pair<QString, QString>> extraCsv() const { return {}; }
    // Writes the figure; the format comes from the suffix (pdf, svg, png).
    virtual bool exportFigure(const QString& path, double dpi = 300) const = 0;
};

// A plot styled for papers: the legend in a row below the axes (it never
// hides data), wrapped in columns, in a smaller font.
QCustomPlot* makePlot(QWidget* parent, const QString& title);

// Scales every font of a plot (presentation mode: 1.6), from its base size.
void setPlotFontScale(QCustomPlot* plot, double scale);

// Redraws a plot that has an area; an unshown tab's plot is redrawn by
// QCustomPlot when it first gets its size (drawing into a 0x0 buffer fails).
void replot(QCustomPlot* plot);

// The size every figure is exported at (`ltlab figures --size`, the
// workbench's export): one column of a two-column paper, 3.5 inches wide, or
// the whole page, 7 inches. Fonts keep their point sizes, so they read the
// same in both. Column is the default.
enum class FigureSize { Column, Page };
void setFigureSize(FigureSize size);
FigureSize figureSize();
// Plots are wide (3.5 x 2.6 in, page 7 x 3.6 in) or nearly square for
// heatmaps (3.5 x 3.2 in, page 7 x 6 in); in points (1/72 in).
enum class FigureShape { Wide, Square };
QSize figureSizePoints(FigureShape shape = FigureShape::Wide);

// Saves a plot as PDF or SVG (vector) or PNG (raster at `dpi`), at the
// figure size above.
bool exportPlot(QCustomPlot* plot, const QString& path, double dpi, FigureShape shape = FigureShape::Wide);

// Shows the numbers under the cursor as a tooltip: the nearest point of a
// graph or bar within a few pixels (its name, the key and the value, with the
// axis' tick label, e.g. a class name, where there is one), or the cell of a
// colour map. `describe`, when given, writes the text instead (return an
// empty string to fall back to the default).
using HoverText = std::function<QString(const QCPAbstractPlottable* plottable, double key, double value, double z)>;
void installHoverValues(QCustomPlot* plot, HoverText describe = {});
// What installHoverValues would show at a widget position (empty: nothing), for tests.
QString hoverTextAt(QCustomPlot* plot, const QPointF& pos);

// A view's second figure or table beside its first: ("out/per_class.pdf",
// "_confusion") gives "out/per_class_confusion.pdf".
QString siblingPath(const QString& path, const QString& stem_suffix);

// Writes a view's data: csv() to `path`, each extraCsv() beside it
// (siblingPath). Returns the files written; a file that could not be written
// ends the writing and is named in `failed`.
QStringList writeViewData(const AnalysisView& view, const QString& path, QString* failed);

// A name as one CSV field: quoted, inner quotes doubled.
QString csvQuoted(const std::string& name);
// A C x C table with the class names as the first row and column.
QString classMatrixCsv(const ClassInfo& classes, const QString& corner,
                       const std::function<QString(std::size_t row, std::size_t column)>& cell);

// A class's name from the file, or its number where the file has none.
QString className(const ClassInfo& classes, int c);

// One class's numbers, for hover tooltips and the 3D view's pick: name, shot
// group, training and evaluated counts, accuracy, ||w||, bias, ||mean||.
QString classSummary(const Analysis& analysis, const ClassInfo& classes, int c);

// A shot group's name ("many", "medium", "few") and colour (blue, orange,
// red), the same in every view.
QString shotGroupName(ShotGroup group);
QColor shotGroupColour(ShotGroup group, int alpha = 255);

// The ordering used by every per-class view: classes by training count,
// largest first (ties by class id), as the papers plot them.
std::vector<int> classesByCount(const std::vector<std::int64_t>& train_counts);

// An axis of classes in `order` (by rank): their names (at `rotation` degrees
// on a horizontal axis: -45, or -90 for a heatmap's narrow cells) when there
// are at most kMaxNamedClasses, else plain rank numbers. The same in every
// per-class view and heatmap.
constexpr std::size_t kMaxNamedClasses = 30;
// The title of such an axis, short enough for a column-wide figure.
QString classAxisTitle();
void setClassTicks(QCPAxis* axis, const std::vector<int>& order, const ClassInfo& classes, double rotation = -45);

// Widens an axis' range by fractions of its size below and above (of its
// decades on a log axis), so that markers and peaks are not cut by the frame.
void addRoom(QCPAxis* axis, double below, double above);
// A percentage axis: 0 to 100 with `room` (in %) on both sides, so that bars
// and markers at 0 % and 100 % stay whole; ticks every 20.
void setPercentRange(QCPAxis* axis, double room = 6);

// A heatmap's layout: `scale` beside the map, as tall as its axis rect (its
// end labels inside the plot) and as narrow as its labels, and no legend row.
void placeColorScale(QCustomPlot* plot, QCPColorScale* scale);

} // namespace ltlab::ui
