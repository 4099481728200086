#pragma once
// The run's /history over epochs as small multiples (TensorBoard's scalar
// cards): the chosen group of metrics (loss and accuracy, neural collapse,
// FDR, cone, logit adjustment and learning rate), one panel per metric with
// its own y axis and unit, all in one QCustomPlot so that one export writes
// the whole grid. Accuracies (and NC4, a fraction of samples) are in %. Each
// panel is titled with a readable name; hovering the title or a point shows
// the /history key. A dashed line marks where `stage` goes from 1 to 2, a
// solid one the epoch of the snapshot shown in the timeline. The other open
// runs are overlaid, each in one colour (Okabe-Ito) in every panel, named in
// one legend below the grid. A log scale is offered for the panels whose
// values are all positive (the checkbox for all, a panel's context menu for
// one).

#include "analysis_view.h"

#include <map>
#include <optional>

class QCheckBox;
class QComboBox;
class QLabel;
class QCPAxisRect;
class QCPMarginGroup;
class QCPLayoutGrid;

namespace ltlab::ui {

class TrainingCurvesView : public AnalysisView {
    Q_OBJECT
public:
    explicit TrainingCurvesView(QWidget* parent = nullptr);
    QString title() const override { return tr("Training curves"); }
    QString fileStem() const override { return "training_curves"; }
    void showData(const ViewData& data) override;
    QString csv() const override;
    bool exportFigure(const QString& path, double dpi) const override;

    QCustomPlot* plot() const { return plot_; }
    QComboBox* groupBox() const { return group_; }
    QCheckBox* overlayBox() const { return overlay_; }
    QCheckBox* logBox() const { return log_; }
    // What the train metrics are of, when that is a sample (empty otherwise).
    QString sampleNote() const;

    // The panels of the chosen group, in grid order (row by row): one per
    // metric that a shown run records. The graphs of a panel are named by
    // the key for the selected run ("nc1") and "RUN: key" for the others.
    int panelCount() const { return static_cast<int>(panels_.size()); }
    QCPAxisRect* panel(int i) const;
    QString panelKey(int i) const;   // "test_accuracy"
    QString panelTitle(int i) const; // "balanced test accuracy (%)"
    int gridColumns() const { return columns_; }
    // A panel's own log scale (it stays linear while a value is <= 0).
    void setPanelLogScale(const QString& key, bool on);
    // Where the lines are drawn: the first epoch of stage 2, the epoch of the
    // snapshot shown (none without them).
    std::optional<double> stageBoundary() const { return stage_boundary_; }
    std::optional<double> currentEpoch() const { return current_epoch_; }
    // The colour of the i-th run (0: the selected one), the same in every panel.
    static QColor runColour(int i);

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    struct Layout {
        int columns = 1;
        bool paper = false; // the export's type sizes, else the screen's
        int width = 0;      // what titles and the legend have to fit in (pixels or points)
    };
    struct Panel {
        QString key, title;
        QCPAxisRect* rect = nullptr;
        bool positive = true; // every shown value > 0: a log scale is possible
    };
    void redraw();
    void build(const Layout& layout);
    int screenColumns() const;
    void syncFonts();
    void showPanelMenu(const QPoint& pos);

    QCustomPlot* plot_;
    QComboBox* group_;
    QCheckBox* overlay_;
    QCheckBox* log_;
    QLabel* note_;
    ViewData data_;

    QCPLayoutGrid* grid_ = nullptr;
    std::vector<QCPMarginGroup*> margin_groups_;
    std::vector<Panel> panels_;
    std::map<QString, bool> panel_log_; // per-panel choices over the checkbox
    int columns_ = 1;                        // of the grid drawn last
    int layout_columns_ = 0, layout_width_ = 0, layout_height_ = 0; // what it was laid out for
    bool paper_ = false;                     // building an export's grid
    std::optional<double> stage_boundary_, current_epoch_;
    // The screen's fonts (presentation mode scales them: setPlotFontScale).
    QFont tick_font_, label_font_, legend_font_;
};

} // namespace ltlab::ui
