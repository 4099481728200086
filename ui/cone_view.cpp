#include "cone_view.h"

#include <QLabel>
#include <QVBoxLayout>

#include <QHBoxLayout>

#include <cmath>

#include <qcustomplot.h>

namespace ltlab::ui {


ConeView::ConeView(QWidget* parent) : AnalysisView(parent) {
    histograms_ = makePlot(this, "Pairwise feature cosine");
    installHoverValues(histograms_);
    heatmap_ = makePlot(this, "Class-mean cosine");
    installHoverValues(heatmap_);
    scale_ = new QCPColorScale(heatmap_);
    scale_->setLabel(tr("cosine"));
    scale_->setDataRange(QCPRange(-1, 1));
    scale_->setGradient(QCPColorGradient::gpPolar);
    placeColorScale(heatmap_, scale_);
    numbers_ = new QLabel(this);
    numbers_->setWordWrap(true);
    numbers_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* plots = new QHBoxLayout;
    plots->addWidget(histograms_, 3);
    plots->addWidget(heatmap_, 2);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(plots, 1);
    layout->addWidget(numbers_);
}

void ConeView::showData(const ViewData& data) {
    data_ = data;
    histograms_->clearPlottables();
    histograms_->plotLayout()->setAutoMargins(QCP::msAll);
    heatmap_->clearPlottables();
    if (data_.analysis && data_.cone) {
        const ConeHistograms& h = *data_.cone;
        auto density = [&](const std::vector<double>& counts) {
            double total = 0;
            for (double c : counts) total += c;
            QVector<double> x, y;
            for (int b = 0; b < h.bins; ++b) {
                x << h.binCentre(b);
                y << (total > 0 ? counts[static_cast<std::size_t>(b)] / total * h.bins / 2.0 : 0.0); // density on [-1, 1]
            }
            return std::pair{x, y};
        };
        const auto fmt = [](const Nullable& v) { return v ? QString::number(*v, 'f', 3) : QString("n/a"); };
        const auto [xs, ys] = density(h.same_class);
        const auto [xd, yd] = density(h.diff_class);
        QCPGraph* same = histograms_->addGraph();
        same->setName(tr("same class (mean %1)").arg(fmt(data_.analysis->cone_mean_cos_same_class)));
        same->setData(xs, ys, true);
        same->setLineStyle(QCPGraph::lsStepCenter);
        same->setPen(QPen(QColor(0x1f, 0x77, 0xb4), 1.5));
        same->setBrush(QColor(0x1f, 0x77, 0xb4, 60));
        QCPGraph* diff = histograms_->addGraph();
        diff->setName(tr("different class (mean %1)").arg(fmt(data_.analysis->cone_mean_cos_diff_class)));
        diff->setData(xd, yd, true);
        diff->setLineStyle(QCPGraph::lsStepCenter);
        diff->setPen(QPen(QColor(0xd6, 0x27, 0x28), 1.5));
        diff->setBrush(QColor(0xd6, 0x27, 0x28, 60));
        // Short enough for a column-wide figure; which pairs are counted is in the numbers below.
        histograms_->xAxis->setLabel(tr("cosine similarity of sample pairs"));
        histograms_->yAxis->setLabel(tr("density"));
        histograms_->legend->setVisible(true);
        histograms_->rescaleAxes();
        histograms_->xAxis->setRange(-1, 1);
        histograms_->yAxis->setRange(0, histograms_->yAxis->range().upper * 1.08); // the peak below the frame

        const auto C = static_cast<int>(data_.analysis->num_classes);
        const auto order = classesByCount(data_.analysis->per_class.train_count);
        auto* map = new QCPColorMap(heatmap_->xAxis, heatmap_->yAxis);
        map->setName(tr("cos(mu_c, mu_c')"));
        map->data()->setSize(C, C);
        map->data()->setRange(QCPRange(0, C - 1), QCPRange(0, C - 1));
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < C; ++j) {
                const auto& v = data_.analysis->class_mean_cosine[static_cast<std::size_t>(order[i]) * C +
                                                                  static_cast<std::size_t>(order[j])];
                map->data()->setCell(i, j, v ? *v : std::nan(""));
            }
        map->setColorScale(scale_); // gradient and range [-1, 1] come from the scale
        map->setInterpolate(false);
        heatmap_->xAxis->setLabel(classAxisTitle());
        heatmap_->yAxis->setLabel(classAxisTitle());
        heatmap_->yAxis->setRangeReversed(true);
        setClassTicks(heatmap_->xAxis, order, data_.classes, -90); // one name per narrow column
        setClassTicks(heatmap_->yAxis, order, data_.classes);
        heatmap_->legend->setVisible(false);
        heatmap_->xAxis->setRange(-0.5, C - 0.5); // whole cells at the edges
        heatmap_->yAxis->setRange(-0.5, C - 0.5);
    }
    replot(histograms_);
    replot(heatmap_);
    if (data_.analysis) {
        const Analysis& a = *data_.analysis;
        const auto f = [](const Nullable& v) { return v ? QString::number(*v, 'f', 4) : QStringLiteral("n/a"); };
        QString pairs;
        if (data_.cone)
            pairs = data_.cone->exact ? tr(" The histograms count all %1 samples' pairs.").arg(data_.cone->rows_used)
                                      : tr(" The histograms count the pairs of a seeded sample of %1 samples.").arg(data_.cone->rows_used);
        numbers_->setText(tr("Cone (analysis.md, %1 split): mean pairwise cosine %2 (std %3); same class %4, "
                             "different class %5; mean cosine between class means %6.")
                              .arg(QString::fromStdString(a.split), f(a.cone_mean_cos), f(a.cone_std_cos),
                                   f(a.cone_mean_cos_same_class), f(a.cone_mean_cos_diff_class),
                                   f(a.class_means_mean_cos)) + pairs);
    } else {
        numbers_->clear();
    }
}

QString ConeView::csv() const {
    QString out = "cosine_bin_centre,same_class_pairs,different_class_pairs\n";
    if (!data_.cone) return out;
    for (int b = 0; b < data_.cone->bins; ++b)
        out += QString("%1,%2,%3\n")
                   .arg(data_.cone->binCentre(b), 0, 'g', 6)
                   .arg(data_.cone->same_class[static_cast<std::size_t>(b)], 0, 'f', 0)
                   .arg(data_.cone->diff_class[static_cast<std::size_t>(b)], 0, 'f', 0);
    return out;
}

std::vector<std::pair<QString, QString>> ConeView::extraCsv() const {
    if (!data_.analysis) return {};
    // The C x C matrix of cosines between class means (empty where a class is absent).
    const auto C = static_cast<std::size_t>(data_.analysis->num_classes);
    const QString out = classMatrixCsv(data_.classes, "class", [&](std::size_t i, std::size_t j) {
        const Nullable& v = data_.analysis->class_mean_cosine[i * C + j];
        return v ? QString::number(*v, 'g', 17) : QString();
    });
    return {{"_class_means", out}};
}

bool ConeView::exportFigure(const QString& path, double dpi) const {
    return exportPlot(histograms_, path, dpi) && exportPlot(heatmap_, siblingPath(path, "_class_means"), dpi, FigureShape::Square);
}

} // namespace ltlab::ui
