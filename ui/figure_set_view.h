#pragma once
// The papers' figure set (issue 10), one figure at a time, chosen in the
// view: the weight-norm evolution (epochs x classes), the class x class
// heatmaps of feature cosine, feature-weight cosine, ||h|| ||w|| and weight
// cosine, the per-class mean feature norm, the per-class loss beside the
// weight-decay penalty, per-class accuracy against a baseline run with the
// class counts, and the confusion matrix in many / medium / few. Every number
// comes from core (figure_data.h); the view draws. Classes are ordered by
// training count, head to tail, as in every per-class view.

#include "analysis_view.h"

class QComboBox;
class QCPColorMap;
class QCPColorScale;
class QCPTextElement;
class QLabel;
class QLineEdit;
class QStackedWidget;

namespace ltlab::ui {

class FigureSetView : public AnalysisView {
    Q_OBJECT
public:
    enum class Figure {
        WeightNormEvolution,
        FeatureCosine,
        FeatureWeightCosine,
        FeatureWeightNorm,
        WeightCosine,
        FeatureNorms,
        PerClassLoss,
        AccuracyVsBaseline,
        ConfusionGrouped
    };
    static std::vector<Figure> allFigures();
    static QString stemOf(Figure figure);   // the file stem, as the papers' code names its images
    static QString nameOf(Figure figure);   // for the figure chooser

    explicit FigureSetView(QWidget* parent = nullptr);
    ~FigureSetView() override;
    QString title() const override { return tr("Paper figures"); }
    QString fileStem() const override { return stemOf(figure_); }
    void showData(const ViewData& data) override;
    QString csv() const override;
    bool exportFigure(const QString& path, double dpi) const override;

    void setFigure(Figure figure);
    Figure figure() const { return figure_; }
    // Whether the current data has what the figure needs (the baseline figure needs a baseline).
    bool available(Figure figure) const;

    // lambda for the penalty: the run's recorded weight decay unless overridden.
    void setWeightDecayOverride(std::optional<double> lambda);
    // The lambda in use and what it comes from (for the figure's caption line).
    std::pair<double, QString> weightDecay() const;

    // Runs the user may take as the baseline: (run path, snapshot name) with labels.
    void setBaselineChoices(const QList<QPair<QString, QString>>& choices, const QStringList& labels);
    QPair<QString, QString> baselineChoice() const; // empty: none
    void setBaselineChoice(const QString& path, const QString& snapshot); // emits baselineChanged

    // For tests: the plot shown, its colour map (heatmaps) and the class order.
    QCustomPlot* heatmapPlot() const { return heat_; }
    QCustomPlot* barsPlot() const { return bars_; }
    QCPColorMap* colorMap() const;
    const std::vector<int>& classOrder() const { return order_; }

signals:
    void baselineChanged();

private:
    void redraw();
    void drawClassHeatmap(ClassHeatmap kind);
    void drawEvolution();
    void drawGroupedConfusion();
    void drawFeatureNorms();
    void drawLoss();
    void drawBaseline();
    void resetBars();
    void setCaption(const QString& text);
    QCPColorMap* newColorMap(int columns, int rows, bool diverging, double low, double high, const QString& label);
    QCustomPlot* shownPlot() const;

    QComboBox* chooser_;
    QComboBox* baseline_;
    QLineEdit* weight_decay_;
    QLabel* note_;
    QStackedWidget* stack_;
    QCustomPlot *heat_, *bars_;
    QCPColorScale* scale_;
    QCPTextElement* caption_;
    bool caption_shown_ = false;
    Figure figure_ = Figure::WeightNormEvolution;
    ViewData data_;
    std::vector<int> order_;
    std::optional<double> weight_decay_override_;
};

} // namespace ltlab::ui
